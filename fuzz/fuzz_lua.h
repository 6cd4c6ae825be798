/*
 * What the libFuzzer harnesses share: a fresh Lua 5.4 state per input with the
 * standard libraries and iceservers.core (as luaopen_iceservers_core registers
 * it), and calls through lua_pcall.  A harness that finds the code wrong calls
 * fuzz_fail(), which aborts, so libFuzzer keeps the input as a crash.
 */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_iceservers_core(lua_State *L);

static inline void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz check failed: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* A state with the core module at stack index 1 (and in package.loaded). */
static inline lua_State *fuzz_state(void)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        fuzz_fail("luaL_newstate", NULL);
    luaL_openlibs(L);
    luaL_requiref(L, "iceservers.core", luaopen_iceservers_core, 0);
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        fuzz_fail("luaopen_iceservers_core did not leave a table", NULL);
    return L;
}

/* Calls the function under nargs arguments; a Lua error is a finding. */
static inline void fuzz_pcall(lua_State *L, int nargs, int nresults, const char *what)
{
    if (lua_pcall(L, nargs, nresults, 0) != LUA_OK)
        fuzz_fail(what, lua_tostring(L, -1));
}

/* Pushes core[name] (a function); the arguments follow, then fuzz_pcall. */
static inline void fuzz_core_fn(lua_State *L, const char *name)
{
    lua_getfield(L, 1, name);
    if (!lua_isfunction(L, -1))
        fuzz_fail("core function missing", name);
}

/* The string at idx, or a failure naming what it should have been. */
static inline const char *fuzz_string(lua_State *L, int idx, size_t *len, const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        fuzz_fail(what, luaL_typename(L, idx));
    return lua_tolstring(L, idx, len);
}

static inline int fuzz_equal(const char *a, size_t na, const char *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

#endif
