/*
 * Which HMAC-SHA1 strategy the signer in src/ice_crypto.c uses, and why:
 * times the credential MAC (a 40-byte "expiry:user" message) four ways.
 *   lowlevel   precomputed SHA_CTX inner/outer states, copied by value
 *   evp_copy   precomputed EVP_MD_CTX states, EVP_MD_CTX_copy_ex per call
 *   hmac_once  one-shot HMAC(EVP_sha1(), ...) per call (re-keys every time)
 *   evp_mac    EVP_MAC "HMAC", EVP_MAC_CTX_dup of a keyed context per call
 * Build and run: make bench-hmac
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define N 2000000
static const char key[] = "a-shared-secret-of-some-length-0123456789";
static char msg[] = "1795698799:user-000000000000000000000001";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bump(int i) { msg[sizeof msg - 2] = (char)('0' + i % 10); }

static unsigned sink;

static double lowlevel(void)
{
    SHA_CTX in, out, st;
    unsigned char pad[64], k[64] = {0}, ih[20], mac[20];
    int i;
    memcpy(k, key, sizeof key - 1);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA1_Init(&in); SHA1_Update(&in, pad, 64);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA1_Init(&out); SHA1_Update(&out, pad, 64);
    double t = now();
    for (i = 0; i < N; i++) {
        bump(i);
        st = in; SHA1_Update(&st, msg, sizeof msg - 1); SHA1_Final(ih, &st);
        st = out; SHA1_Update(&st, ih, 20); SHA1_Final(mac, &st);
        sink += mac[0];
    }
    return now() - t;
}

static double evp_copy(void)
{
    EVP_MD_CTX *in = EVP_MD_CTX_new(), *out = EVP_MD_CTX_new(), *st = EVP_MD_CTX_new();
    unsigned char pad[64], k[64] = {0}, ih[20], mac[20];
    unsigned len;
    int i;
    memcpy(k, key, sizeof key - 1);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    EVP_DigestInit_ex(in, EVP_sha1(), NULL); EVP_DigestUpdate(in, pad, 64);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    EVP_DigestInit_ex(out, EVP_sha1(), NULL); EVP_DigestUpdate(out, pad, 64);
    double t = now();
    for (i = 0; i < N; i++) {
        bump(i);
        EVP_MD_CTX_copy_ex(st, in); EVP_DigestUpdate(st, msg, sizeof msg - 1);
        EVP_DigestFinal_ex(st, ih, &len);
        EVP_MD_CTX_copy_ex(st, out); EVP_DigestUpdate(st, ih, 20);
        EVP_DigestFinal_ex(st, mac, &len);
        sink += mac[0];
    }
    t = now() - t;
    EVP_MD_CTX_free(in); EVP_MD_CTX_free(out); EVP_MD_CTX_free(st);
    return t;
}

static double hmac_once(void)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len;
    int i;
    double t = now();
    for (i = 0; i < N; i++) {
        bump(i);
        HMAC(EVP_sha1(), key, sizeof key - 1, (unsigned char *)msg, sizeof msg - 1, mac, &len);
        sink += mac[0];
    }
    return now() - t;
}

static double evp_mac(void)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *base = EVP_MAC_CTX_new(m);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len;
    int i;
    EVP_MAC_init(base, (const unsigned char *)key, sizeof key - 1, params);
    double t = now();
    for (i = 0; i < N; i++) {
        EVP_MAC_CTX *c = EVP_MAC_CTX_dup(base);
        bump(i);
        EVP_MAC_update(c, (unsigned char *)msg, sizeof msg - 1);
        EVP_MAC_final(c, mac, &len, sizeof mac);
        EVP_MAC_CTX_free(c);
        sink += mac[0];
    }
    t = now() - t;
    EVP_MAC_CTX_free(base); EVP_MAC_free(m);
    return t;
}

int main(void)
{
    struct { const char *name; double (*run)(void); } v[] = {
        {"lowlevel", lowlevel}, {"evp_copy", evp_copy}, {"hmac_once", hmac_once}, {"evp_mac", evp_mac},
    };
    size_t i;
    printf("%-10s %12s\n", "variant", "MACs/s");
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        double best = 1e9;
        int r;
        for (r = 0; r < 3; r++) { double t = v[i].run(); if (t < best) best = t; }
        printf("%-10s %12.0f\n", v[i].name, N / best);
    }
    return sink == 12345 ? 1 : 0;
}
