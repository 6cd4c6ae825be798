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

/* stat and a monotonic clock (ice_sys.c) */
ICE_HIDDEN void ice_open_sys(lua_State *L);

/* libcurl client (ice_http.c) */
ICE_HIDDEN int ice_http_global_init(lua_State *L);
ICE_HIDDEN void ice_open_http(lua_State *L);

#endif
