/* Internal interface between the files of iceservers.core. */
#ifndef ICE_H
#define ICE_H

#include <stddef.h>
#include "ice_compat.h"

#if defined(__GNUC__)
#define ICE_API __attribute__((visibility("default")))
#define ICE_HIDDEN __attribute__((visibility("hidden")))
#else
#define ICE_API
#define ICE_HIDDEN
#endif

#define ICE_STR_(x) #x
#define ICE_STR(x) ICE_STR_(x)
#ifndef ICESERVERS_VERSION
#error "ICESERVERS_VERSION must be defined by the build (from the rockspec)"
#endif
#define ICE_VERSION_STRING ICE_STR(ICESERVERS_VERSION)

/*
 * The parts of the module, one file each (ice_<part>.c).  A file lists its
 * functions (core.<name>) in a luaL_Reg list that luaopen_iceservers_core
 * (ice_core.c) registers; a file with a userdata type registers that type's
 * metatable (ice_open_*) first.
 */
ICE_HIDDEN extern const luaL_Reg ice_codec_funcs[];  /* base64, hex, JSON quoting */
ICE_HIDDEN extern const luaL_Reg ice_crypto_funcs[]; /* HMAC, signer, ct_equal, random */
ICE_HIDDEN extern const luaL_Reg ice_digest_funcs[]; /* digests (md5, sha*), CRC-32 */
ICE_HIDDEN extern const luaL_Reg ice_http_funcs[];   /* the libcurl client */
ICE_HIDDEN extern const luaL_Reg ice_sys_funcs[];    /* stat, a monotonic clock */
ICE_HIDDEN extern const luaL_Reg ice_x509_funcs[];   /* certificate host check, CA paths */
ICE_HIDDEN extern const luaL_Reg ice_pkey_funcs[];   /* public keys: signature verification */

/*
 * Registers the metatable tname of a userdata type that holds resources,
 * unless it exists already: methods as its __index table, and its __gc,
 * __close and __tostring.  Leaves the metatable on the stack; returns 1 when
 * it was created (ice_core.c).
 */
ICE_HIDDEN int ice_newtype(lua_State *L, const char *tname, const luaL_Reg *methods,
                           lua_CFunction gc, lua_CFunction close, lua_CFunction tostring);

/* The string at arg, raising otherwise: numbers would be coerced silently,
 * hiding a caller's bug. */
static inline const char *ice_check_bytes(lua_State *L, int arg, size_t *len)
{
    luaL_checktype(L, arg, LUA_TSTRING);
    return lua_tolstring(L, arg, len);
}

/* base64 into a buffer of ICE_B64_LEN(n) bytes (ice_codec.c) */
#define ICE_B64_LEN(n) ((((n) + 2) / 3) * 4)
ICE_HIDDEN size_t ice_b64_encode(const unsigned char *in, size_t n, char *out);

/* The signer's type (ice_crypto.c), the public key's (ice_pkey.c) */
ICE_HIDDEN void ice_open_signer(lua_State *L);
ICE_HIDDEN void ice_open_pkey(lua_State *L);

/* libcurl's global state and the client's type (ice_http.c) */
ICE_HIDDEN int ice_http_global_init(lua_State *L);
ICE_HIDDEN void ice_open_client(lua_State *L);

/*
 * What a server sends, collected and parsed (ice_http_response.c), reachable
 * on its own so that fuzz/fuzz_http_headers.c can drive it.  The libcurl
 * callbacks (ud is an ice_buf) copy a chunk into the buffer and return its
 * size, or 0 when the buffer's limit (b->over set) or memory stops the
 * transfer; a header line that starts with "HTTP/" (a new response: after a
 * 1xx or a proxy's answer) empties the header buffer first.  ice_push_headers
 * pushes the table of a header block: lower-cased names, trimmed values,
 * repeated headers joined with ", ".
 */
#define ICE_HEADER_CAP (64 * 1024) /* response header block; more is an error */
typedef struct {
    char *data;
    size_t len, cap, limit;
    int over; /* set when the limit stopped the transfer */
} ice_buf;
ICE_HIDDEN void ice_buf_reset(ice_buf *b, size_t limit);
ICE_HIDDEN void ice_buf_free(ice_buf *b);
ICE_HIDDEN size_t ice_on_body(char *p, size_t size, size_t n, void *ud);
ICE_HIDDEN int ice_header_block_ended(const ice_buf *b);
ICE_HIDDEN size_t ice_on_header(char *p, size_t size, size_t n, void *ud);
ICE_HIDDEN void ice_push_headers(lua_State *L, const char *p, size_t n);

#endif
