/*
 * What a server sends, as ice_http.c collects and reads it: the libcurl write
 * and header callbacks, which copy bytes into bounded C buffers (they run
 * inside curl_easy_perform, so they call no Lua), and the parser of the last
 * response's header block, run once libcurl has returned.  This is the part
 * that reads untrusted bytes, kept apart so that fuzz/fuzz_http_headers.c can
 * drive it without a network.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "ice.h"

/* ---- buffers ---------------------------------------------------------- */

void ice_buf_reset(ice_buf *b, size_t limit)
{
    if (b->cap > 256 * 1024) { /* do not keep a huge body alive in a pool */
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->limit = limit;
    b->over = 0;
}

void ice_buf_free(ice_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Returns 0 when out of memory or over the limit (b->over says which). */
static int buf_add(ice_buf *b, const char *p, size_t n)
{
    if (n > b->limit - b->len) {
        b->over = 1;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *d;
        while (cap < b->len + n)
            cap *= 2;
        d = (char *)realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}

/* ---- the libcurl callbacks ------------------------------------------------ */

size_t ice_on_body(char *p, size_t size, size_t n, void *ud)
{
    ice_buf *b = (ice_buf *)ud;
    return buf_add(b, p, size * n) ? size * n : 0;
}

/* Only the last response's headers count (a proxy or 1xx may come first). */
/* Is the collected block empty, or closed by its blank line? */
int ice_header_block_ended(const ice_buf *b)
{
    const char *d = b->data;
    size_t n = b->len;
    return n == 0 || (n >= 2 && d[n - 1] == '\n' &&
                      (d[n - 2] == '\n' || (n >= 3 && d[n - 2] == '\r' && d[n - 3] == '\n')));
}

/*
 * A status line after a finished block starts the next response (a 1xx, or
 * a proxy's CONNECT answer, comes first); one inside a block is just a line.
 */
size_t ice_on_header(char *p, size_t size, size_t n, void *ud)
{
    ice_buf *b = (ice_buf *)ud;
    if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0 && ice_header_block_ended(b))
        b->len = 0;
    return buf_add(b, p, size * n) ? size * n : 0;
}

/* ---- the header block ----------------------------------------------------- */

/*
 * The header block of the last response (what ice_on_header kept): one
 * "Name: value" per line; status lines, lines without a colon and lines that
 * start with one are skipped.  Pushes a table of lower-cased names to values
 * with their surrounding blanks (and the line's CR) trimmed.  It reads exactly
 * n bytes: the block may hold anything, NULs included.
 */
void ice_push_headers(lua_State *L, const char *p, size_t n)
{
    const char *end = p ? p + n : p;
    lua_newtable(L);
    while (p && p < end) {
        const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p));
        const char *colon, *v, *ve;
        if (eol == NULL)
            eol = end;
        colon = (const char *)memchr(p, ':', (size_t)(eol - p));
        /* the length first: a short last line must not be compared past the end */
        if (colon && colon > p && !(eol - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
            luaL_Buffer name;
            const char *k;
            v = colon + 1;
            ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            luaL_buffinit(L, &name);
            for (k = p; k < colon; k++)
                luaL_addchar(&name, (char)tolower((unsigned char)*k));
            luaL_pushresult(&name);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            /* A repeated header is joined with ", " as RFC 9110 allows; an
               empty one adds nothing, since empty list elements do not count
               (section 5.6.1), and joining it would leave a dangling ", ". */
            if (lua_type(L, -1) != LUA_TSTRING || ice_rawlen(L, -1) == 0) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            } else if (ve > v) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
}
