/*
 * HMAC, the keyed signer, constant-time compare and random bytes (OpenSSL).
 *
 * The signer precomputes the HMAC inner and outer hash states once, when it is
 * keyed, and copies them by value per call.  Measured with OpenSSL 3.0 on one
 * core (bench/hmac_variants.c, HMAC-SHA1 of a 40-byte "expiry:user"): copying
 * low-level SHA_CTX states made 9.8 M MACs/s; the same precomputed states as
 * EVP_MD_CTX with EVP_MD_CTX_copy_ex (which allocates inside OpenSSL on every
 * copy) 6.7 M/s; EVP_MAC_CTX_dup of a keyed HMAC context 2.0 M/s; one-shot
 * HMAC(), which fetches the algorithm and re-keys per call, 0.87 M/s.  So the
 * signer keeps the low-level states, deprecated in 3.0 but still exported;
 * hence OPENSSL_SUPPRESS_DEPRECATED, kept to this file.  core.hmac() stays on
 * one-shot HMAC(): it is not a hot path, and the specs cross-check the two.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "ice.h"

#define SIGNER_MT "iceservers.hmac_key"
#define RANDOM_MAX 1024

typedef union {
    SHA_CTX sha1;
    SHA256_CTX sha256;
    SHA512_CTX sha512;
} md_state;

typedef struct {
    const char *name;
    size_t size;  /* digest bytes */
    size_t block; /* block bytes, the HMAC key pad width */
    const EVP_MD *(*evp)(void);
    int (*init)(md_state *);
    int (*update)(md_state *, const void *, size_t);
    int (*final)(unsigned char *, md_state *);
} md_kind;

/*
 * Thin adapters so one table of function pointers covers every algorithm:
 * MD_ADAPTERS(x, X, m) defines x_init, x_update and x_final over X_Init,
 * X_Update and X_Final on the state's member m (SHA-384 runs on SHA512_CTX).
 */
#define MD_ADAPTERS(x, X, m)                                                        \
    static int x##_init(md_state *s) { return X##_Init(&s->m); }                    \
    static int x##_update(md_state *s, const void *d, size_t n)                     \
    {                                                                               \
        return X##_Update(&s->m, d, n);                                             \
    }                                                                               \
    static int x##_final(unsigned char *o, md_state *s) { return X##_Final(o, &s->m); }
MD_ADAPTERS(sha1, SHA1, sha1)
MD_ADAPTERS(sha256, SHA256, sha256)
MD_ADAPTERS(sha384, SHA384, sha512)
MD_ADAPTERS(sha512, SHA512, sha512)
#undef MD_ADAPTERS

static const md_kind md_kinds[] = {
    {"sha1", SHA_DIGEST_LENGTH, SHA_CBLOCK, EVP_sha1, sha1_init, sha1_update, sha1_final},
    {"sha256", SHA256_DIGEST_LENGTH, SHA256_CBLOCK, EVP_sha256, sha256_init, sha256_update, sha256_final},
    {"sha384", SHA384_DIGEST_LENGTH, SHA512_CBLOCK, EVP_sha384, sha384_init, sha384_update, sha384_final},
    {"sha512", SHA512_DIGEST_LENGTH, SHA512_CBLOCK, EVP_sha512, sha512_init, sha512_update, sha512_final},
};
#define MAX_BLOCK SHA512_CBLOCK

static const md_kind *check_alg(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    size_t i;
    for (i = 0; i < sizeof md_kinds / sizeof md_kinds[0]; i++)
        if (strcmp(name, md_kinds[i].name) == 0)
            return &md_kinds[i];
    luaL_argerror(L, arg, lua_pushfstring(L,
        "unknown algorithm '%s' (expected sha1, sha256, sha384 or sha512)", name));
    return NULL;
}

/* core.hmac(alg, key, msg): one-shot, through OpenSSL's own HMAC(). */
static int l_hmac(lua_State *L)
{
    const md_kind *md = check_alg(L, 1);
    size_t klen, mlen;
    const char *key = ice_check_bytes(L, 2, &klen);
    const char *msg = ice_check_bytes(L, 3, &mlen);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int olen = 0;
    if (HMAC(md->evp(), key, (int)klen, (const unsigned char *)msg, mlen, out, &olen) == NULL)
        return luaL_error(L, "hmac: OpenSSL failed");
    lua_pushlstring(L, (const char *)out, olen);
    return 1;
}

typedef struct {
    const md_kind *md;
    md_state inner; /* state after absorbing key ^ ipad */
    md_state outer; /* state after absorbing key ^ opad */
} signer;

static int signer_key(signer *s, const md_kind *md, const unsigned char *key, size_t klen)
{
    unsigned char k[MAX_BLOCK], pad[MAX_BLOCK];
    md_state st;
    size_t i;
    int ok = 1;

    memset(k, 0, sizeof k);
    if (klen > md->block) { /* RFC 2104: long keys are hashed first */
        ok &= md->init(&st) && md->update(&st, key, klen) && md->final(k, &st);
    } else if (klen > 0) {
        memcpy(k, key, klen);
    }
    for (i = 0; i < md->block; i++)
        pad[i] = k[i] ^ 0x36;
    ok &= md->init(&s->inner) && md->update(&s->inner, pad, md->block);
    for (i = 0; i < md->block; i++)
        pad[i] = k[i] ^ 0x5c;
    ok &= md->init(&s->outer) && md->update(&s->outer, pad, md->block);
    s->md = md;
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(&st, sizeof st);
    return ok;
}

static int signer_mac(const signer *s, const unsigned char *msg, size_t n, unsigned char *out)
{
    md_state st;
    unsigned char inner[EVP_MAX_MD_SIZE];
    int ok;
    st = s->inner;
    ok = s->md->update(&st, msg, n) && s->md->final(inner, &st);
    st = s->outer;
    ok = ok && s->md->update(&st, inner, s->md->size) && s->md->final(out, &st);
    return ok;
}

/* core.hmac_key(alg, key) -> signer */
static int l_hmac_key(lua_State *L)
{
    const md_kind *md = check_alg(L, 1);
    size_t klen;
    const char *key = ice_check_bytes(L, 2, &klen);
    signer *s = (signer *)lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SIGNER_MT);
    lua_setmetatable(L, -2);
    if (!signer_key(s, md, (const unsigned char *)key, klen))
        return luaL_error(L, "hmac_key: OpenSSL failed");
    return 1;
}

/*
 * The signer at arg, refused once its __gc has run: Lua can still reach it
 * then (an object finalized in the same cycle may resurrect it, and debug lets
 * anyone call __gc by hand), but its states are wiped and md is NULL.
 */
static const signer *check_signer(lua_State *L, int arg)
{
    const signer *s = (const signer *)luaL_checkudata(L, arg, SIGNER_MT);
    if (s->md == NULL)
        luaL_error(L, "signer is finalized");
    return s;
}

static int l_signer_digest(lua_State *L)
{
    const signer *s = check_signer(L, 1);
    size_t n;
    const char *msg = ice_check_bytes(L, 2, &n);
    unsigned char out[EVP_MAX_MD_SIZE];
    if (!signer_mac(s, (const unsigned char *)msg, n, out))
        return luaL_error(L, "digest: OpenSSL failed");
    lua_pushlstring(L, (const char *)out, s->md->size);
    return 1;
}

/* The credential hot path: MAC and base64 in one call, on the stack only. */
static int l_signer_b64digest(lua_State *L)
{
    const signer *s = check_signer(L, 1);
    size_t n;
    const char *msg = ice_check_bytes(L, 2, &n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    char text[ICE_B64_LEN(EVP_MAX_MD_SIZE)];
    if (!signer_mac(s, (const unsigned char *)msg, n, mac))
        return luaL_error(L, "b64digest: OpenSSL failed");
    lua_pushlstring(L, text, ice_b64_encode(mac, s->md->size, text));
    return 1;
}

/*
 * The same for LuaJIT's FFI (lua/iceservers/fast.lua): a compiled trace calls
 * this without leaving the trace, which a Lua C function would make it do on
 * every request of the nginx endpoint.  signer must be the payload of a
 * hmac_key userdata, which C cannot check: fast.lua compares the metatable
 * first.  out has room for ICE_B64_LEN(EVP_MAX_MD_SIZE) bytes.  Returns the
 * length written, 0 on failure or for a finalized signer (md NULL), so that
 * the caller falls back to b64digest, which raises.
 */
ICE_API size_t iceservers_ffi_b64digest(const void *signer_ud, const char *msg, size_t n,
                                        char *out)
{
    const signer *s = (const signer *)signer_ud;
    unsigned char mac[EVP_MAX_MD_SIZE];
    if (s == NULL || s->md == NULL || !signer_mac(s, (const unsigned char *)msg, n, mac))
        return 0;
    return ice_b64_encode(mac, s->md->size, out);
}

static int l_signer_gc(lua_State *L)
{
    signer *s = (signer *)luaL_checkudata(L, 1, SIGNER_MT);
    OPENSSL_cleanse(s, sizeof *s); /* the states are key material */
    s->md = NULL;                  /* what check_signer and the FFI entry test */
    return 0;
}

static int l_signer_tostring(lua_State *L)
{
    const signer *s = (const signer *)luaL_checkudata(L, 1, SIGNER_MT);
    lua_pushfstring(L, "iceservers.hmac_key(%s)", s->md ? s->md->name : "finalized");
    return 1;
}

/* Different lengths still walk one input, so the time depends on length only. */
static int l_ct_equal(lua_State *L)
{
    size_t la, lb;
    const char *a = ice_check_bytes(L, 1, &la);
    const char *b = ice_check_bytes(L, 2, &lb);
    int same;
    if (la == lb) {
        same = CRYPTO_memcmp(a, b, la) == 0;
    } else {
        (void)CRYPTO_memcmp(a, a, la);
        same = 0;
    }
    lua_pushboolean(L, same);
    return 1;
}

static int l_random_bytes(lua_State *L)
{
    lua_Number want = luaL_checknumber(L, 1);
    unsigned char buf[RANDOM_MAX];
    int n;
    if (!(want >= 1 && want <= RANDOM_MAX) || want != (lua_Number)(int)want)
        return luaL_argerror(L, 1, "expected an integer from 1 to 1024");
    n = (int)want;
    if (RAND_bytes(buf, n) != 1)
        return luaL_error(L, "random_bytes: the OpenSSL random generator failed");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    OPENSSL_cleanse(buf, (size_t)n);
    return 1;
}

const luaL_Reg ice_crypto_funcs[] = {
    {"hmac", l_hmac},
    {"hmac_key", l_hmac_key},
    {"ct_equal", l_ct_equal},
    {"random_bytes", l_random_bytes},
    {NULL, NULL},
};

void ice_open_signer(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"digest", l_signer_digest},
        {"b64digest", l_signer_b64digest},
        {NULL, NULL},
    };
    /* local s <close> = core.hmac_key(...) wipes the key at the block's end */
    if (ice_newtype(L, SIGNER_MT, methods, l_signer_gc, l_signer_gc, l_signer_tostring)) {
        lua_pushliteral(L, "it is not allowed to get the metatable");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
