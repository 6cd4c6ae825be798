/*
 * The host-name check of a certificate, core.x509_check_host(pem, name), and
 * the system trust store's location, core.x509_default_paths().
 * TLS libraries that verify a peer's chain but not its name (LuaSec 1.2.0:
 * lunarmodules/luasec#161) leave this step to the caller; OpenSSL's own
 * X509_check_host / X509_check_ip_asc do it by RFC 6125, as nginx does.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "ice.h"

/* The first certificate of a PEM text, or NULL. */
static X509 *read_pem(const char *pem, size_t n)
{
    X509 *cert = NULL;
    BIO *bio;
    if (n == 0 || n > INT_MAX)
        return NULL;
    bio = BIO_new_mem_buf(pem, (int)n);
    if (bio != NULL) {
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    return cert;
}

/* An IPv4 or IPv6 literal (no brackets): checked against IP SANs only. */
static int is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/*
 * core.x509_check_host(pem, name) -> true | false, reason | nil, err.
 * name is a DNS name (subjectAltName DNS entries, wildcards for one whole
 * label; the subject CN only when there is no DNS entry, as OpenSSL and
 * nginx do) or an IP literal (subjectAltName IP entries).  The chain and
 * dates are not looked at here: that is the TLS library's verification.
 */
static int l_x509_check_host(lua_State *L)
{
    size_t pem_len, name_len;
    const char *pem = ice_check_bytes(L, 1, &pem_len);
    const char *name = ice_check_bytes(L, 2, &name_len);
    const char *err = NULL;
    X509 *cert;
    int rc;
    if (name_len == 0 || memchr(name, '\0', name_len) != NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "name: empty or holds a NUL byte");
        return 2;
    }
    /* No Lua call until OpenSSL is done and the certificate freed: a Lua
     * error (out of memory) must not jump over OpenSSL's frames or leak. */
    cert = read_pem(pem, pem_len);
    if (cert == NULL) {
        err = "certificate: not a PEM X.509 certificate";
        rc = -2;
    } else {
        rc = is_ip_literal(name) ? X509_check_ip_asc(cert, name, 0)
                                 : X509_check_host(cert, name, name_len,
                                                   X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
        if (rc < 0)
            err = rc == -2 ? "name: not a host name or IP address" : "certificate: check failed";
        X509_free(cert);
    }
    ERR_clear_error(); /* leave no stale error for the next OpenSSL user */
    if (err != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, rc == 1);
    if (rc == 1)
        return 1;
    lua_pushfstring(L, "the certificate is not for %s", name);
    return 2;
}

/* One of OpenSSL's default CA locations: the environment variable's value
 * when set, as OpenSSL's own lookup (X509_LOOKUP_file/hash_dir) takes it. */
static const char *default_path(const char *env_name, const char *compiled)
{
    const char *v = getenv(env_name);
    return v != NULL && v[0] != '\0' ? v : compiled;
}

/*
 * core.x509_default_paths() -> file, dir: the system trust store as OpenSSL
 * finds it (SSL_CTX_set_default_verify_paths), for TLS libraries that load
 * only the locations they are given (LuaSec).
 */
static int l_x509_default_paths(lua_State *L)
{
    lua_pushstring(L, default_path(X509_get_default_cert_file_env(),
                                   X509_get_default_cert_file()));
    lua_pushstring(L, default_path(X509_get_default_cert_dir_env(),
                                   X509_get_default_cert_dir()));
    return 2;
}

const luaL_Reg ice_x509_funcs[] = {
    {"x509_check_host", l_x509_check_host},
    {"x509_default_paths", l_x509_default_paths},
    {NULL, NULL},
};
