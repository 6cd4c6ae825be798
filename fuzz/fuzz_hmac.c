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

/*
 * signer:method(msg), with the signer at stack index 3: pushes the result and
 * returns it, as a string.
 */
static const char *signer_call(lua_State *L, const char *method, const char *msg, size_t n,
                               size_t *len)
{
    char what[64];
    lua_getfield(L, 3, method);
    lua_pushvalue(L, 3);
    lua_pushlstring(L, msg, n);
    snprintf(what, sizeof what, "%s raised", method);
    fuzz_pcall(L, 2, 1, what);
    snprintf(what, sizeof what, "%s did not return a string", method);
    return fuzz_string(L, -1, len, what);
}

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

    d = signer_call(L, "digest", msg, mlen, &dlen); /* 4 */
    if (!fuzz_equal(h, hlen, d, dlen))
        fuzz_fail("hmac(alg, key, msg) ~= hmac_key(alg, key):digest(msg)", alg);

    b = signer_call(L, "b64digest", msg, mlen, &blen); /* 5 */
    fuzz_core_fn(L, "b64encode"); /* 6: b64encode(digest) */
    lua_pushvalue(L, 4);
    fuzz_pcall(L, 1, 1, "b64encode raised");
    e = fuzz_string(L, 6, &elen, "b64encode did not return a string");
    if (!fuzz_equal(b, blen, e, elen))
        fuzz_fail("b64digest(msg) ~= b64encode(digest(msg))", alg);

    /* The signer keeps no state between calls: the same MAC again, after a
       MAC of another message (the key alone). */
    signer_call(L, "digest", key, klen, &d2len);
    lua_pop(L, 1);
    d2 = signer_call(L, "digest", msg, mlen, &d2len); /* 7 */
    if (!fuzz_equal(d, dlen, d2, d2len))
        fuzz_fail("the signer gave two MACs for one message", alg);

    lua_close(L); /* runs the signer's __gc */
    return 0;
}
