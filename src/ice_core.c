/*
 * luaopen_iceservers_core: the generic primitives of iceservers.  Nothing in
 * this layer knows about TURN or providers; that lives in lua/iceservers/.
 */
#include <openssl/crypto.h>
#include <curl/curl.h>
#include "ice.h"

int ice_newtype(lua_State *L, const char *tname, const luaL_Reg *methods, lua_CFunction gc,
                lua_CFunction close, lua_CFunction tostring)
{
    if (!luaL_newmetatable(L, tname))
        return 0;
    ice_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
    return 1;
}

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
    static const luaL_Reg *const parts[] = {
        ice_codec_funcs, ice_crypto_funcs, ice_digest_funcs, ice_http_funcs, ice_sys_funcs,
        ice_x509_funcs, ice_pkey_funcs,
    };
    size_t i;
    ice_http_global_init(L);
    ice_open_signer(L);
    ice_open_pkey(L);
    ice_open_client(L);
    lua_newtable(L);
    for (i = 0; i < sizeof parts / sizeof parts[0]; i++)
        ice_setfuncs(L, parts[i]);
    push_version(L);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, ICE_VERSION_STRING);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
