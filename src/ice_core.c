/*
 * luaopen_iceservers_core: the generic primitives of iceservers.  Nothing in
 * this layer knows about TURN or providers; that lives in lua/iceservers/.
 */
#include <openssl/crypto.h>
#include <curl/curl.h>
#include "ice.h"

static void push_version(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, ICE_VERSION_STRING);
    lua_setfield(L, -2, "module");
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
    lua_setfield(L, -2, "openssl");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl");
    lua_pushliteral(L, LUA_VERSION);
    lua_setfield(L, -2, "lua_abi");
}

ICE_API int luaopen_iceservers_core(lua_State *L)
{
    ice_http_global_init(L);
    lua_newtable(L);
    ice_open_codec(L);
    ice_open_crypto(L);
    ice_open_digest(L);
    ice_open_http(L);
    ice_open_sys(L);
    push_version(L);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, ICE_VERSION_STRING);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
