/*
 * Public-key signature verification (OpenSSL EVP), the generic primitive a
 * JWT verifier needs: core.pkey_load(pem) -> key, key:verify(alg, data, sig).
 * RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of 2048 bits or more) and
 * ES256 (ECDSA P-256 with SHA-256; the signature is JOSE's raw R || S, 64
 * bytes, turned into the DER OpenSSL reads).  Every Lua error is raised
 * before or after the OpenSSL calls, never across them; every OpenSSL object
 * is freed on the path that made it.
 */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "ice.h"

#define PKEY_MT "iceservers.pkey"
#define PEM_MAX (64 * 1024)
#define RSA_MIN_BITS 2048

typedef struct {
    EVP_PKEY *key; /* NULL once closed or finalized */
    int kind;      /* EVP_PKEY_RSA or EVP_PKEY_EC */
} pkey_ud;

static int fail(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

/* Why key is not one we verify with, or NULL. */
static const char *refused(EVP_PKEY *key, int *kind)
{
    char group[64];
    size_t glen = 0;
    *kind = EVP_PKEY_get_base_id(key);
    if (*kind == EVP_PKEY_RSA)
        return EVP_PKEY_get_bits(key) < RSA_MIN_BITS ? "an RSA key must have 2048 bits or more"
                                                     : NULL;
    if (*kind == EVP_PKEY_EC) {
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1 ||
            strcmp(group, "prime256v1") != 0)
            return "an EC key must be on P-256";
        return NULL;
    }
    return "only RSA and EC (P-256) public keys";
}

/* core.pkey_load(pem) -> key, or nil and why (one line, no key material). */
static int l_pkey_load(lua_State *L)
{
    size_t n;
    const char *pem = ice_check_bytes(L, 1, &n);
    pkey_ud *u;
    BIO *bio;
    EVP_PKEY *key;
    const char *why;
    int kind = 0;

    if (n > PEM_MAX)
        return fail(L, "pkey_load: PEM text over 64 KiB");
    u = (pkey_ud *)lua_newuserdata(L, sizeof *u); /* raises, if it must, before OpenSSL */
    u->key = NULL;
    u->kind = 0;
    luaL_getmetatable(L, PKEY_MT);
    lua_setmetatable(L, -2);

    bio = BIO_new_mem_buf(pem, (int)n);
    key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (key == NULL)
        return fail(L, "pkey_load: not a PEM public key (-----BEGIN PUBLIC KEY-----)");
    why = refused(key, &kind);
    if (why != NULL) {
        EVP_PKEY_free(key);
        lua_pushnil(L);
        lua_pushfstring(L, "pkey_load: %s", why);
        return 2;
    }
    u->key = key;
    u->kind = kind;
    return 1;
}

static pkey_ud *check_open(lua_State *L)
{
    pkey_ud *u = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    if (u->key == NULL)
        luaL_error(L, "pkey: the key is closed");
    return u;
}

/*
 * The DER of a raw ES256 signature (R || S, 32 bytes each), in *der (freed
 * by the caller with OPENSSL_free); its length, or 0.
 */
static int es256_der(const unsigned char *sig, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int len = 0;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        len = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len > 0 ? len : 0;
}

/*
 * key:verify(alg, data, sig) -> true or false; nil and why when alg does not
 * go with the key (an RS256 signature cannot be checked with an EC key).  An
 * unknown alg raises: that is the caller's mistake.
 */
static int l_pkey_verify(lua_State *L)
{
    pkey_ud *u = check_open(L);
    const char *alg = luaL_checkstring(L, 2);
    size_t dlen, slen;
    const char *data = ice_check_bytes(L, 3, &dlen);
    const unsigned char *sig = (const unsigned char *)ice_check_bytes(L, 4, &slen);
    unsigned char *der = NULL;
    EVP_MD_CTX *ctx;
    int rc = 0, want;

    if (strcmp(alg, "RS256") == 0)
        want = EVP_PKEY_RSA;
    else if (strcmp(alg, "ES256") == 0)
        want = EVP_PKEY_EC;
    else
        return luaL_argerror(L, 2, "RS256 or ES256");
    if (want != u->kind)
        return fail(L, "the key's type does not go with this alg");
    if (want == EVP_PKEY_EC) {
        int len;
        if (slen != 64) { /* JOSE's form only: a DER signature here is a forgery's shape */
            lua_pushboolean(L, 0);
            return 1;
        }
        len = es256_der(sig, &der);
        if (len == 0) {
            lua_pushboolean(L, 0);
            return 1;
        }
        sig = der;
        slen = (size_t)len;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, u->key) == 1)
        rc = EVP_DigestVerify(ctx, sig, slen, (const unsigned char *)data, dlen);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    lua_pushboolean(L, rc == 1);
    return 1;
}

/* key:kind() -> "rsa" or "ec"; key:bits() -> the key size */
static int l_pkey_kind(lua_State *L)
{
    pkey_ud *u = check_open(L);
    lua_pushstring(L, u->kind == EVP_PKEY_RSA ? "rsa" : "ec");
    return 1;
}

static int l_pkey_bits(lua_State *L)
{
    pkey_ud *u = check_open(L);
    lua_pushinteger(L, EVP_PKEY_get_bits(u->key));
    return 1;
}

/* __gc and __close: safe twice, and after either the methods raise */
static int l_pkey_gc(lua_State *L)
{
    pkey_ud *u = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    EVP_PKEY_free(u->key);
    u->key = NULL;
    return 0;
}

static int l_pkey_tostring(lua_State *L)
{
    pkey_ud *u = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    if (u->key == NULL)
        lua_pushliteral(L, "iceservers.pkey(closed)");
    else
        lua_pushfstring(L, "iceservers.pkey(%s %d)", u->kind == EVP_PKEY_RSA ? "rsa" : "ec",
                        EVP_PKEY_get_bits(u->key));
    return 1;
}

const luaL_Reg ice_pkey_funcs[] = {
    {"pkey_load", l_pkey_load},
    {NULL, NULL},
};

void ice_open_pkey(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"verify", l_pkey_verify},
        {"kind", l_pkey_kind},
        {"bits", l_pkey_bits},
        {NULL, NULL},
    };
    ice_newtype(L, PKEY_MT, methods, l_pkey_gc, l_pkey_gc, l_pkey_tostring);
    lua_pop(L, 1);
}
