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

/* base64 (ice_b64.c) */
#define ICE_B64_LEN(n) ((((n) + 2) / 3) * 4)
ICE_HIDDEN size_t ice_b64_encode(const unsigned char *in, size_t n, char *out);
ICE_HIDDEN void ice_open_codec(lua_State *L);

/* HMAC, signer, random bytes, ct_equal (ice_crypto.c) */
ICE_HIDDEN void ice_open_crypto(lua_State *L);

/* digests (md5, sha*) and CRC-32 (ice_digest.c) */
ICE_HIDDEN void ice_open_digest(lua_State *L);

/* stat and a monotonic clock (ice_sys.c) */
ICE_HIDDEN void ice_open_sys(lua_State *L);

/* libcurl client (ice_http.c) */
ICE_HIDDEN int ice_http_global_init(lua_State *L);
ICE_HIDDEN void ice_open_http(lua_State *L);

/*
 * What ice_http.c does with the bytes a server sends, reachable on its own so
 * that fuzz/fuzz_http_headers.c can drive it.  The libcurl callbacks (ud is an
 * ice_buf) copy a chunk into the buffer and return its size, or 0 when the
 * buffer's limit (b->over set) or memory stops the transfer; a header line that
 * starts with "HTTP/" (a new response: after a 1xx or a proxy's answer) empties
 * the header buffer first.  ice_push_headers pushes the table of a header block:
 * lower-cased names, trimmed values, repeated headers joined with ", ".
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
