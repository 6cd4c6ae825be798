/*
 * What plain Lua lacks from the system: stat() to reload a secrets file when it
 * changes (and refuse one that others can read), and a monotonic clock to time
 * upstream calls without being fooled by a wall-clock step.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "ice.h"

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_uid);
    lua_setfield(L, -2, "uid");
    return 1;
}

/* core.monotonic(): seconds (with fractions) since an arbitrary start. */
static int l_monotonic(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

const luaL_Reg ice_sys_funcs[] = {
    {"stat", l_stat},
    {"monotonic", l_monotonic},
    {NULL, NULL},
};
