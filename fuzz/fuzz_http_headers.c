/*
 * What src/ice_http_response.c takes from the network, without a network:
 *   - ice_on_header / ice_on_body, the libcurl callbacks that collect a
 *     response into an ice_buf, against a model kept here: a header line
 *     starting with "HTTP/" after a finished block (or none) empties the
 *     header buffer (a new response), a chunk that would pass the limit is
 *     refused (0 returned, over set) and nothing else changes; ice_buf_reset
 *     and ice_buf_free as ice_http.c's perform() uses them;
 *   - ice_push_headers, the header-block parser behind ice_http.c's
 *     push_response, on what the callbacks collected and on the raw input:
 *     every key is a non-empty lower-case name without ':' or a line break,
 *     every value a string without a line break, trimmed of blanks (and the
 *     CR) at both ends.
 * Input: byte 0 the limit (bit 7: the real ICE_HEADER_CAP, else 16 * the low
 * bits), byte 1 the chunking (bit 0: one chunk per line as libcurl calls the
 * header callback, else fixed chunks of 1 + byte1 / 2 bytes), byte 2 how many
 * times the rest is repeated (1 to 32: huge lines and blocks), then the bytes.
 * Every chunk and block is copied to a buffer of its exact size first, so an
 * overread shows under ASan.
 */
#include "fuzz_lua.h"
#include "ice.h"

typedef size_t (*callback)(char *, size_t, size_t, void *);

static char *dup_exact(const char *p, size_t n)
{
    char *d = (char *)malloc(n ? n : 1);
    if (d == NULL)
        abort();
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Length of the chunk that starts at s[at] (n bytes in all). */
static size_t chunk_len(const char *s, size_t n, size_t at, int by_line, size_t fixed)
{
    if (by_line) {
        const char *nl = (const char *)memchr(s + at, '\n', n - at);
        return nl ? (size_t)(nl - (s + at)) + 1 : n - at;
    }
    return n - at < fixed ? n - at : fixed;
}

/*
 * Feeds s to cb in chunks the way libcurl would (stopping at the first
 * refusal), checking each step against the model; returns whether every chunk
 * was taken.
 */
static int feed(ice_buf *b, callback cb, int header, const char *s, size_t n, int by_line,
                size_t fixed, char *model, size_t *mlen)
{
    size_t at = 0;
    while (at < n) {
        size_t len = chunk_len(s, n, at, by_line, fixed), got;
        char *chunk = dup_exact(s + at, len);
        int refuse;
        if (header && len >= 5 && memcmp(chunk, "HTTP/", 5) == 0 && ice_header_block_ended(b))
            *mlen = 0;
        refuse = len > b->limit - *mlen;
        got = cb(chunk, 1, len, b);
        if (refuse) {
            if (got != 0 || !b->over)
                fuzz_fail("a chunk over the limit was not refused", NULL);
        } else {
            if (got != len || b->over)
                fuzz_fail("a chunk within the limit was refused", NULL);
            memcpy(model + *mlen, chunk, len);
            *mlen += len;
        }
        free(chunk);
        if (b->len != *mlen || b->len > b->limit || b->len > b->cap ||
            (*mlen && memcmp(b->data, model, *mlen) != 0))
            fuzz_fail(header ? "the header buffer differs from the model"
                             : "the body buffer differs from the model", NULL);
        if (refuse)
            return 0;
        at += len;
    }
    return 1;
}

static int push_headers(lua_State *L)
{
    const char *p = (const char *)lua_touserdata(L, 1);
    size_t n = (size_t)lua_tointeger(L, 2);
    ice_push_headers(L, p, n);
    return 1;
}

static void check_headers(lua_State *L, const char *block, size_t n)
{
    char *exact = dup_exact(block, n);
    size_t lines = 1, keys = 0, i;
    for (i = 0; i < n; i++)
        lines += block[i] == '\n';
    lua_pushcfunction(L, push_headers);
    lua_pushlightuserdata(L, n ? exact : NULL);
    lua_pushinteger(L, (lua_Integer)n);
    fuzz_pcall(L, 2, 1, "ice_push_headers raised");
    free(exact);
    if (!lua_istable(L, -1))
        fuzz_fail("ice_push_headers did not push a table", NULL);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t kl, vl;
        const char *k = fuzz_string(L, -2, &kl, "a header name is not a string");
        const char *v = fuzz_string(L, -1, &vl, "a header value is not a string");
        keys++;
        if (kl == 0)
            fuzz_fail("empty header name", NULL);
        for (i = 0; i < kl; i++)
            if ((k[i] >= 'A' && k[i] <= 'Z') || k[i] == ':' || k[i] == '\n')
                fuzz_fail("header name not lower-case or holds ':' or a line break", NULL);
        if (memchr(v, '\n', vl))
            fuzz_fail("header value holds a line break", NULL);
        if (vl && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t' ||
                   v[vl - 1] == '\r'))
            fuzz_fail("header value not trimmed", k);
        if (vl > n)
            fuzz_fail("header value longer than the block", NULL);
        lua_pop(L, 1);
    }
    if (keys > lines)
        fuzz_fail("more header names than lines", NULL);
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L;
    ice_buf head, body;
    size_t limit, fixed, repeat, n, i, hlen = 0, blen = 0;
    int by_line, all_in;
    char *stream, *model_h, *model_b;
    if (size < 3)
        return 0;
    limit = (data[0] & 0x80) ? ICE_HEADER_CAP : (size_t)(data[0] & 0x7f) * 16;
    by_line = data[1] & 1;
    fixed = (size_t)(data[1] >> 1) + 1;
    repeat = (size_t)(data[2] & 31) + 1;
    data += 3;
    size -= 3;
    n = size * repeat;
    stream = (char *)malloc(n ? n : 1);
    model_h = (char *)malloc(limit ? limit : 1);
    model_b = (char *)malloc(limit ? limit : 1);
    if (!stream || !model_h || !model_b)
        abort();
    for (i = 0; i < repeat; i++)
        if (size)
            memcpy(stream + i * size, data, size);

    memset(&head, 0, sizeof head);
    memset(&body, 0, sizeof body);
    ice_buf_reset(&head, limit);
    ice_buf_reset(&body, limit);
    feed(&head, ice_on_header, 1, stream, n, by_line, fixed, model_h, &hlen);
    all_in = feed(&body, ice_on_body, 0, stream, n, by_line, fixed, model_b, &blen);
    if (all_in && (blen != n || (n && memcmp(body.data, stream, n) != 0)))
        fuzz_fail("the body buffer lost bytes", NULL);

    L = fuzz_state();
    check_headers(L, head.data ? head.data : "", head.len);
    check_headers(L, (const char *)data, size);
    lua_close(L);

    /* A pooled client's next transfer: the buffers are reset, not freed. */
    ice_buf_reset(&head, limit);
    ice_buf_reset(&body, limit);
    if (head.len || head.over || body.len || body.over)
        fuzz_fail("ice_buf_reset left bytes or the over flag", NULL);
    hlen = blen = 0;
    feed(&head, ice_on_header, 1, stream, size, by_line, fixed, model_h, &hlen);
    feed(&body, ice_on_body, 0, stream, size, by_line, fixed, model_b, &blen);
    ice_buf_free(&head);
    ice_buf_free(&body);
    if (head.data || head.cap || body.data || body.cap)
        fuzz_fail("ice_buf_free left a buffer", NULL);
    free(stream);
    free(model_h);
    free(model_b);
    return 0;
}
