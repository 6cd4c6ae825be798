/*
 * Text codecs: RFC 4648 base64 (standard alphabet, padded), lowercase hex, and
 * JSON string quoting.  Output goes through luaL_Buffer in fixed chunks, so
 * there is no allocation of our own to lose if Lua raises (and no
 * luaL_buffinitsize, which LuaJIT lacks).
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

/*
 * base64url without padding (RFC 4648 section 5, as JOSE uses it: RFC 7515
 * section 2).  Strict as b64decode is: no '=', no other character, no length
 * of 1 mod 4, zero bits where the last character has more than it needs, so
 * one string has one encoding and a token cannot be altered unseen.
 */
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned char b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return (unsigned char)(c - 'A');
    if (c >= 'a' && c <= 'z') return (unsigned char)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (unsigned char)(c - '0' + 52);
    if (c == '-') return 62;
    if (c == '_') return 63;
    return 255;
}

static int b64url_fail(lua_State *L, const char *why, size_t pos)
{
    lua_pushnil(L);
    if (pos == (size_t)-1)
        lua_pushfstring(L, "b64url_decode: %s", why);
    else
        lua_pushfstring(L, "b64url_decode: %s at byte %d", why, (int)pos + 1);
    return 2;
}

static int l_b64url_decode(lua_State *L)
{
    size_t n, i, used = 0;
    const unsigned char *s = (const unsigned char *)ice_check_bytes(L, 1, &n);
    luaL_Buffer b;
    char *out;
    unsigned v = 0;
    int bits = 0;

    if (n % 4 == 1)
        return b64url_fail(L, "impossible length", (size_t)-1);
    for (i = 0; i < n; i++)
        if (b64url_value(s[i]) == 255)
            return b64url_fail(L, "invalid character", i);
    if (n % 4 == 2 && (b64url_value(s[n - 1]) & 15) != 0)
        return b64url_fail(L, "non-zero padding bits", n - 1);
    if (n % 4 == 3 && (b64url_value(s[n - 1]) & 3) != 0)
        return b64url_fail(L, "non-zero padding bits", n - 1);

    luaL_buffinit(L, &b);
    out = luaL_prepbuffer(&b);
    for (i = 0; i < n; i++) {
        v = (v << 6 | b64url_value(s[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (used == LUAL_BUFFERSIZE) {
                luaL_addsize(&b, used);
                out = luaL_prepbuffer(&b);
                used = 0;
            }
            out[used++] = (char)(v >> bits & 0xff);
        }
    }
    luaL_addsize(&b, used);
    luaL_pushresult(&b);
    return 1;
}

static int l_b64url_encode(lua_State *L)
{
    size_t n, used = 0;
    const unsigned char *s = (const unsigned char *)ice_check_bytes(L, 1, &n);
    luaL_Buffer b;
    char *out;
    unsigned v = 0;
    int bits = 0;

    luaL_buffinit(L, &b);
    out = luaL_prepbuffer(&b);
    while (n > 0 || bits > 0) {
        if (n > 0) {
            v = (v << 8 | *s++) & 0xffff;
            bits += 8;
            n--;
        } else {
            v <<= 6 - bits; /* the last character: its low bits are zero */
            bits = 6;
        }
        while (bits >= 6) {
            bits -= 6;
            if (used == LUAL_BUFFERSIZE) {
                luaL_addsize(&b, used);
                out = luaL_prepbuffer(&b);
                used = 0;
            }
            out[used++] = b64url_alphabet[v >> bits & 63];
        }
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

/*
 * core.json_quote(s, ...): each string as a JSON string literal, escaped byte
 * for byte as lua-cjson 2.1 escapes it (the control characters, DEL, '"', '\\'
 * and '/'; other bytes, UTF-8 or not, are copied), so that iceservers.encode
 * writes what cjson would.  The endpoint quotes a username and a password per
 * request with one call: a short string is written on the stack and pushed
 * once (LuaJIT's luaL_addlstring copies byte by byte), a long one goes
 * through luaL_Buffer in chunks.
 */
#define JSON_ESC_MAX 6 /* "\u001f" */
#define JSON_STACK_IN 120

/* The second character of a two-character escape, 'u' for \u00XX, 0 for none. */
static const unsigned char json_esc[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '/',
    ['\\'] = '\\', [127] = 'u',
};

/* Escapes s[0..n) into out, which has room for JSON_ESC_MAX * n bytes: runs of
 * bytes that need no escape are found first and copied whole. */
static size_t json_escape_into(const unsigned char *s, size_t n, char *out)
{
    static const char hexdig[] = "0123456789abcdef";
    size_t i = 0, o = 0;
    while (i < n) {
        size_t start = i;
        unsigned char c, e;
        while (i < n && json_esc[s[i]] == 0)
            i++;
        memcpy(out + o, s + start, i - start);
        o += i - start;
        if (i == n)
            break;
        c = s[i++];
        e = json_esc[c];
        out[o++] = '\\';
        out[o++] = (char)e;
        if (e == 'u') {
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hexdig[c >> 4];
            out[o++] = hexdig[c & 15];
        }
    }
    return o;
}

/* Input bytes per chunk whose escaped form fits LUAL_BUFFERSIZE. */
#define JSON_CHUNK_IN (LUAL_BUFFERSIZE / JSON_ESC_MAX)

/* json_quote for LuaJIT's FFI (lua/iceservers/fast.lua); out has room for
 * 2 + JSON_ESC_MAX * n bytes.  Returns the length written. */
ICE_API size_t iceservers_ffi_json_quote(const char *s, size_t n, char *out)
{
    size_t o = 1 + json_escape_into((const unsigned char *)s, n, out + 1);
    out[0] = out[o++] = '"';
    return o;
}

/* Pushes the quoted form of the string at stack index arg. */
static void json_quote_arg(lua_State *L, int arg)
{
    size_t n;
    const unsigned char *s;
    luaL_checktype(L, arg, LUA_TSTRING);
    s = (const unsigned char *)lua_tolstring(L, arg, &n);
    if (n <= JSON_STACK_IN) {
        char out[2 + JSON_ESC_MAX * JSON_STACK_IN];
        size_t o = 1 + json_escape_into(s, n, out + 1);
        out[0] = out[o++] = '"';
        lua_pushlstring(L, out, o);
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '"');
        while (n > 0) {
            size_t take = n > JSON_CHUNK_IN ? JSON_CHUNK_IN : n;
            char *out = luaL_prepbuffer(&b);
            size_t o = json_escape_into(s, take, out);
            luaL_addsize(&b, o);
            s += take;
            n -= take;
        }
        luaL_addchar(&b, '"');
        luaL_pushresult(&b);
    }
}

static int l_json_quote(lua_State *L)
{
    int n = lua_gettop(L), i;
    if (n == 0)
        luaL_checktype(L, 1, LUA_TSTRING); /* raises: at least one string */
    luaL_checkstack(L, n + 2, "too many strings");
    for (i = 1; i <= n; i++)
        json_quote_arg(L, i);
    return n;
}

const luaL_Reg ice_codec_funcs[] = {
    {"b64encode", l_b64encode},
    {"b64decode", l_b64decode},
    {"b64url_encode", l_b64url_encode},
    {"b64url_decode", l_b64url_decode},
    {"hex", l_hex},
    {"json_quote", l_json_quote},
    {NULL, NULL},
};
