-- B5: HTTPS GETs per second from Lua 5.4 to a local nginx, one client per
-- process, for SECONDS (certificates verified against the test CA):
--   reuse    core.http_client(): one libcurl handle, connections kept alive
--   oneshot  core.http_request(): a new connection (and TLS handshake) per request
--   luasec   LuaSocket's http.request over LuaSec (ssl.wrap, SNI, handshake: what
--            ssl.https.request does) with TCP_NODELAY: one request per connection
--   luasec-default  ssl.https.request as it is: the same, without TCP_NODELAY, so
--            that the request's second small TLS record waits for the server's
--            delayed ACK (about 40 ms on Linux) on every request
--
--   lua5.4 bench/https.lua reuse|oneshot|luasec|luasec-default URL CA_FILE SECONDS
--
-- Prints "rate=<requests/s> n=<count>".  (The cosocket transport runs the same
-- loop inside nginx: bench/app.lua, /b5.)
dofile("bench/paths.lua")

local core = require "iceservers.core"

local mode, url, ca_file, seconds = arg[1], arg[2], arg[3], tonumber(arg[4]) or 1

local get
if mode == "reuse" then
  local client = core.http_client { cafile = ca_file }
  get = function()
    local res, err = client:request { url = url }
    return res and res.status, err
  end
elseif mode == "oneshot" then
  get = function()
    local res, err = core.http_request { url = url, cafile = ca_file }
    return res and res.status, err
  end
elseif mode == "luasec" or mode == "luasec-default" then
  local ltn12 = require "ltn12"
  local params = { mode = "client", cafile = ca_file, verify = "peer", protocol = "any",
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1" } }
  local request
  if mode == "luasec-default" then
    local https = require "ssl.https"
    request = function(req)
      for k, v in pairs(params) do req[k] = v end
      return https.request(req)
    end
  else
    local http, socket, ssl = require "socket.http", require "socket", require "ssl"
    -- ssl.https.tcp's connection, with TCP_NODELAY set before the handshake
    local function create()
      local conn = { sock = assert(socket.tcp()) }
      function conn:settimeout(t) return self.sock:settimeout(t) end
      function conn:connect(host, port)
        assert(self.sock:connect(host, port))
        assert(self.sock:setoption("tcp-nodelay", true))
        self.sock = assert(ssl.wrap(self.sock, params))
        self.sock:sni(host)
        assert(self.sock:dohandshake())
        for name, method in pairs(getmetatable(self.sock).__index) do
          if type(method) == "function" and name ~= "connect" then
            self[name] = function(c, ...) return method(c.sock, ...) end
          end
        end
        return 1
      end
      return conn
    end
    request = function(req)
      req.create = create
      return http.request(req)
    end
  end
  get = function()
    local sink = {}
    local ok, status = request { url = url, sink = ltn12.sink.table(sink) }
    if not ok then return nil, status end
    return status
  end
else
  error("usage: https.lua reuse|oneshot|luasec URL CA_FILE SECONDS")
end

local function one()
  local status, err = get()
  if status ~= 200 then error(mode .. ": " .. tostring(status or err)) end
end

for _ = 1, 20 do one() end -- warm up
local n, t0 = 0, core.monotonic()
local elapsed
repeat
  for _ = 1, 10 do one() end
  n = n + 10
  elapsed = core.monotonic() - t0
until elapsed >= seconds
print(("rate=%.0f n=%d"):format(n / elapsed, n))
