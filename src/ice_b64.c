/*
 * Text codecs: RFC 4648 base64 (standard alphabet, padded) and lowercase hex.
 * Output goes through luaL_Buffer in fixed chunks, so there is no allocation of
 * our own to lose if Lua raises (and no luaL_buffinitsize, which LuaJIT lacks).
 */
#include <string.h>
#include "ice.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ice_b64_encode(const unsigned char *in, size_t n, char *out)
{
    char *o = out;
    while (n >= 3) {
        unsigned v = (unsigned)in[0] << 16 | (unsigned)in[1] << 8 | in[2];
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = b64_alphabet[(v >> 6) & 63];
        o[3] = b64_alphabet[v & 63];
        in += 3;
        n -= 3;
        o += 4;
    }
    if (n > 0) {
        unsigned v = (unsigned)in[0] << 16 | (n == 2 ? (unsigned)in[1] << 8 : 0);
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = n == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - out);
}

/* Input bytes per chunk: a multiple of 3 whose encoding fits LUAL_BUFFERSIZE. */
#define B64_CHUNK_IN ((LUAL_BUFFERSIZE / 4) * 3)

static int l_b64encode(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (n > 0) {
        size_t take = n > B64_CHUNK_IN ? B64_CHUNK_IN : n;
        char *out = luaL_prepbuffer(&b);
        luaL_addsize(&b, ice_b64_encode(s, take, out));
        s += take;
        n -= take;
    }
    luaL_pushresult(&b);
    return 1;
}

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else. */
static unsigned char b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return (unsigned char)(c - 'A');
    if (c >= 'a' && c <= 'z') return (unsigned char)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (unsigned char)(c - '0' + 52);
    if (c == '+') return 62;
    if (c == '/') return 63;
    if (c == '=') return 64;
    return 255;
}

static int decode_fail(lua_State *L, const char *why, size_t pos)
{
    lua_pushnil(L);
    if (pos == (size_t)-1)
        lua_pushfstring(L, "b64decode: %s", why);
    else
        lua_pushfstring(L, "b64decode: %s at byte %d", why, (int)pos + 1);
    return 2;
}

/*
 * Strict: the length is a multiple of 4, '=' appears only as the last one or
 * two characters, and the bits that padding discards are zero, so every input
 * has exactly one encoding (RFC 4648 section 3.5 lets decoders insist on it).
 */
static int l_b64decode(lua_State *L)
{
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out;
    size_t used = 0;

    if (n % 4 != 0)
        return decode_fail(L, "length is not a multiple of 4", (size_t)-1);
    for (i = 0; i < n; i++) {
        unsigned char v = b64_value(s[i]);
        if (v == 255)
            return decode_fail(L, "invalid character", i);
        if (v == 64 && i < n - 2)
            return decode_fail(L, "padding before the end", i);
        if (v == 64 && i == n - 2 && s[n - 1] != '=')
            return decode_fail(L, "padding before the end", i);
    }

    luaL_buffinit(L, &b);
    out = luaL_prepbuffer(&b);
    for (i = 0; i < n; i += 4) {
        unsigned char a = b64_value(s[i]), c = b64_value(s[i + 1]);
        unsigned char d = b64_value(s[i + 2]), e = b64_value(s[i + 3]);
        if (a == 64 || c == 64)
            return decode_fail(L, "padding before the end", a == 64 ? i : i + 1);
        if (used + 3 > LUAL_BUFFERSIZE) {
            luaL_addsize(&b, used);
            out = luaL_prepbuffer(&b);
            used = 0;
        }
        out[used++] = (char)(a << 2 | c >> 4);
        if (d == 64) {
            if (c & 15)
                return decode_fail(L, "non-zero padding bits", i + 1);
            break;
        }
        out[used++] = (char)((c & 15) << 4 | d >> 2);
        if (e == 64) {
            if (d & 3)
                return decode_fail(L, "non-zero padding bits", i + 2);
            break;
        }
        out[used++] = (char)((d & 3) << 6 | e);
    }
    luaL_addsize(&b, used);
    luaL_pushresult(&b);
    return 1;
}

static int l_hex(lua_State *L)
{
    static const char digits[] = "0123456789abcdef";
    size_t n, i, used = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out;
    luaL_buffinit(L, &b);
    out = luaL_prepbuffer(&b);
    for (i = 0; i < n; i++) {
        if (used + 2 > LUAL_BUFFERSIZE) {
            luaL_addsize(&b, used);
            out = luaL_prepbuffer(&b);
            used = 0;
        }
        out[used++] = digits[s[i] >> 4];
        out[used++] = digits[s[i] & 15];
    }
    luaL_addsize(&b, used);
    luaL_pushresult(&b);
    return 1;
}

void ice_open_codec(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"b64encode", l_b64encode},
        {"b64decode", l_b64decode},
        {"hex", l_hex},
        {NULL, NULL},
    };
    ice_setfuncs(L, funcs);
}
