-- luacheck: globals ngx
--[==[
Malformed HTTP responses, byte for byte, for spec/cosocket_spec.lua: a content
handler of a test nginx that writes a canned answer on the raw connection
(ngx.req.socket(true): nginx adds nothing of its own) and then closes it.

  location /raw/ { content_by_lua_file ${root}/spec/support/raw_mock.lua; }

  /raw/<case>   the answer M.CASES[case] (404 for an unknown case)

Required from a spec instead (outside nginx), it returns M, whose CASES are
the answers by name, so a spec can loop over them.
]==]
local M = {}

local function answer(head, body)
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" .. head .. "\r\n" .. body
end

local function chunked(chunks, extra)
  return answer("Transfer-Encoding: chunked\r\n" .. (extra or ""), chunks)
end

local HELLO = "5\r\nhello\r\n0\r\n\r\n" -- "hello", chunked

M.CASES = {
  -- Content-Length that is not a plain decimal number
  cl_negative = answer("Content-Length: -5\r\n", "hello"),
  cl_hex = answer("Content-Length: 0x2\r\n", "ab"),
  cl_plus = answer("Content-Length: +2\r\n", "ab"),
  cl_inner_space = answer("Content-Length: 1 2\r\n", "abcdefghijkl"),
  cl_bare_cr = answer("Content-Length: 1\r2\r\n", "abcdefghijkl"),
  cl_trailing = answer("Content-Length: 2abc\r\n", "ab"),
  cl_fraction = answer("Content-Length: 2.0\r\n", "ab"),
  cl_exponent = answer("Content-Length: 2e0\r\n", "ab"),
  cl_empty = answer("Content-Length: \r\n", "ab"),
  cl_huge = answer("Content-Length: 123456789012345678901234567890\r\n", "ab"),
  -- several Content-Length values, alike or not
  cl_conflict = answer("Content-Length: 2\r\nContent-Length: 5\r\n", "abcde"),
  cl_conflict_list = answer("Content-Length: 2, 5\r\n", "abcde"),
  cl_same_twice = answer("Content-Length: 2\r\nContent-Length: 2\r\n", "ab"),
  cl_same_list = answer("Content-Length: 2, 2\r\n", "ab"),
  cl_leading_zeros = answer("Content-Length: 0000000000000000000002\r\n", "ab"),
  -- Transfer-Encoding: chunked with a Content-Length, in either order
  te_and_cl = chunked(HELLO, "Content-Length: 100\r\n"),
  cl_and_te = answer("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", HELLO),
  te_upper = answer("Transfer-Encoding: CHUNKED\r\n", HELLO),
  te_space = answer("Transfer-Encoding:  chunked \r\n", HELLO),
  -- other transfer codings (the body is "hello" chunked, not coded)
  te_gzip_chunked = answer("Transfer-Encoding: gzip, chunked\r\n", HELLO),
  te_chunked_gzip = answer("Transfer-Encoding: chunked, gzip\r\n", HELLO),
  te_two_headers = answer("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", HELLO),
  te_xchunked = answer("Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n", HELLO),
  te_identity = answer("Transfer-Encoding: identity\r\nContent-Length: 3\r\n", HELLO),
  te_chunked_chunked = answer("Transfer-Encoding: chunked, chunked\r\n", HELLO),
  -- chunk sizes that are not plain hexadecimal numbers
  chunk_0x = chunked("0x5\r\nhello\r\n0\r\n\r\n"),
  chunk_negative = chunked("-5\r\nhello\r\n0\r\n\r\n"),
  chunk_plus = chunked("+5\r\nhello\r\n0\r\n\r\n"),
  chunk_leading_space = chunked(" 5\r\nhello\r\n0\r\n\r\n"),
  chunk_empty = chunked("\r\nhello\r\n0\r\n\r\n"),
  chunk_long = chunked("00000000000000005\r\nhello\r\n0\r\n\r\n"), -- 17 digits
  chunk_huge = chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
  -- trailers over 64 KiB
  chunk_trailer_flood = chunked("5\r\nhello\r\n0\r\n"
    .. string.rep("X-Trailer: " .. string.rep("t", 1000) .. "\r\n", 100) .. "\r\n"),
  -- well-formed: chunk extensions (blanks before them), 16 digits, a trailer
  chunk_ext = chunked("5;name=value\r\nhello\r\n6 ; q=\"a b\"\r\n world\r\n0;last\r\n\r\n"),
  chunk_sixteen = chunked("0000000000000005\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"),
}

if not (type(ngx) == "table" and ngx.get_phase and ngx.get_phase() == "content") then
  return M -- required from a spec
end

local text = M.CASES[ngx.var.uri:match("^/raw/([%w_]+)$") or ""]
if not text then
  ngx.status = 404
  ngx.print("no such case")
  return ngx.exit(404)
end
ngx.req.read_body()
local sock = assert(ngx.req.socket(true))
sock:settimeout(10000)
sock:send(text)
return ngx.exit(ngx.OK)
