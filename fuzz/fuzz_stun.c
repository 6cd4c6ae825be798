/*
 * The STUN decoder of lua/iceservers/stun/message.lua, in Lua 5.4 on this
 * core: each input goes to spec/support/stun_check.lua, the checks the seeded
 * busted spec (spec/stun_fuzz_spec.lua) runs too: decode never raises and
 * gives a message or nil and a one-line error, the message matches the bytes,
 * check_integrity and check_fingerprint give booleans, and the decoded values
 * encode again (with MESSAGE-INTEGRITY and FINGERPRINT through core.hmac and
 * core.crc32) and decode to the same values.  Any raise is a finding.
 * Input: the bytes of one datagram.  The Lua files are read from the
 * checkout (ICESERVERS_ROOT, default the current folder: fuzz/run.sh runs
 * from the root); the seeds are the RFC 5769 vectors, captured coturn
 * responses and encodings of the other attributes.
 */
#include "fuzz_lua.h"

static const char *root(void)
{
    const char *r = getenv("ICESERVERS_ROOT");
    return r && *r ? r : ".";
}

/* Loads the modules; returns the function that checks one input. */
static const char SETUP[] =
    "local core, root = ...\n"
    "package.path = root .. '/lua/?.lua;' .. root .. '/spec/?.lua'\n"
    "local message = require 'iceservers.stun.message'\n"
    "local check = require 'support.stun_check'\n"
    "local stun = message.new(core)\n"
    "return function(bytes) return check(stun, bytes) end\n";

/*
 * One state for every input, unlike the other harnesses: the modules are pure
 * (no state between calls), and loading them per input ran 20 times slower.
 * Stack: 1 the core table, 2 the check function.
 */
static lua_State *state(void)
{
    static lua_State *L;
    if (L != NULL)
        return L;
    L = fuzz_state();
    if (luaL_loadbuffer(L, SETUP, sizeof SETUP - 1, "=fuzz_stun") != LUA_OK)
        fuzz_fail("setup chunk", lua_tostring(L, -1));
    lua_pushvalue(L, 1);
    lua_pushstring(L, root());
    if (lua_pcall(L, 2, 1, 0) != LUA_OK)
        fuzz_fail("loading the Lua modules (run from the checkout's root)", lua_tostring(L, -1));
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = state();
    lua_pushvalue(L, 2);
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 2, "support.stun_check found a fault");
    fuzz_string(L, -2, NULL, "stun_check gave no outcome");
    lua_settop(L, 2);
    return 0;
}
