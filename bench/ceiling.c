/*
 * B1's ceiling: the credential loop of bench/sign.lua in plain C with OpenSSL,
 * as fast as it goes on one core.  Each username is "<expiry>:user-<i>" (a
 * different user id each time); its password is base64(HMAC-SHA1(secret,
 * username)), with the HMAC key schedule precomputed once (the fastest of the
 * variants bench/hmac_variants.c compares) and OpenSSL's EVP_EncodeBlock.
 *
 *   build/bench/ceiling SECONDS   ->  rate=<credentials/s> n=<count> check=<password of user-1>
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

static const char secret[] = "a-shared-secret-of-some-length-0123456789";
static const char prefix[] = "1800000000:user-";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static SHA_CTX inner, outer;

static void key(void)
{
    unsigned char k[64] = {0}, pad[64];
    int i;
    memcpy(k, secret, sizeof secret - 1);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA1_Init(&inner); SHA1_Update(&inner, pad, 64);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA1_Init(&outer); SHA1_Update(&outer, pad, 64);
}

/* The username of user id i into buf; returns its length. */
static size_t username(char *buf, unsigned long i)
{
    char digits[24];
    size_t n = 0, len = sizeof prefix - 1;
    memcpy(buf, prefix, len);
    do { digits[n++] = (char)('0' + i % 10); i /= 10; } while (i);
    while (n) buf[len++] = digits[--n];
    return len;
}

/* password (28 base64 characters and a NUL) of the username */
static void sign(const char *user, size_t n, unsigned char *password)
{
    SHA_CTX st;
    unsigned char ih[SHA_DIGEST_LENGTH], mac[SHA_DIGEST_LENGTH];
    st = inner; SHA1_Update(&st, user, n); SHA1_Final(ih, &st);
    st = outer; SHA1_Update(&st, ih, sizeof ih); SHA1_Final(mac, &st);
    EVP_EncodeBlock(password, mac, sizeof mac);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1, t0, elapsed;
    unsigned long id = 0, n = 0, i;
    unsigned sink = 0;
    char user[64];
    unsigned char password[32], check[32];

    key();
    sign(user, username(user, 1), check);
    for (i = 1; i <= 20000; i++) { sign(user, username(user, i), password); sink += password[0]; }
    t0 = now();
    do {
        for (i = 0; i < 20000; i++) {
            id++;
            sign(user, username(user, id), password);
            sink += password[3];
        }
        n += 20000;
        elapsed = now() - t0;
    } while (elapsed < seconds);
    printf("rate=%.0f n=%lu check=%s\n", n / elapsed, n, (char *)check);
    return sink == 1 ? 2 : 0;
}
