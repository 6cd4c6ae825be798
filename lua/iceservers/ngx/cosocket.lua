-- luacheck: globals ngx
--[[
HTTP/1.1 over nginx cosockets, for providers called from inside nginx, where
a blocking libcurl call would stall every connection of the worker.  Takes
the same req and returns the same response as iceservers.core.http_request.

What differs inside nginx, by nginx's design:
- TLS trust comes from `lua_ssl_trusted_certificate` (req.cafile is ignored),
  and names are resolved by nginx's `resolver`, which ignores /etc/hosts; use
  req.resolve to pin an address.
- Certificates are verified by name only, so an https URL with an IP address
  cannot be verified: that is an error unless verify = false.
- No proxy support (req.proxy is ignored).
Connections are kept alive per host, port, address and TLS settings.
]]
local M = {}

local VERSION = require("iceservers.core")._VERSION
local DEFAULTS = { timeout = 5, connect_timeout = 2, max_body = 1024 * 1024 }
local KEEPALIVE_MS, POOL_SIZE = 60000, 16
local HEADER_CAP = 64 * 1024 -- response header block, as libcurl's client (ICE_HEADER_CAP)
-- A space, a control byte or DEL in a URL would end or split the request line
-- (or the Host line): libcurl refuses such URLs, and so does this transport.
local LINE_BREAKER = "[%z\1-\32\127]"
local BAD_NAME_BYTE = "[%z\1-\32\127:]"
local BAD_HEADER = "a request header name or value holds a line break or is malformed"
local BAD_FRAMING = "req.headers frame the body otherwise than it is "
  .. "(a Transfer-Encoding, or a Content-Length that is not its length)"

local function fail(req, target, what)
  return nil, ("%s %s/...: %s"):format(req.method or "GET", target, what)
end

-- Returns scheme, host, port, path and whether the path, query and fragment
-- are free of line breakers; nil when the URL (or its host) is malformed.
local function parse_url(url)
  local scheme, authority, rest = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme or authority:find(LINE_BREAKER) then return nil end
  scheme = scheme:lower()
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  if host then
    host = "[" .. host .. "]"
  else
    host, port = authority:match("^([^:@]+):?(%d*)$")
  end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local path = rest:gsub("#.*$", "")
  if path == "" or path:sub(1, 1) == "?" then path = "/" .. path end
  return scheme, host, port, path, not rest:find(LINE_BREAKER)
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:sub(1, 1) == "["
end

-- Every read and write gets what is left of the total timeout.
local function remaining_ms(deadline)
  return math.max(1, math.floor((deadline - ngx.now()) * 1000))
end

-- The response is read through receiveany, never receive(n) or receive("*l"):
-- nginx re-arms a cosocket's read timer whenever bytes arrive, so one of those
-- against a server that drips a byte a second would outlast any timeout.
-- receiveany returns what has arrived, and each wait gets what is left of the
-- deadline.  Returns line(limit, why) (without its CR and LF; nil, why when
-- more than limit bytes come without one), bytes(n), rest(cap) (up to the
-- close) and drained() (nothing read beyond the response).
local function reader(sock, deadline)
  local buf, pos = "", 1 -- received and not consumed: buf:sub(pos)
  local function more()
    if ngx.now() >= deadline then return nil, "timeout" end
    sock:settimeout(remaining_ms(deadline))
    local data, err = sock:receiveany(65536)
    if not data then return nil, err end
    buf, pos = buf:sub(pos) .. data, 1
    return true
  end
  local r = {}
  function r.line(limit, why)
    local from = pos
    while true do
      local i = buf:find("\n", from, true)
      if i then
        local last = i - 1
        if last >= pos and buf:byte(last) == 13 then last = last - 1 end
        local line = buf:sub(pos, last)
        pos = i + 1
        -- RFC 9112 2.2: a bare CR is a blank, never dropped (1<CR>2 is not 12)
        if line:find("\r", 1, true) then line = line:gsub("\r", " ") end
        return line
      end
      if #buf - pos + 1 > limit then return nil, why end
      from = #buf - pos + 2 -- where the next search starts once more() has run
      local ok, err = more()
      if not ok then return nil, err end
    end
  end
  -- Moves all that is buffered to parts; returns how many bytes that was.
  local function take(parts)
    parts[#parts + 1] = buf:sub(pos)
    local n = #buf - pos + 1
    buf, pos = "", 1
    return n
  end
  function r.bytes(n)
    local parts, have = {}, 0
    while true do
      local want = n - have
      if #buf - pos + 1 >= want then
        parts[#parts + 1] = buf:sub(pos, pos + want - 1)
        pos = pos + want
        return table.concat(parts)
      end
      have = have + take(parts)
      local ok, err = more()
      if not ok then return nil, err end
    end
  end
  function r.rest(cap)
    local parts, size = {}, 0
    while true do
      size = size + take(parts)
      if size > cap then return nil, "over" end
      local ok, err = more()
      if not ok then
        if err == "closed" then return table.concat(parts) end
        return nil, err
      end
    end
  end
  function r.drained() return pos > #buf end
  return r
end

local function read_headers(rd)
  local left = HEADER_CAP
  local status_line, err = rd.line(left, "headers over")
  if not status_line then return nil, err end
  left = left - #status_line - 2
  local version, status = status_line:match("^HTTP/(%d%.%d) (%d%d%d)")
  if not status then return nil, "malformed status line" end
  local headers = {}
  while true do
    local line, lerr = rd.line(left, "headers over")
    if not line then return nil, lerr end
    left = left - #line - 2
    if left < 0 then return nil, "headers over" end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  return tonumber(status), headers, version
end

-- RFC 9110 8.6: one decimal number, or the same one repeated; anything else
-- (a sign, 0x, blanks inside, values that differ) is a framing error that
-- must not be guessed at, as a guess is how one answer is read as two.
-- Returns the length (math.huge when over any max_body), or nil, why.
local function content_length(value)
  local length
  for item in (value .. ","):gmatch("([^,]*),") do
    local digits = item:match("^[ \t]*(%d+)[ \t]*$")
    if not digits then return nil, "malformed Content-Length" end
    digits = digits:gsub("^0+(%d)", "%1")
    if length and digits ~= length then return nil, "conflicting Content-Length values" end
    length = digits
  end
  return #length > 15 and math.huge or tonumber(length)
end

-- RFC 9112 7.1: 1*HEXDIG (at most 16, as libcurl), then blanks and chunk
-- extensions; no sign, no 0x, nothing before.  Returns the size (math.huge
-- when over any max_body), or nil.
local function chunk_size(line)
  local hex, rest = line:match("^(%x+)[ \t]*(.*)$")
  if not hex or #hex > 16 or not (rest == "" or rest:sub(1, 1) == ";") then return nil end
  hex = hex:gsub("^0+(%x)", "%1")
  return #hex > 12 and math.huge or tonumber(hex, 16)
end

local function read_chunked(rd, cap)
  local parts, size = {}, 0
  while true do
    local line, err = rd.line(HEADER_CAP, "malformed chunked body")
    if not line then return nil, err end
    local n = chunk_size(line)
    if not n then return nil, "malformed chunked body" end
    if n == 0 then
      local left = HEADER_CAP
      repeat -- trailers, up to the empty line, bounded as the header block
        line, err = rd.line(left, "headers over")
        if not line then return nil, err end
        left = left - #line - 2
        if left < 0 then return nil, "headers over" end
      until line == ""
      return table.concat(parts)
    end
    size = size + n
    if size > cap then return nil, "over" end
    local data, derr = rd.bytes(n)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = rd.bytes(2)
    if crlf ~= "\r\n" then return nil, cerr or "malformed chunked body" end
  end
end

-- The caller's headers as lines, and the lower-cased names given; or nil,
-- why.  The transport frames the body itself, so a caller's
-- Transfer-Encoding, or a Content-Length other than the body's, would have
-- the server read the rest as another request.
local function caller_headers(req, body_len)
  local lines, has = {}, {}
  for name, value in pairs(req.headers or {}) do
    if name == "" or name:find(BAD_NAME_BYTE) or value:find("[%z\r\n]") then
      return nil, BAD_HEADER
    end
    local lower = name:lower()
    if lower == "transfer-encoding" or (lower == "content-length" and value ~= body_len) then
      return nil, BAD_FRAMING
    end
    lines[#lines + 1] = name .. ": " .. value
    has[lower] = true
  end
  return lines, has
end

-- The request's bytes, or nil, why.  A caller's Host, User-Agent or
-- Content-Length stands in for the transport's own, as with libcurl.
local function request_text(req, host, port, scheme, path)
  local body = req.body or ""
  local given, has = caller_headers(req, tostring(#body))
  if not given then return nil, has end
  local lines = { ("%s %s HTTP/1.1"):format(req.method or "GET", path) }
  if not has.host then
    local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    lines[2] = "Host: " .. host .. (default_port and "" or (":" .. port))
  end
  for i = 1, #given do lines[#lines + 1] = given[i] end
  if not has["user-agent"] then lines[#lines + 1] = "User-Agent: iceservers/" .. VERSION end
  if not has["content-length"] and (req.body or req.method == "POST" or req.method == "PUT") then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body
  return table.concat(lines, "\r\n")
end

local function check(req)
  if type(req) ~= "table" then error("http: req must be a table", 3) end
  if type(req.url) ~= "string" then error("http: req.url is required", 3) end
  if req.method ~= nil and (type(req.method) ~= "string" or not req.method:match("^%u+$")) then
    error("http: req.method must be an upper-case token such as GET or POST", 3)
  end
  for _, k in ipairs { "timeout", "connect_timeout", "max_body" } do
    if req[k] ~= nil and type(req[k]) ~= "number" then
      error("http: req." .. k .. " must be a number", 3)
    end
  end
  if req.body ~= nil and type(req.body) ~= "string" then
    error("http: req.body must be a string", 3)
  end
  if req.headers ~= nil and type(req.headers) ~= "table" then
    error("http: req.headers must be a table", 3)
  end
  for name, value in pairs(req.headers or {}) do
    if type(name) ~= "string" or type(value) ~= "string" then
      error("http: req.headers must map strings to strings", 3)
    end
  end
end

function M.request(req)
  check(req)
  local scheme, host, port, path, clean = parse_url(req.url)
  if not scheme then return nil, (req.method or "GET") .. " (malformed URL)" end
  local target = ("%s://%s:%d"):format(scheme, host, port)
  if scheme ~= "http" and scheme ~= "https" then
    return fail(req, target, "only http and https URLs are allowed")
  end
  if not clean then
    return fail(req, target, "the URL holds a space or a control character (percent-encode them)")
  end
  local tls, verify = scheme == "https", req.verify ~= false
  if tls and verify and is_ip(host) then
    return fail(req, target, "nginx verifies TLS certificates by name only, so an https URL "
      .. "with an IP address cannot be verified; use a host name (and resolve to pin its address)")
  end
  local timeout = req.timeout or DEFAULTS.timeout
  local deadline = ngx.now() + timeout
  local cap = req.max_body or DEFAULTS.max_body
  local addr = req.resolve and req.resolve[host .. ":" .. port]
  addr = addr or host:gsub("^%[(.*)%]$", "%1")
  local text, terr = request_text(req, host, port, scheme, path)
  if not text then return fail(req, target, terr) end

  local sock = ngx.socket.tcp()
  local connect_ms = math.floor((req.connect_timeout or DEFAULTS.connect_timeout) * 1000)
  sock:settimeout(math.min(connect_ms, remaining_ms(deadline)))
  local pool = table.concat({ host, port, addr, tls and "tls" or "plain",
    verify and "verify" or "noverify" }, ":")
  local ok, err = sock:connect(addr, port, { pool = pool })
  if not ok then
    if err == "timeout" then
      return fail(req, target, ("connection timed out after %d ms"):format(connect_ms))
    end
    return fail(req, target, "connect failed: " .. tostring(err))
  end
  if tls and sock:getreusedtimes() == 0 then
    sock:settimeout(remaining_ms(deadline))
    -- Older lua-resty-core (Debian 12 has 0.1.25; openresty/lua-resty-core
    -- issue #499) raises "assertion failed!" instead of returning nil, err
    -- when a handshake that completed at once fails certificate verification.
    local done, session, herr = pcall(sock.sslhandshake, sock, nil, host, verify)
    if not done then
      session, herr = nil, tostring(session):find("assertion failed", 1, true)
        and "certificate verification failed" or tostring(session):match("^[^\n]*")
    end
    if not session then
      sock:close()
      return fail(req, target, "TLS handshake failed: " .. tostring(herr))
    end
  end

  local function broken(what)
    sock:close()
    if what == "timeout" then
      return fail(req, target, ("timed out after %d ms"):format(math.floor(timeout * 1000)))
    end
    if what == "over" then
      return fail(req, target, ("response body over max_body (%d bytes)"):format(cap))
    end
    if what == "headers over" then
      return fail(req, target, ("response headers over %d bytes"):format(HEADER_CAP))
    end
    return fail(req, target, tostring(what))
  end

  sock:settimeout(remaining_ms(deadline))
  local sent, serr = sock:send(text)
  if not sent then return broken(serr) end

  local rd = reader(sock, deadline)
  local status, headers, version
  repeat -- skip 1xx interim answers
    status, headers, version = read_headers(rd)
    if not status then return broken(headers) end
  until status >= 200

  local body, berr
  local te, cl = headers["transfer-encoding"], headers["content-length"]
  local reusable = version == "1.1" and not (headers.connection or ""):lower():find("close")
  if req.method == "HEAD" or status == 204 or status == 304 then
    body = ""
  elseif te then
    -- RFC 9112 6.3: chunked decides over a Content-Length, and such an answer
    -- may be a splitting attempt, so its connection is not used again.  This
    -- transport decodes no other coding.
    if te:lower() ~= "chunked" then
      return broken("unsupported Transfer-Encoding (only chunked is)")
    end
    reusable = reusable and cl == nil
    body, berr = read_chunked(rd, cap)
  elseif cl then
    local length, lerr = content_length(cl)
    if not length then return broken(lerr) end
    if length > cap then return broken("over") end
    body, berr = rd.bytes(length)
  else
    body, berr = rd.rest(cap)
    reusable = false
  end
  if not body then return broken(berr) end

  if reusable and rd.drained() then
    sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE)
  else
    sock:close()
  end
  return { status = status, headers = headers, body = body }
end

return M
