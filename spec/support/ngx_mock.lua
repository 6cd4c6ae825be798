-- luacheck: globals ngx
--[==[
Mocks and helpers served by a test nginx, for spec/ngx_spec.lua and
spec/cosocket_spec.lua.  One content handler for every route:

  location / { content_by_lua_file ${root}/spec/support/ngx_mock.lua; }

with `lua_shared_dict ngx_mock 1m;` in the http{} block.  Required from a
spec instead (outside nginx), it returns the constants below.

Routes:
  /metered/<tag>/api/v1/turn/credentials?apiKey=K
                   Metered's GET, counted per tag; the tag may hold d<ms> (wait
                   that long before answering) and e<status> (fail with that
                   status and an error text that echoes the key received)
  /count/<tag>     number of calls the tag has seen (text)
  /t/json          200, a JSON body and an X-Mock header
  /t/204           204, no body
  /t/404           404 with a text body
  /t/chunked       a body sent in flushed pieces (chunked)
  /t/length?n=N    N bytes with a Content-Length
  /t/bigchunked?n=N  N bytes in four flushed pieces (chunked)
  /t/close         a body delimited by closing the connection (the location
                   needs `chunked_transfer_encoding off;`)
  /t/stall         headers and 10 of the 100 bytes promised, then silence
  /t/sni           the TLS server name the client sent (SNI), or "-"
  /t/conn          $connection_requests, as the body and X-Conn-Requests
  /t/echo          the request as JSON: method, uri, headers, body
  /run             POST a JSON array of requests: runs each in turn, in this
                   handler, through iceservers.ngx.cosocket (or the
                   transport.auto() one when a request has via = "auto"), and
                   answers a JSON array of {res =, err =, raised =, elapsed =}
  /drive           POST {"url": U, "n": N, "timeout": s}: N concurrent GETs of U
                   from light threads, answered with {"statuses": {code: n},
                   "turn": n with a TURN entry in the body, "errors": [...],
                   "elapsed": s}
]==]
local M = {}

M.METERED_KEY = "MOCK-KEY-SECRET-Rz4Tq8Vb" -- what the metered mock expects
M.TURN = { username = "mock-user-7f3a", credential = "mock-cred-c41d" }
M.TURN_URL = "turn:turn.mock.test:3478"

if not (type(ngx) == "table" and ngx.get_phase and ngx.get_phase() == "content") then
  return M -- required from a spec
end

local cjson = require "cjson"
local dict = ngx.shared.ngx_mock

local send = require "support.mock_reply"

local uri = ngx.var.uri
local args = ngx.req.get_uri_args()

-- the Metered mock ----------------------------------------------------------
local tag = uri:match("^/metered/([^/]+)/api/v1/turn/credentials$")
if tag then
  dict:incr("count:" .. tag, 1, 0)
  local delay = tonumber(tag:match("d(%d+)"))
  if delay then ngx.sleep(delay / 1000) end
  local status = tonumber(tag:match("e(%d%d%d)"))
  if status then
    return send(status, cjson.encode { error = "Invalid API Key " .. tostring(args.apiKey) })
  end
  if args.apiKey ~= M.METERED_KEY then
    return send(401, '{"error":"Invalid API Key"}')
  end
  return send(200, cjson.encode {
    { urls = "stun:stun.relay.metered.ca:80" },
    { urls = M.TURN_URL, username = M.TURN.username, credential = M.TURN.credential },
    { urls = M.TURN_URL .. "?transport=tcp", username = M.TURN.username,
      credential = M.TURN.credential },
  })
end

local counted = uri:match("^/count/([^/]+)$")
if counted then return send(200, tostring(dict:get("count:" .. counted) or 0), "text/plain") end

-- HTTP shapes for the transports --------------------------------------------
local n = tonumber(args.n) or 0
if uri == "/t/json" then
  ngx.header["X-Mock"] = "json"
  return send(200, '{"ok":true,"n":42}')
elseif uri == "/t/204" then
  ngx.header["X-Mock"] = "204"
  return ngx.exit(204)
elseif uri == "/t/404" then
  return send(404, "nothing here", "text/plain")
elseif uri == "/t/chunked" then
  ngx.header["Content-Type"] = "text/plain"
  for _, piece in ipairs { "first piece, ", "second piece, ", "last piece" } do
    ngx.print(piece)
    ngx.flush(true)
  end
  return
elseif uri == "/t/length" then
  ngx.header["Content-Type"] = "text/plain"
  ngx.header["Content-Length"] = n
  ngx.print(string.rep("x", n))
  return
elseif uri == "/t/bigchunked" then
  ngx.header["Content-Type"] = "text/plain"
  for _ = 1, 4 do
    ngx.print(string.rep("y", n / 4))
    ngx.flush(true)
  end
  return
elseif uri == "/t/close" then
  ngx.header["Content-Type"] = "text/plain"
  ngx.print("until the connection closes: ")
  ngx.flush(true)
  ngx.print(string.rep("z", n))
  return
elseif uri == "/t/stall" then -- promises 100 bytes, sends 10, then nothing
  ngx.header["Content-Type"] = "text/plain"
  ngx.header["Content-Length"] = 100
  ngx.print(string.rep("s", 10))
  ngx.flush(true)
  ngx.sleep(60)
  return
elseif uri == "/t/sni" then
  return send(200, ngx.var.ssl_server_name or "-", "text/plain")
elseif uri == "/t/conn" then
  ngx.header["X-Conn-Requests"] = ngx.var.connection_requests
  return send(200, ngx.var.connection_requests, "text/plain")
elseif uri == "/t/echo" then
  ngx.req.read_body()
  return send(200, cjson.encode {
    method = ngx.req.get_method(), uri = ngx.var.request_uri,
    headers = ngx.req.get_headers(100), body = ngx.req.get_body_data() or "",
  })
end

-- running the cosocket transport --------------------------------------------
local function read_json()
  ngx.req.read_body()
  return cjson.decode(ngx.req.get_body_data() or "null")
end

if uri == "/run" then
  local cosocket = require "iceservers.ngx.cosocket"
  local transport = require "iceservers.runtime.http"
  local auto = transport.auto()
  local out = {}
  for i, req in ipairs(read_json()) do
    local via = req.via
    req.via = nil
    ngx.update_time()
    local t0 = ngx.now()
    local ok, res, err = pcall(via == "auto" and auto or cosocket.request, req)
    ngx.update_time()
    out[i] = { elapsed = ngx.now() - t0, in_cosocket_phase = transport.in_cosocket_phase() }
    if ok then
      out[i].res, out[i].err = res, err
    else
      out[i].raised = tostring(res)
    end
  end
  return send(200, cjson.encode(out))
end

if uri == "/drive" then
  local cosocket = require "iceservers.ngx.cosocket"
  local job = read_json()
  local statuses, errors, turn = {}, {}, 0
  local function one()
    local res, err = cosocket.request { url = job.url, timeout = job.timeout or 20 }
    if not res then
      errors[#errors + 1] = err
      return
    end
    statuses[tostring(res.status)] = (statuses[tostring(res.status)] or 0) + 1
    local ok, doc = pcall(cjson.decode, res.body)
    if ok and type(doc) == "table" and type(doc.iceServers) == "table" then
      for _, s in ipairs(doc.iceServers) do
        if s.username == M.TURN.username and s.credential == M.TURN.credential then
          turn = turn + 1
          break
        end
      end
    end
  end
  ngx.update_time()
  local t0 = ngx.now()
  local threads = {}
  for i = 1, job.n do threads[i] = ngx.thread.spawn(one) end
  for i = 1, job.n do ngx.thread.wait(threads[i]) end
  ngx.update_time()
  return send(200, cjson.encode {
    statuses = statuses, turn = turn, errors = errors, elapsed = ngx.now() - t0,
  })
end

return send(404, '{"mock":"no such route"}')
