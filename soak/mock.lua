-- luacheck: globals ngx
--[==[
The provider API of the soak (scripts/soak.sh): Metered's
  GET /api/v1/turn/credentials?apiKey=<key>
inside a test nginx, as the content handler of every request:

  location / { content_by_lua_file ${root}/soak/mock.lua; }

with `lua_shared_dict soak_mock 1m;` in the http{} block and the expected key
in the environment variable SOAK_API_KEY (`env SOAK_API_KEY;`).

Exactly one call in every SOAK_MOCK_BLOCK (default 5) fails, at a random
place in its block (20 % of the calls, at random, yet never a run without
failures); with SOAK_MOCK_FAIL_LAST=1 it is the last call of each block, so
with a block of 2 every second call fails.  A failure takes one of four ways,
chosen at random:
  500      a JSON error, as Metered's
  429      Too Many Requests with Retry-After: 1
  timeout  no answer for SOAK_MOCK_STALL seconds (default 1.5), longer than
           the endpoint's ICESERVERS_HTTP_TIMEOUT, then a 500
  garbage  200 with an HTML body
The other calls succeed with a fresh credential each (so every refresh
replaces the cached answer).  A wrong key gets Metered's 401, any other path
a 404: both are counted, and the soak fails if it sees one.

  /stats   the counts as JSON: calls, ok, 500, 429, timeout, garbage, 401, 404
]==]
local dict = ngx.shared.soak_mock
local KINDS = { "500", "429", "timeout", "garbage" }
local BLOCK = tonumber(os.getenv("SOAK_MOCK_BLOCK")) or 5
local FAIL_LAST = os.getenv("SOAK_MOCK_FAIL_LAST") == "1"

local function count(name) dict:incr(name, 1, 0) end

local send = require "support.mock_reply"

local uri = ngx.var.uri
if uri == "/stats" then
  local out = {}
  for _, k in ipairs { "calls", "ok", "500", "429", "timeout", "garbage", "401", "404" } do
    out[#out + 1] = ('"%s":%d'):format(k, dict:get(k) or 0)
  end
  return send(200, "{" .. table.concat(out, ",") .. "}")
end

if uri ~= "/api/v1/turn/credentials" or ngx.req.get_method() ~= "GET" then
  count("404")
  return send(404, '{"error":"no such endpoint"}')
end
local key = ngx.req.get_uri_args(10).apiKey
if key ~= os.getenv("SOAK_API_KEY") then
  count("401")
  return send(401, '{"error":"Invalid API Key"}')
end

local n = dict:incr("calls", 1, 0)
local block = math.floor((n - 1) / BLOCK)
local slot = "slot:" .. block
-- the first call of the block draws it
dict:add(slot, FAIL_LAST and BLOCK - 1 or math.random(0, BLOCK - 1), 600)
if (n - 1) % BLOCK == dict:get(slot) then
  local kind = KINDS[math.random(#KINDS)]
  count(kind)
  if kind == "500" then
    return send(500, '{"message":"Internal server error occurred. Please try again"}')
  elseif kind == "429" then
    ngx.header["Retry-After"] = "1"
    return send(429, '{"message":"Too many requests"}')
  elseif kind == "timeout" then
    ngx.sleep(tonumber(os.getenv("SOAK_MOCK_STALL")) or 1.5)
    return send(500, '{"message":"too late"}')
  end
  return send(200, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
end

count("ok")
local user, cred = "soak-mt-" .. n, ngx.encode_base64(ngx.sha1_bin("soak-mock-" .. n))
local host = "global.relay.metered.ca"
return send(200, ('[{"urls":"stun:stun.relay.metered.ca:80"},'
  .. '{"urls":"turn:%s:80","username":"%s","credential":"%s"},'
  .. '{"urls":"turn:%s:80?transport=tcp","username":"%s","credential":"%s"},'
  .. '{"urls":"turns:%s:443?transport=tcp","username":"%s","credential":"%s"}]')
  :format(host, user, cred, host, user, cred, host, user, cred))
