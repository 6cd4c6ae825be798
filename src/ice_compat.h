/*
 * One source for Lua 5.1/LuaJIT 2.1, 5.3 and 5.4.
 *
 * LuaJIT 2.1 reports LUA_VERSION_NUM 501 yet already declares some 5.2 API
 * (luaL_setfuncs, luaL_newlib, luaL_testudata), so redefining those names
 * under "< 502" collides.  Everything here carries an ice_ prefix instead and
 * maps onto the real function where the headers have it.
 */
#ifndef ICE_COMPAT_H
#define ICE_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502
#define ice_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#define ice_rawlen(L, i) lua_rawlen((L), (i))
#else
static inline void ice_setfuncs(lua_State *L, const luaL_Reg *l)
{
    for (; l->name != NULL; l++) {
        lua_pushcfunction(L, l->func);
        lua_setfield(L, -2, l->name);
    }
}
#define ice_rawlen(L, i) lua_objlen((L), (i))
#endif

/* A table filled from a luaL_Reg list, on every version. */
static inline void ice_newlib(lua_State *L, const luaL_Reg *l)
{
    int n = 0;
    while (l[n].name != NULL)
        n++;
    lua_createtable(L, 0, n);
    ice_setfuncs(L, l);
}

/* Absolute stack index; 5.1 lacks lua_absindex. */
static inline int ice_absindex(lua_State *L, int i)
{
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}

#endif
