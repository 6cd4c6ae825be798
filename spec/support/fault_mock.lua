-- luacheck: globals ngx
--[==[
Misbehaving provider APIs, for spec/faults_spec.lua: a content handler of a
test nginx (lua-nginx-module) that answers the way broken networks and
servers do.  Two uses of this one file:
  * inside nginx, for every fault route:
      location /f/ { reset_timedout_connection on;
                     content_by_lua_file ${root}/spec/support/fault_mock.lua; }
      location /fcount/ { content_by_lua_file ${root}/spec/support/fault_mock.lua; }
    with `lua_shared_dict fault_mock 1m;` in the http{} block;
  * from a spec, `require "support.fault_mock"`, for the constants below.

Routes:
  /f/<fault>.<tag>/<provider path>   one provider call, counted per
                  "<fault>.<tag>" (the tag only separates counters); the answer
                  is shaped for the provider the path belongs to (Metered,
                  Twilio or Cloudflare), so a client that took a cut answer
                  for a whole one would succeed
  /fcount/<fault>.<tag>   calls seen (text)
  /broker, /broker-untrusting   (in the client nginx) POST {"id", "env", "now",
                  "user"}: the broker of that id in this worker, made on first
                  use with require("iceservers").from_env(env, {log =, now =})
                  (so its provider calls take the cosocket transport), asked
                  get(user) with its clock at now; answers {servers, meta, err,
                  logs (this get's), elapsed, cosocket (in a cosocket phase?)}

Faults:
  reset     a 200 with Content-Length 64 bytes over the body sent, the whole
            valid answer, then a TCP RST: the request ends with ngx.exit(444)
            under `reset_timedout_connection on`, so nginx closes with
            SO_LINGER {1, 0} (lua-nginx-module's setoption has no linger)
  close     the same, then an orderly close (FIN) instead
  chunkcut  a 200, chunked: the whole valid answer in two chunks, then the
            connection closes with no terminating 0-chunk
  drip      a 200 with a Content-Length: the answer one byte a second (for
            at most DRIP_SECONDS, then a close)
  dripchunk the same as one-byte chunks
  driphead  a status line, then a header line one byte a second
  bighead   a 200 whose header block is over 64 KiB (an X-Big header of 70000
            bytes), then the whole answer
  429       a 429 with Retry-After: 30 and the provider's error shape
  ok        the whole valid answer, as the provider sends it
]==]
local M = {}

M.DRIP_SECONDS = 30
M.TURN = { username = "fault-user-3c9d", credential = "fault-cred-81be" }

if not (type(ngx) == "table" and ngx.get_phase and ngx.get_phase() == "content") then
  return M -- required from a spec
end

local cjson = require "cjson"
local dict = ngx.shared.fault_mock
local TURN = M.TURN

local uri = ngx.var.uri

-- the broker runner (in the client nginx) ---------------------------------
if uri == "/broker" or uri == "/broker-untrusting" then
  ngx.req.read_body()
  local job = cjson.decode(ngx.req.get_body_data() or "null")
  -- one broker per id and worker, kept across requests as in production
  local store = package.loaded["support.fault_mock.brokers"] or {}
  package.loaded["support.fault_mock.brokers"] = store
  local b = store[job.id]
  if not b then
    b = { logs = {}, t = job.now }
    local ok, broker = pcall(require("iceservers").from_env, job.env, {
      log = function(level, msg) b.logs[#b.logs + 1] = level .. ": " .. msg end,
      now = function() return b.t end,
    })
    if not ok then
      ngx.status = 500
      ngx.print(cjson.encode { raised = tostring(broker) })
      return ngx.exit(500)
    end
    b.broker = broker
    store[job.id] = b
  end
  b.t, b.logs = job.now, {}
  ngx.update_time()
  local t0 = ngx.now()
  local servers, meta = b.broker:get(job.user)
  ngx.update_time()
  local out = { elapsed = ngx.now() - t0, logs = b.logs,
    cosocket = require("iceservers.runtime.http").in_cosocket_phase() }
  if servers then out.servers, out.meta = servers, meta else out.err = meta end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode(out))
  return ngx.exit(200)
end

local counted = uri:match("^/fcount/([^/]+)$")
if counted then
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(tostring(dict:get("count:" .. counted) or 0))
  return ngx.exit(200)
end

local scenario, path = uri:match("^/f/([^/]+)(/.*)$")
local fault = scenario and scenario:match("^([%w]+)")
if not fault then
  ngx.status = 404
  ngx.print('{"mock":"no such route"}')
  return ngx.exit(404)
end
dict:incr("count:" .. scenario, 1, 0)
ngx.req.read_body()

-- A whole, valid answer of the provider whose endpoint path is.
local function answer()
  local turn = "turn:turn.fault.test:3478"
  if path:find("/generate%-ice%-servers$") then -- Cloudflare
    return 201, cjson.encode { iceServers = { { urls = { turn }, username = TURN.username,
      credential = TURN.credential } } }
  elseif path:find("/Tokens%.json$") then -- Twilio
    return 201, cjson.encode { username = TURN.username, password = TURN.credential,
      ttl = "86400", ice_servers = { { urls = turn, username = TURN.username,
        credential = TURN.credential } } }
  end
  return 200, cjson.encode { { urls = turn, username = TURN.username, -- Metered
    credential = TURN.credential } }
end

local status, body = answer()
local REASON = { [200] = "OK", [201] = "Created", [429] = "Too Many Requests" }

-- The raw connection: nginx sends nothing of its own from here on.
local function raw()
  local sock = assert(ngx.req.socket(true))
  sock:settimeout(60000)
  return sock
end

local function head(extra)
  return ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s\r\n"):format(status,
    REASON[status], extra)
end

if fault == "reset" or fault == "close" then
  local sock = raw()
  sock:send(head(("Content-Length: %d\r\n"):format(#body + 64)) .. body)
  ngx.sleep(0.2) -- let it all reach the client first
  if fault == "reset" then return ngx.exit(444) end
  return ngx.exit(ngx.OK)
elseif fault == "chunkcut" then
  local sock = raw()
  local half = math.floor(#body / 2)
  sock:send(head("Transfer-Encoding: chunked\r\n")
    .. ("%x\r\n%s\r\n"):format(half, body:sub(1, half))
    .. ("%x\r\n%s\r\n"):format(#body - half, body:sub(half + 1)))
  ngx.sleep(0.2)
  return ngx.exit(ngx.OK)
elseif fault == "drip" or fault == "dripchunk" or fault == "driphead" then
  local sock = raw()
  local chunked = fault == "dripchunk"
  local first = fault == "driphead" and ("HTTP/1.1 %d %s\r\n"):format(status, REASON[status])
    or head(chunked and "Transfer-Encoding: chunked\r\n"
      or ("Content-Length: %d\r\n"):format(#body))
  local text = fault == "driphead" and ("X-Drip: " .. string.rep("d", 100)) or body
  if not sock:send(first) then return ngx.exit(ngx.OK) end
  for i = 1, math.min(#text, M.DRIP_SECONDS) do
    ngx.sleep(1)
    local piece = text:sub(i, i)
    if chunked then piece = "1\r\n" .. piece .. "\r\n" end
    if not sock:send(piece) then break end -- the client went away
  end
  return ngx.exit(ngx.OK)
elseif fault == "bighead" then
  local sock = raw()
  sock:send(head(("X-Big: %s\r\nContent-Length: %d\r\n"):format(string.rep("b", 70000), #body))
    .. body)
  return ngx.exit(ngx.OK)
elseif fault == "ok" then
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(body)
  return ngx.exit(status)
elseif fault == "429" then
  ngx.status = 429
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Retry-After"] = "30"
  ngx.print(cjson.encode { code = 20429, message = "Too many requests", success = false,
    errors = { { code = 10429, message = "Too many requests" } } })
  return ngx.exit(429)
end
ngx.status = 404
ngx.print('{"mock":"no such fault"}')
return ngx.exit(404)
