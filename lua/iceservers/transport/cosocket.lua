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

local function fail(req, target, what)
  return nil, ("%s %s/...: %s"):format(req.method or "GET", target, what)
end

local function parse_url(url)
  local scheme, authority, rest = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
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
  return scheme, host, port, path
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:sub(1, 1) == "["
end

-- Every read and write gets what is left of the total timeout.
local function remaining_ms(deadline)
  return math.max(1, math.floor((deadline - ngx.now()) * 1000))
end

local function read_headers(sock, deadline)
  local status_line, err = sock:receive("*l")
  if not status_line then return nil, err end
  local version, status = status_line:match("^HTTP/(%d%.%d) (%d%d%d)")
  if not status then return nil, "malformed status line" end
  local headers = {}
  while true do
    sock:settimeout(remaining_ms(deadline))
    local line, lerr = sock:receive("*l")
    if not line then return nil, lerr end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  return tonumber(status), headers, version
end

local function read_chunked(sock, deadline, cap)
  local parts, size = {}, 0
  while true do
    sock:settimeout(remaining_ms(deadline))
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local n = tonumber(line:match("^%s*(%x+)"), 16)
    if not n then return nil, "malformed chunked body" end
    if n == 0 then
      repeat -- trailers, up to the empty line
        sock:settimeout(remaining_ms(deadline))
        line, err = sock:receive("*l")
        if not line then return nil, err end
      until line == ""
      return table.concat(parts)
    end
    size = size + n
    if size > cap then return nil, "over" end
    sock:settimeout(remaining_ms(deadline))
    local data, derr = sock:receive(n)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    sock:settimeout(remaining_ms(deadline))
    local crlf, cerr = sock:receive(2)
    if crlf ~= "\r\n" then return nil, cerr or "malformed chunked body" end
  end
end

local function read_to_close(sock, deadline, cap)
  local parts, size = {}, 0
  while true do
    sock:settimeout(remaining_ms(deadline))
    local data, err = sock:receiveany(65536)
    if not data then
      if err == "closed" then return table.concat(parts) end
      return nil, err
    end
    size = size + #data
    if size > cap then return nil, "over" end
    parts[#parts + 1] = data
  end
end

local function request_text(req, host, port, scheme, path)
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local lines = {
    ("%s %s HTTP/1.1"):format(req.method or "GET", path),
    "Host: " .. host .. (default_port and "" or (":" .. port)),
  }
  local has = {}
  for name, value in pairs(req.headers or {}) do
    if type(name) ~= "string" or type(value) ~= "string" then
      error("http: req.headers must map strings to strings", 3)
    end
    if name:find("[:%s]") or value:find("[\r\n]") then return nil end
    lines[#lines + 1] = name .. ": " .. value
    has[name:lower()] = true
  end
  if not has["user-agent"] then lines[#lines + 1] = "User-Agent: iceservers/" .. VERSION end
  if req.body or req.method == "POST" or req.method == "PUT" then
    lines[#lines + 1] = "Content-Length: " .. #(req.body or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = req.body or ""
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
end

function M.request(req)
  check(req)
  local scheme, host, port, path = parse_url(req.url)
  if not scheme then return nil, (req.method or "GET") .. " (malformed URL)" end
  local target = ("%s://%s:%d"):format(scheme, host, port)
  if scheme ~= "http" and scheme ~= "https" then
    return fail(req, target, "only http and https URLs are allowed")
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
  local text = request_text(req, host, port, scheme, path)
  if not text then return fail(req, target, "a request header is malformed") end

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
    return fail(req, target, tostring(what))
  end

  sock:settimeout(remaining_ms(deadline))
  local sent, serr = sock:send(text)
  if not sent then return broken(serr) end

  local status, headers, version
  repeat -- skip 1xx interim answers
    sock:settimeout(remaining_ms(deadline))
    status, headers, version = read_headers(sock, deadline)
    if not status then return broken(headers) end
  until status >= 200

  local body, berr
  local length = tonumber(headers["content-length"])
  local reusable = version == "1.1" and not (headers.connection or ""):lower():find("close")
  if req.method == "HEAD" or status == 204 or status == 304 then
    body = ""
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked") then
    body, berr = read_chunked(sock, deadline, cap)
  elseif length then
    if length > cap then return broken("over") end
    sock:settimeout(remaining_ms(deadline))
    body, berr = sock:receive(length)
  else
    body, berr = read_to_close(sock, deadline, cap)
    reusable = false
  end
  if not body then return broken(berr) end

  if reusable then
    sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE)
  else
    sock:close()
  end
  return { status = status, headers = headers, body = body }
end

return M
