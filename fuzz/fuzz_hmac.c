/*
 * core.hmac (one-shot OpenSSL HMAC) against the keyed signer
 * (core.hmac_key(alg, key):digest and :b64digest), for all four algorithms.
 * Input: byte 0 picks the algorithm, byte 1 the key length (clamped to what
 * is left, so keys longer than the 64- and 128-byte blocks occur), then the
 * key, then the message.  Any mismatch aborts.
 */
#include "fuzz_lua.h"

static const struct {
    const char *name;
    size_t size;
} algs[] = {{"sha1", 20}, {"sha256", 32}, {"sha384", 48}, {"sha512", 64}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L;
    const char *alg, *key, *msg, *h, *d, *d2, *b, *e;
    size_t klen, mlen, hlen, dlen, d2len, blen, elen, want;
    if (size < 2)
        return 0;
    alg = algs[data[0] & 3].name;
    want = algs[data[0] & 3].size;
    klen = data[1] <= size - 2 ? data[1] : size - 2;
    key = (const char *)data + 2;
    msg = key + klen;
    mlen = size - 2 - klen;

    L = fuzz_state();
    fuzz_core_fn(L, "hmac"); /* 2: core.hmac(alg, key, msg) */
    lua_pushstring(L, alg);
    lua_pushlstring(L, key, klen);
    lua_pushlstring(L, msg, mlen);
    fuzz_pcall(L, 3, 1, "hmac raised");
    h = fuzz_string(L, 2, &hlen, "hmac did not return a string");
    if (hlen != want)
        fuzz_fail("hmac: wrong digest length", alg);

    fuzz_core_fn(L, "hmac_key"); /* 3: the signer */
    lua_pushstring(L, alg);
    lua_pushlstring(L, key, klen);
    fuzz_pcall(L, 2, 1, "hmac_key raised");
    if (!lua_isuserdata(L, 3))
        fuzz_fail("hmac_key did not return a userdata", NULL);

    lua_getfield(L, 3, "digest"); /* 4: signer:digest(msg) */
    lua_pushvalue(L, 3);
    lua_pushlstring(L, msg, mlen);
    fuzz_pcall(L, 2, 1, "digest raised");
    d = fuzz_string(L, 4, &dlen, "digest did not return a string");
    if (!fuzz_equal(h, hlen, d, dlen))
        fuzz_fail("hmac(alg, key, msg) ~= hmac_key(alg, key):digest(msg)", alg);

    lua_getfield(L, 3, "b64digest"); /* 5: signer:b64digest(msg) */
    lua_pushvalue(L, 3);
    lua_pushlstring(L, msg, mlen);
    fuzz_pcall(L, 2, 1, "b64digest raised");
    b = fuzz_string(L, 5, &blen, "b64digest did not return a string");
    fuzz_core_fn(L, "b64encode"); /* 6: b64encode(digest) */
    lua_pushvalue(L, 4);
    fuzz_pcall(L, 1, 1, "b64encode raised");
    e = fuzz_string(L, 6, &elen, "b64encode did not return a string");
    if (!fuzz_equal(b, blen, e, elen))
        fuzz_fail("b64digest(msg) ~= b64encode(digest(msg))", alg);

    /* The signer keeps no state between calls: the same MAC again, after a
       MAC of another message (the key alone). */
    lua_getfield(L, 3, "digest");
    lua_pushvalue(L, 3);
    lua_pushlstring(L, key, klen);
    fuzz_pcall(L, 2, 0, "digest raised");
    lua_getfield(L, 3, "digest"); /* 7 */
    lua_pushvalue(L, 3);
    lua_pushlstring(L, msg, mlen);
    fuzz_pcall(L, 2, 1, "digest raised");
    d2 = fuzz_string(L, 7, &d2len, "digest did not return a string");
    if (!fuzz_equal(d, dlen, d2, d2len))
        fuzz_fail("the signer gave two MACs for one message", alg);

    lua_close(L); /* runs the signer's __gc */
    return 0;
}
