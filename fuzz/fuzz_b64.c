/*
 * core.b64decode, b64encode and hex on arbitrary bytes.
 *   - b64decode returns a string, or nil and a "b64decode: ..." message;
 *   - it accepts exactly the canonical encodings: it succeeds on x iff x is
 *     the encoding of some bytes (checked against a reference decoder here),
 *     and then b64encode(b64decode(x)) == x;
 *   - b64decode(b64encode(x)) == x, and the encoding has 4 * ceil(n / 3) bytes;
 *   - hex(x) has 2n bytes, lowercase, and reads back to x;
 *   - b64url_decode (unpadded, URL alphabet) likewise accepts exactly the
 *     canonical encodings, and b64url_encode writes them.
 */
#include "fuzz_lua.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int sextet(unsigned char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/*
 * Reference: 1 if s is the canonical padded encoding of some bytes, i.e. a
 * multiple of 4 long, alphabet characters with at most "==" at the very end,
 * and zero bits where padding discards them.
 */
static int canonical(const unsigned char *s, size_t n)
{
    size_t pad = 0, i;
    if (n % 4 != 0)
        return 0;
    if (n >= 1 && s[n - 1] == '=')
        pad = (n >= 2 && s[n - 2] == '=') ? 2 : 1;
    for (i = 0; i < n - pad; i++)
        if (sextet(s[i]) < 0)
            return 0;
    if (pad == 1 && (sextet(s[n - 2]) & 3) != 0)
        return 0;
    if (pad == 2 && (sextet(s[n - 3]) & 15) != 0)
        return 0;
    return 1;
}

static void check_decode(lua_State *L, const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    fuzz_core_fn(L, "b64decode");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 2, "b64decode raised");
    if (lua_type(L, -2) == LUA_TSTRING) {
        size_t dlen, elen;
        const char *d = lua_tolstring(L, -2, &dlen), *e;
        if (!canonical(data, size))
            fuzz_fail("b64decode accepted a non-canonical encoding", NULL);
        if (dlen != size / 4 * 3 - (size && data[size - 1] == '=') -
                        (size > 1 && data[size - 2] == '='))
            fuzz_fail("b64decode: wrong decoded length", NULL);
        fuzz_core_fn(L, "b64encode");
        lua_pushlstring(L, d, dlen);
        fuzz_pcall(L, 1, 1, "b64encode raised");
        e = fuzz_string(L, -1, &elen, "b64encode did not return a string");
        if (!fuzz_equal(e, elen, (const char *)data, size))
            fuzz_fail("b64encode(b64decode(x)) ~= x", NULL);
    } else {
        size_t mlen;
        const char *msg;
        if (!lua_isnil(L, -2))
            fuzz_fail("b64decode returned neither a string nor nil", luaL_typename(L, -2));
        msg = fuzz_string(L, -1, &mlen, "b64decode: nil without a message");
        if (strncmp(msg, "b64decode: ", 11) != 0 || memchr(msg, '\n', mlen))
            fuzz_fail("b64decode: unexpected message", msg);
        if (canonical(data, size))
            fuzz_fail("b64decode refused a canonical encoding", msg);
    }
    lua_settop(L, top);
}

static void check_encode(lua_State *L, const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    size_t elen, dlen;
    const char *e, *d;
    fuzz_core_fn(L, "b64encode");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 1, "b64encode raised");
    e = fuzz_string(L, -1, &elen, "b64encode did not return a string");
    if (elen != (size + 2) / 3 * 4 || !canonical((const unsigned char *)e, elen))
        fuzz_fail("b64encode: not a canonical encoding of the right length", NULL);
    fuzz_core_fn(L, "b64decode");
    lua_pushvalue(L, -2);
    fuzz_pcall(L, 1, 2, "b64decode raised");
    d = fuzz_string(L, -2, &dlen, "b64decode(b64encode(x)) failed");
    if (!fuzz_equal(d, dlen, (const char *)data, size))
        fuzz_fail("b64decode(b64encode(x)) ~= x", NULL);
    lua_settop(L, top);
}

static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int url_sextet(unsigned char c)
{
    const char *p = c ? strchr(url_alphabet, c) : NULL;
    return p ? (int)(p - url_alphabet) : -1;
}

/* Reference: 1 if s is the unpadded base64url encoding of some bytes. */
static int url_canonical(const unsigned char *s, size_t n)
{
    size_t i;
    if (n % 4 == 1)
        return 0;
    for (i = 0; i < n; i++)
        if (url_sextet(s[i]) < 0)
            return 0;
    if (n % 4 == 2 && (url_sextet(s[n - 1]) & 15) != 0)
        return 0;
    if (n % 4 == 3 && (url_sextet(s[n - 1]) & 3) != 0)
        return 0;
    return 1;
}

static void check_url(lua_State *L, const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    size_t dlen, elen;
    const char *d, *e;
    fuzz_core_fn(L, "b64url_decode");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 2, "b64url_decode raised");
    if (lua_type(L, -2) == LUA_TSTRING) {
        d = lua_tolstring(L, -2, &dlen);
        if (!url_canonical(data, size))
            fuzz_fail("b64url_decode accepted a non-canonical encoding", NULL);
        if (dlen != size * 3 / 4)
            fuzz_fail("b64url_decode: wrong decoded length", NULL);
        fuzz_core_fn(L, "b64url_encode");
        lua_pushlstring(L, d, dlen);
        fuzz_pcall(L, 1, 1, "b64url_encode raised");
        e = fuzz_string(L, -1, &elen, "b64url_encode did not return a string");
        if (!fuzz_equal(e, elen, (const char *)data, size))
            fuzz_fail("b64url_encode(b64url_decode(x)) ~= x", NULL);
    } else {
        const char *msg = fuzz_string(L, -1, &elen, "b64url_decode: nil without a message");
        if (!lua_isnil(L, -2) || strncmp(msg, "b64url_decode: ", 15) != 0)
            fuzz_fail("b64url_decode: unexpected failure", msg);
        if (url_canonical(data, size))
            fuzz_fail("b64url_decode refused a canonical encoding", msg);
    }
    lua_settop(L, top);
    /* and the encoding of the input */
    fuzz_core_fn(L, "b64url_encode");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 1, "b64url_encode raised");
    e = fuzz_string(L, -1, &elen, "b64url_encode did not return a string");
    if (elen != (size * 4 + 2) / 3 || !url_canonical((const unsigned char *)e, elen))
        fuzz_fail("b64url_encode: not a canonical encoding of the right length", NULL);
    fuzz_core_fn(L, "b64url_decode");
    lua_pushvalue(L, -2);
    fuzz_pcall(L, 1, 2, "b64url_decode raised");
    d = fuzz_string(L, -2, &dlen, "b64url_decode(b64url_encode(x)) failed");
    if (!fuzz_equal(d, dlen, (const char *)data, size))
        fuzz_fail("b64url_decode(b64url_encode(x)) ~= x", NULL);
    lua_settop(L, top);
}

static void check_hex(lua_State *L, const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    int top = lua_gettop(L);
    size_t hlen, i;
    const char *h;
    fuzz_core_fn(L, "hex");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_pcall(L, 1, 1, "hex raised");
    h = fuzz_string(L, -1, &hlen, "hex did not return a string");
    if (hlen != 2 * size)
        fuzz_fail("hex: length is not 2n", NULL);
    for (i = 0; i < size; i++)
        if (h[2 * i] != digits[data[i] >> 4] || h[2 * i + 1] != digits[data[i] & 15])
            fuzz_fail("hex: wrong digits", NULL);
    lua_settop(L, top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    check_decode(L, data, size);
    check_encode(L, data, size);
    check_hex(L, data, size);
    check_url(L, data, size);
    lua_close(L);
    return 0;
}
