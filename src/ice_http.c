/*
 * HTTP through libcurl: core.http_request(req) and core.http_client(defaults).
 *
 * Every curl handle, header list and buffer is owned by one userdata with a
 * __gc, created before any of them, so a Lua error raised while a request is
 * being assembled cannot leak them.  No Lua function is called while libcurl
 * runs: its callbacks (ice_http_response.c, with the header parser) only copy
 * bytes into C buffers, and the Lua tables are built after curl_easy_perform
 * returns.  Runtime failures come back as nil, err; only misuse (wrong
 * argument types) raises, and always before libcurl is entered.
 *
 * Lua code does run during a request outside libcurl: metamethods of the
 * request table while it is read, and finalizers of any object at any
 * allocation.  It may reach the client itself, so a request marks its client
 * busy (run_request) and close and request refuse a busy client; and it may
 * change the request's tables, so every table entry is checked again where it
 * is used.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "ice.h"

#define CLIENT_MT "iceservers.http_client"
#define DEFAULT_TIMEOUT 5.0
#define DEFAULT_CONNECT_TIMEOUT 2.0
#define DEFAULT_MAX_BODY (1024.0 * 1024.0)

typedef struct {
    CURL *easy;
    struct curl_slist *headers; /* request headers of the transfer in flight */
    struct curl_slist *resolve; /* this transfer's resolve list */
    struct curl_slist *forget;  /* "-host:port" for the entries added last time */
    ice_buf body, head;
    int defaults_ref; /* registry ref of the client's default req, or LUA_NOREF */
    int closed;
    int busy; /* set by run_request while a request of this handle runs */
    char errbuf[CURL_ERROR_SIZE];
} client;

/* The options of one request, read from Lua before libcurl is touched. */
typedef struct {
    const char *method, *url, *body, *cafile, *proxy;
    size_t body_len, url_len;
    long timeout_ms, connect_timeout_ms;
    double max_body;
    int verify, has_body;
    int headers_idx, defheaders_idx, resolve_idx, defresolve_idx; /* 0 if absent */
} request;

/* ---- the client handle --------------------------------------------------- */

static void client_release(lua_State *L, client *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    c->easy = NULL;
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->resolve);
    curl_slist_free_all(c->forget);
    c->headers = c->resolve = c->forget = NULL;
    ice_buf_free(&c->body);
    ice_buf_free(&c->head);
    luaL_unref(L, LUA_REGISTRYINDEX, c->defaults_ref);
    c->defaults_ref = LUA_NOREF;
}

/* A zeroed, closed handle with its metatable, before any resource exists. */
static client *client_new(lua_State *L)
{
    client *c = (client *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->closed = 1;
    c->defaults_ref = LUA_NOREF;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);
    c->easy = curl_easy_init();
    c->closed = 0;
    if (c->easy == NULL) {
        client_release(L, c);
        luaL_error(L, "http: curl_easy_init failed");
    }
    return c;
}

/* Freeing the handle under a running request would pull its buffers and curl
   handle away from it: a programming mistake, so it raises. */
static int l_client_close(lua_State *L)
{
    client *c = (client *)luaL_checkudata(L, 1, CLIENT_MT);
    if (c->busy)
        return luaL_error(L, "http: close called during a request of this client");
    client_release(L, c);
    return 0;
}

/* A busy client is on the running request's stack, so it is never garbage;
   the test only keeps __gc from ever raising. */
static int l_client_gc(lua_State *L)
{
    client *c = (client *)luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->busy)
        client_release(L, c);
    return 0;
}

static int l_client_tostring(lua_State *L)
{
    client *c = (client *)luaL_checkudata(L, 1, CLIENT_MT);
    lua_pushfstring(L, c->closed ? "iceservers.http_client (closed)" : "iceservers.http_client (%p)",
                    (void *)c);
    return 1;
}

/* ---- reading the request table ------------------------------------------- */

/*
 * luaL_error as the caller of request() sees it: perform runs under
 * run_request's lua_pcall, one C level deeper, so the caller is level 2.
 */
static int req_error(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    luaL_where(L, 2);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Pushes req[name], or defaults[name] when req has none (nil if neither). */
static int get_field(lua_State *L, int req, int defs, const char *name)
{
    lua_getfield(L, req, name);
    if (lua_isnil(L, -1) && defs) {
        lua_pop(L, 1);
        lua_getfield(L, defs, name);
    }
    return lua_type(L, -1);
}

static const char *opt_string(lua_State *L, int req, int defs, const char *name, size_t *len)
{
    int t = get_field(L, req, defs, name);
    if (t == LUA_TNIL)
        return NULL;
    if (t != LUA_TSTRING)
        req_error(L, "http: req.%s must be a string, got %s", name, lua_typename(L, t));
    return lua_tolstring(L, -1, len); /* stays on the stack until the call ends */
}

static double opt_seconds(lua_State *L, int req, int defs, const char *name, double dflt)
{
    int t = get_field(L, req, defs, name);
    double v;
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return dflt;
    }
    if (t != LUA_TNUMBER)
        req_error(L, "http: req.%s must be a number, got %s", name, lua_typename(L, t));
    v = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(v > 0 && v <= 86400))
        req_error(L, "http: req.%s must be a number of seconds above 0 and at most 86400", name);
    return v;
}

/* Index of a table field (req first, then defaults) left on the stack, or 0. */
static int opt_table(lua_State *L, int idx, const char *name)
{
    int t;
    if (idx == 0)
        return 0;
    t = get_field(L, idx, 0, name);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TTABLE)
        req_error(L, "http: req.%s must be a table, got %s", name, lua_typename(L, t));
    return lua_gettop(L);
}

/* The key and value lua_next left on top must both be strings. */
static void check_pair(lua_State *L, const char *what)
{
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        req_error(L, "http: req.%s must map strings to strings", what);
}

/* Misuse is checked here, in full, before anything is allocated for curl. */
static void check_string_map(lua_State *L, int idx, const char *what)
{
    if (idx == 0)
        return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        check_pair(L, what);
        lua_pop(L, 1);
    }
}

static void read_request(lua_State *L, int req, int defs, request *r)
{
    int t;
    memset(r, 0, sizeof *r);
    r->url = opt_string(L, req, defs, "url", &r->url_len);
    if (r->url == NULL)
        req_error(L, "http: req.url is required");
    r->method = opt_string(L, req, defs, "method", NULL);
    if (r->method == NULL)
        r->method = "GET";
    else {
        const char *m = r->method;
        if (*m == '\0')
            req_error(L, "http: req.method is empty");
        for (; *m; m++)
            if (!isupper((unsigned char)*m))
                req_error(L, "http: req.method must be an upper-case token such as GET or POST");
    }
    r->body = opt_string(L, req, 0, "body", &r->body_len);
    r->has_body = r->body != NULL;
    r->cafile = opt_string(L, req, defs, "cafile", NULL);
    r->proxy = opt_string(L, req, defs, "proxy", NULL);
    r->timeout_ms = (long)(opt_seconds(L, req, defs, "timeout", DEFAULT_TIMEOUT) * 1000 + 0.5);
    r->connect_timeout_ms =
        (long)(opt_seconds(L, req, defs, "connect_timeout", DEFAULT_CONNECT_TIMEOUT) * 1000 + 0.5);

    t = get_field(L, req, defs, "max_body");
    if (t == LUA_TNIL)
        r->max_body = DEFAULT_MAX_BODY;
    else if (t != LUA_TNUMBER)
        req_error(L, "http: req.max_body must be a number, got %s", lua_typename(L, t));
    else {
        r->max_body = (double)lua_tonumber(L, -1);
        if (!(r->max_body >= 0 && r->max_body <= 1073741824.0))
            req_error(L, "http: req.max_body must be a number of bytes from 0 to 1 GiB");
    }
    lua_pop(L, 1);

    t = get_field(L, req, defs, "verify");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        req_error(L, "http: req.verify must be a boolean, got %s", lua_typename(L, t));
    r->verify = t == LUA_TNIL || lua_toboolean(L, -1);
    lua_pop(L, 1);

    r->headers_idx = opt_table(L, req, "headers");
    r->defheaders_idx = opt_table(L, defs, "headers");
    r->resolve_idx = opt_table(L, req, "resolve");
    r->defresolve_idx = opt_table(L, defs, "resolve");
    check_string_map(L, r->headers_idx, "headers");
    check_string_map(L, r->defheaders_idx, "headers");
    check_string_map(L, r->resolve_idx, "resolve");
    check_string_map(L, r->defresolve_idx, "resolve");
}

/* ---- errors that name the host and never the secrets ------------------- */

/*
 * "GET https://host:port/..." -- the path, query and user info are left out
 * because provider keys travel in them.  Written into out (size n).
 */
static void describe_target(const request *r, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, r->url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        snprintf(out, n, "%s %s://%s%s%s/...", r->method, scheme, host, port ? ":" : "",
                 port ? port : "");
    } else {
        snprintf(out, n, "%s (malformed URL)", r->method);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* Blank out every occurrence of s (if long enough to matter) inside msg. */
static void scrub(char *msg, const char *s, size_t n)
{
    char *p;
    if (s == NULL || n < 4)
        return;
    while ((p = strstr(msg, s)) != NULL) {
        size_t rest = strlen(p + n);
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, rest + 1);
    }
}

static int push_failure(lua_State *L, const request *r, const char *fmt, ...)
{
    char target[512], what[CURL_ERROR_SIZE + 64], msg[sizeof target + sizeof what + 4];
    const char *q;
    va_list ap;
    describe_target(r, target, sizeof target);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", target, what);
    /* libcurl's own text names hosts, not paths; this is the second line of defence */
    q = strchr(r->url, '?');
    if (q)
        scrub(msg, q + 1, strlen(q + 1));
    if (r->proxy) {
        const char *at = strrchr(r->proxy, '@');
        if (at)
            scrub(msg, r->proxy, (size_t)(at - r->proxy));
    }
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* ---- assembling and running one transfer --------------------------------- */

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/*
 * Whether the table at idx (string keys only) has name as a key, in any case.
 * The entries are checked again in these loops: a finalizer run by an
 * allocation (lua_pushfstring) may have changed the table since
 * check_string_map.
 */
static int has_name(lua_State *L, int idx, const char *name)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        check_pair(L, "headers");
        lua_pop(L, 1);
        if (strcasecmp(lua_tostring(L, -1), name) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/*
 * Appends "name: value" for each header; a default is skipped when the request
 * names the same header (names are case-insensitive).  Returns NULL on
 * success, or the reason.
 */
static const char *add_headers(lua_State *L, client *c, int idx, int override_idx)
{
    if (idx == 0)
        return NULL;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *name, *value;
        size_t name_len, value_len;
        struct curl_slist *n;
        check_pair(L, "headers");
        name = lua_tolstring(L, -2, &name_len);
        value = lua_tolstring(L, -1, &value_len);
        if (override_idx && has_name(L, override_idx, name)) {
            lua_pop(L, 1);
            continue;
        }
        if (*name == '\0' || strpbrk(name, ": \t\r\n") || has_crlf(value) ||
            strlen(name) != name_len || strlen(value) != value_len) {
            lua_pop(L, 2);
            return "a request header name or value holds a line break or is malformed";
        }
        /* "Name;" is libcurl's way to send a header with an empty value. */
        lua_pushfstring(L, *value ? "%s: %s" : "%s;", name, value);
        n = curl_slist_append(c->headers, lua_tostring(L, -1));
        lua_pop(L, 2); /* the line and the value; the key stays for lua_next */
        if (n == NULL)
            return "out of memory";
        c->headers = n;
    }
    return NULL;
}

static const char *add_resolve(lua_State *L, client *c, int idx)
{
    if (idx == 0)
        return NULL;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *hostport, *addr;
        struct curl_slist *n, *f;
        check_pair(L, "resolve");
        hostport = lua_tostring(L, -2);
        addr = lua_tostring(L, -1);
        if (has_crlf(hostport) || has_crlf(addr) || strchr(hostport, ':') == NULL) {
            lua_pop(L, 2);
            return "req.resolve keys must be \"host:port\"";
        }
        lua_pushfstring(L, "%s:%s", hostport, addr);
        n = curl_slist_append(c->resolve, lua_tostring(L, -1));
        if (n)
            c->resolve = n;
        lua_pushfstring(L, "-%s", hostport);
        f = n ? curl_slist_append(c->forget, lua_tostring(L, -1)) : NULL;
        if (f)
            c->forget = f;
        lua_pop(L, 3); /* both lines and the value; the key stays for lua_next */
        if (n == NULL || f == NULL)
            return "out of memory";
    }
    return NULL;
}

/* Resolve entries live in the handle's DNS cache; drop the previous ones. */
static const char *prepare_resolve(lua_State *L, client *c, const request *r)
{
    struct curl_slist *old = c->forget, *s;
    const char *err;
    curl_slist_free_all(c->resolve);
    c->resolve = NULL;
    c->forget = NULL;
    for (s = old; s; s = s->next) {
        struct curl_slist *n = curl_slist_append(c->resolve, s->data);
        if (n == NULL) {
            curl_slist_free_all(old);
            return "out of memory";
        }
        c->resolve = n;
    }
    curl_slist_free_all(old);
    if ((err = add_resolve(L, c, r->resolve_idx)) != NULL)
        return err;
    return add_resolve(L, c, r->defresolve_idx);
}

static int scheme_allowed(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

#define SET(opt, val)                                                          \
    do {                                                                       \
        if (curl_easy_setopt(c->easy, (opt), (val)) != CURLE_OK)              \
            return push_failure(L, r, "libcurl rejected %s", #opt);         \
    } while (0)

static int push_response(lua_State *L, client *c)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
    lua_setfield(L, -2, "body");
    ice_push_headers(L, c->head.data, c->head.len);
    lua_setfield(L, -2, "headers");
    return 1;
}

/* Under run_request's lua_pcall: l_perform(client, req, defaults or nil). */
static int perform(lua_State *L, client *c, int req, int defs)
{
    request rq, *r = &rq;
    const char *err;
    CURLcode rc;
    int base = lua_gettop(L);

    if (c->closed) /* again: a finalizer may have closed it before it was busy */
        return req_error(L, "http: the client is closed");
    luaL_checkstack(L, 40, "http");
    read_request(L, req, defs, r);
    if (!scheme_allowed(r->url))
        return push_failure(L, r, "only http and https URLs are allowed");
    /* libcurl reads C strings: the rest of a URL after a NUL would vanish. */
    if (strlen(r->url) != r->url_len)
        return push_failure(L, r, "the URL holds a NUL byte");

    curl_easy_reset(c->easy); /* keeps the connection and DNS caches */
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    ice_buf_reset(&c->body, (size_t)r->max_body);
    ice_buf_reset(&c->head, ICE_HEADER_CAP);
    c->errbuf[0] = '\0';

    if ((err = add_headers(L, c, r->headers_idx, 0)) != NULL ||
        (err = add_headers(L, c, r->defheaders_idx, r->headers_idx)) != NULL ||
        (err = prepare_resolve(L, c, r)) != NULL)
        return push_failure(L, r, "%s", err);
    if (r->has_body) { /* a slow server must not cost a second of 100-continue */
        struct curl_slist *n = curl_slist_append(c->headers, "Expect:");
        if (n == NULL)
            return push_failure(L, r, "out of memory");
        c->headers = n;
    }

    SET(CURLOPT_URL, r->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, r->verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
    if (r->cafile)
        SET(CURLOPT_CAINFO, r->cafile);
    if (r->proxy)
        SET(CURLOPT_PROXY, r->proxy); /* "" turns off the *_proxy variables */
    SET(CURLOPT_USERAGENT, "iceservers/" ICE_VERSION_STRING);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_WRITEFUNCTION, ice_on_body);
    SET(CURLOPT_WRITEDATA, &c->body);
    SET(CURLOPT_HEADERFUNCTION, ice_on_header);
    SET(CURLOPT_HEADERDATA, &c->head);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    if (c->headers)
        SET(CURLOPT_HTTPHEADER, c->headers);
    if (c->resolve)
        SET(CURLOPT_RESOLVE, c->resolve);
    if (strcmp(r->method, "HEAD") == 0)
        SET(CURLOPT_NOBODY, 1L);
    else if (strcmp(r->method, "GET") != 0 || r->has_body)
        SET(CURLOPT_CUSTOMREQUEST, r->method);
    if (r->has_body || strcmp(r->method, "POST") == 0) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_POSTFIELDS, r->has_body ? r->body : "");
    }

    rc = curl_easy_perform(c->easy);

    if (rc == CURLE_OK)
        err = NULL;
    else if (c->body.over || rc == CURLE_FILESIZE_EXCEEDED)
        return push_failure(L, r, "response body over max_body (%.0f bytes)", r->max_body);
    else if (c->head.over)
        return push_failure(L, r, "response headers over %d bytes", ICE_HEADER_CAP);
    else if (rc == CURLE_OPERATION_TIMEDOUT && strncmp(c->errbuf, "Connection", 10) == 0)
        return push_failure(L, r, "connection timed out after %ld ms", r->connect_timeout_ms);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        return push_failure(L, r, "timed out after %ld ms", r->timeout_ms);
    else
        return push_failure(L, r, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));

    lua_settop(L, base);
    return push_response(L, c);
}

static int l_perform(lua_State *L)
{
    return perform(L, (client *)lua_touserdata(L, 1), 2, lua_isnil(L, 3) ? 0 : 3);
}

/*
 * Runs perform on the client at stack index ud with the client marked busy,
 * under lua_pcall so that every way out (errors included) clears the mark.
 * Returns lua_pcall's status: perform's results, or the error, are on top.
 */
static int run_request(lua_State *L, client *c, int ud, int req, int defs)
{
    int status;
    if (c->closed)
        return luaL_error(L, "http: the client is closed");
    if (c->busy)
        return luaL_error(L, "http: request called during a request of this client");
    luaL_checkstack(L, 4, "http");
    lua_pushcfunction(L, l_perform);
    lua_pushvalue(L, ud);
    lua_pushvalue(L, req);
    if (defs)
        lua_pushvalue(L, defs);
    else
        lua_pushnil(L);
    c->busy = 1; /* only now: the pushes above may raise (out of memory) */
    status = lua_pcall(L, 3, LUA_MULTRET, 0);
    c->busy = 0;
    return status;
}

static int check_req(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    return ice_absindex(L, idx);
}

/* core.http_request(req): a handle for one transfer, closed before returning. */
static int l_http_request(lua_State *L)
{
    int req = check_req(L, 1), status;
    client *c;
    lua_settop(L, 1);
    c = client_new(L); /* at 2 */
    status = run_request(L, c, 2, req, 0);
    client_release(L, c);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - 2;
}

/* core.http_client([defaults]) */
static int l_http_client(lua_State *L)
{
    client *c;
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    c = client_new(L);
    if (lua_istable(L, 1)) {
        lua_pushvalue(L, 1);
        c->defaults_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

static int l_client_request(lua_State *L)
{
    client *c = (client *)luaL_checkudata(L, 1, CLIENT_MT);
    int req = check_req(L, 2), defs = 0, base;
    lua_settop(L, 2);
    if (c->defaults_ref != LUA_NOREF && !c->closed) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->defaults_ref);
        defs = lua_gettop(L);
    }
    base = lua_gettop(L);
    if (run_request(L, c, 1, req, defs) != 0)
        return lua_error(L);
    return lua_gettop(L) - base;
}

int ice_http_global_init(lua_State *L)
{
    static int done = 0;
    if (!done) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
            return luaL_error(L, "iceservers.core: curl_global_init failed: %s",
                              curl_easy_strerror(rc));
        done = 1;
    }
    return 0;
}

const luaL_Reg ice_http_funcs[] = {
    {"http_request", l_http_request},
    {"http_client", l_http_client},
    {NULL, NULL},
};

void ice_open_client(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", l_client_request},
        {"close", l_client_close},
        {NULL, NULL},
    };
    ice_newtype(L, CLIENT_MT, methods, l_client_gc, l_client_close, l_client_tostring);
    lua_pop(L, 1);
}
