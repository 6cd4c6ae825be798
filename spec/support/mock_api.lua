-- luacheck: globals ngx
--[==[
A mock of the four REST providers' APIs (Metered, Twilio, Cloudflare, Xirsys),
answering with the wire formats of /work/shared/reference/provider-apis.md
sections 1-4, for spec/providers_spec.lua.

Two uses of this one file:
  * inside nginx (lua-nginx-module), as the content handler of every request:
      location / { content_by_lua_file ${root}/spec/support/mock_api.lua; }
    with `lua_shared_dict mock_api 4m;` in the http{} block;
  * from a spec, `require "support.mock_api"`, for the constants it checks
    (the configured secrets, the credentials it hands out).

Routes:
  /s/<scenario>/<provider path>   a provider call; <scenario> is
                                  <provider>-<case>[.<tag>] (the tag only
                                  separates counters), and the provider path
                                  must be that provider's endpoint and method
  /count/<scenario>               number of provider calls seen (text)
  /log/<scenario>                 JSON array of those calls: {method, path,
                                  args, headers, body}
  /last/<scenario>                the last one, or null

A wrong endpoint, method, account, key id or channel gets a 404/405 with a
body saying so: the provider then fails, so a spec that expected success fails.
Cases (not every provider has every one):
  ok        the documented success shape, if the request is right (auth,
            account/key/channel, body); a wrong one gets the provider's error
  legacy, port53 (cloudflare), array (xirsys), ttl (twilio: answers ttl "600")
  e401, e400, error200 (xirsys: error envelope with HTTP 200)
            the documented error shapes
  echo, echocut  an error text echoing the credential received (echocut puts
            it across the 117th byte of the text)
  500, garbage (non-JSON), empty (no server), stunonly (metered), big (an
  answer over 1 MiB), 429 (Retry-After: 30), flaky (ok once, then 500)
  relay     ok, with every URL's host and port made a loopback TURN server's
            (turns:/stuns: to `tls`, port 53 kept as 127.0.0.1:53, the others
            to `plain`) and credentials of the TURN REST scheme signed with
            `secret`, all set by GET /relay/set?plain=H:P&tls=H:P&secret=S
            (spec/browser_providers_spec.lua: a real coturn takes them)
`get<case>` applies <case> to Metered's GET only (the create-credential POST
then succeeds).
]==]
local M = {}

-- Distinctive values; a spec configures these and checks none leaks.
M.S = {
  metered_api_key = "MK-SECRET-1-apikey-Qx7Lm2",
  metered_secret_key = "MSK-SECRET-2-acct-Zr8Wp4",
  metered_created_key = "MCK-made-by-post-Jt5Vn3",
  twilio_sid = "AC0123456789abcdef0123456789abcdef",
  twilio_token = "TWTOKEN-SECRET-3-Hb6Ks9",
  twilio_key_sid = "SK0123456789abcdef0123456789abcdef",
  twilio_key_secret = "TWKEYSECRET-SECRET-4-Py2Dg8",
  cloudflare_key_id = "cfkey0123456789abcdef",
  cloudflare_token = "CFTOKEN-SECRET-5-Nc4Fw7",
  xirsys_ident = "xirident",
  xirsys_secret = "XSSECRET-SECRET-6-Ue3Ja1",
  xirsys_channel = "myapp/room-1",
}

-- The TURN credentials each provider hands out.
M.TURN = {
  metered = { username = "mt-user-5a1f", credential = "mt-cred-9c2e" },
  twilio = { username = "tw-user-dc2d2894", credential = "tw-cred-tE2DajzS" },
  cloudflare = { username = "cf-user-4e1b", credential = "cf-cred-77aa" },
  xirsys = { username = "xs-user-0b9f", credential = "xs-cred-3d3d" },
}

M.BIG = 1500000 -- bytes of padding in an oversize answer: over the 1 MiB cap

if not (type(ngx) == "table" and ngx.get_phase and ngx.get_phase() == "content") then
  return M -- required from a spec
end

local cjson = require "cjson"
local S, TURN = M.S, M.TURN
local dict = ngx.shared.mock_api

local function b64(s) return ngx.encode_base64(s) end

local send = require "support.mock_reply"

-- With the relay case: the loopback server that replaces every URL's host.
local relay

local function relay_urls(text)
  return (text:gsub('"(%a+):([^"?]+)([^"]*)"', function(scheme, hostport, rest)
    scheme = scheme:lower()
    if scheme ~= "stun" and scheme ~= "stuns" and scheme ~= "turn" and scheme ~= "turns" then
      return nil
    end
    local port = hostport:match(":(%d+)$")
    local to = port == "53" and "127.0.0.1:53"
      or (scheme == "turns" or scheme == "stuns") and relay.tls or relay.plain
    return '"' .. scheme .. ":" .. to .. rest .. '"'
  end))
end

local function json(status, doc)
  local text = cjson.encode(doc)
  if relay then text = relay_urls(text:gsub("\\/", "/")) end
  return send(status, text)
end

-- A JSON document of about M.BIG bytes that would be a valid answer if read.
local function big(doc_with_pad)
  return (cjson.encode(doc_with_pad):gsub('"@PAD@"', function()
    return '"' .. string.rep("p", M.BIG) .. '"'
  end))
end

local HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"

-- An error text that echoes what was received, placed so that a cut of the
-- text to 117 bytes (rest.lua's clip) would keep all of it but its last 8 bytes.
local function echo_cut(value)
  value = tostring(value)
  local pad = ("request rejected, credentials received follow; "):rep(3)
  return pad:sub(1, math.max(1, 117 - #value + 8)) .. value .. " (not valid)"
end

-- The credential part of an Authorization header ("Basic xxx" -> "xxx").
local function cred_of(auth)
  return type(auth) == "string" and auth:match("^%S+%s+(.*)$") or tostring(auth)
end

---------------------------------------------------------------------------
-- the providers

local metered = {}

local function metered_list(t)
  local host = "global.relay.metered.ca"
  return {
    { urls = "stun:stun.relay.metered.ca:80" },
    { urls = "turn:" .. host .. ":80", username = t.username, credential = t.credential },
    { urls = "turn:" .. host .. ":80?transport=tcp", username = t.username,
      credential = t.credential },
    { urls = "turn:" .. host .. ":443", username = t.username, credential = t.credential },
    { urls = "turns:" .. host .. ":443?transport=tcp", username = t.username,
      credential = t.credential },
  }
end

-- GET /api/v1/turn/credentials?apiKey=
function metered.ice(case, req)
  local key = req.args.apiKey
  if case == "e401" then return json(401, { error = "Invalid API Key" }) end
  if case == "e400" then return json(400, { error = "Please specify API Key" }) end
  if case == "echo" then
    return json(401, { error = "Invalid API Key " .. tostring(key) .. " for this app" })
  end
  if case == "echocut" then return json(401, { error = echo_cut(key) }) end
  if case == "500" then
    return json(500, { message = "Internal server error occurred. Please try again" })
  end
  if case == "garbage" then return send(200, HTML, "text/html") end
  if case == "empty" then return send(200, "[]") end
  if case == "stunonly" then return send(200, '[{"urls":"stun:stun.relay.metered.ca:80"}]') end
  if type(key) ~= "string" or key == "" then
    return json(400, { error = "Please specify API Key" })
  end
  if key ~= S.metered_api_key and key ~= S.metered_created_key then
    return json(401, { error = "Invalid API Key" })
  end
  local list = metered_list(TURN.metered)
  if case == "big" then
    list[2].pad = "@PAD@"
    return send(200, big(list))
  end
  if case == "ok" then return json(200, list) end
end

-- POST /api/v1/turn/credential?secretKey=  {"expiryInSeconds": n, "label": ...}
function metered.create(case, req)
  local key = req.args.secretKey
  if case:match("^get") or case == "ok" then
    if type(key) ~= "string" or key == "" then
      return json(400, { message = "Please specify secret key" })
    end
    if key ~= S.metered_secret_key then return json(401, { message = "Invalid secret key" }) end
    local ok, doc = pcall(cjson.decode, req.body)
    local n = ok and type(doc) == "table" and doc.expiryInSeconds
    if req.headers["content-type"] ~= "application/json" or type(n) ~= "number"
        or n < 1 or n ~= math.floor(n) then
      return json(400, { message = "please enter a positive integer value for expiryInSeconds" })
    end
    return json(200, { username = TURN.metered.username, password = TURN.metered.credential,
      expiryInSeconds = n, label = doc.label, apiKey = S.metered_created_key })
  end
  if case == "e401" then return json(401, { message = "Invalid secret key" }) end
  if case == "e400" then return json(400, { message = "Please specify secret key" }) end
  if case == "echo" then
    return json(401, { message = "Invalid secret key " .. tostring(key) })
  end
  if case == "echocut" then return json(401, { message = echo_cut(key) }) end
  if case == "500" then
    return json(500, { message = "Internal server error occurred. Please try again" })
  end
  if case == "garbage" then return send(200, HTML, "text/html") end
  if case == "empty" then return send(200, "{}") end
  if case == "big" then
    return send(200, big { username = "u", password = "p", apiKey = S.metered_created_key,
      label = "@PAD@" })
  end
end

local twilio = {}

local function twilio_error(status, code, message)
  return json(status, { code = code, message = message, status = status,
    more_info = "https://www.twilio.com/docs/errors/" .. code })
end

local function twilio_doc(t, ttl, servers)
  return {
    username = t.username, password = t.credential, ttl = ttl, account_sid = S.twilio_sid,
    date_created = "Fri, 01 May 2020 01:42:57 +0000",
    date_updated = "Fri, 01 May 2020 01:42:57 +0000",
    ice_servers = servers,
  }
end

local function twilio_servers(t)
  local out = {
    { url = "stun:global.stun.twilio.com:3478", urls = "stun:global.stun.twilio.com:3478" },
  }
  for _, u in ipairs { "turn:global.turn.twilio.com:3478?transport=udp",
    "turn:global.turn.twilio.com:3478?transport=tcp",
    "turn:global.turn.twilio.com:443?transport=tcp" } do
    out[#out + 1] = { url = u, urls = u, username = t.username, credential = t.credential }
  end
  return out
end

-- POST /2010-04-01/Accounts/{sid}/Tokens.json, Basic auth, form Ttl=
function twilio.tokens(case, req, sid)
  local auth = req.headers.authorization
  if case == "e401" then return twilio_error(401, 20003, "Authenticate") end
  if case == "echo" then
    return twilio_error(401, 20003, "Authenticate: rejected " .. tostring(auth)
      .. " for account " .. sid)
  end
  if case == "echocut" then return twilio_error(401, 20003, echo_cut(cred_of(auth))) end
  if case == "500" then return send(500, HTML, "text/html") end
  if case == "garbage" then return send(201, HTML, "text/html") end
  if sid ~= S.twilio_sid then
    return twilio_error(404, 20404, "The requested resource was not found")
  end
  local good = {
    ["Basic " .. b64(S.twilio_sid .. ":" .. S.twilio_token)] = true,
    ["Basic " .. b64(S.twilio_key_sid .. ":" .. S.twilio_key_secret)] = true,
  }
  if not good[auth] then return twilio_error(401, 20003, "Authenticate") end
  local ttl = req.body:match("^Ttl=(%d+)$")
  if req.headers["content-type"] ~= "application/x-www-form-urlencoded" or not ttl then
    return twilio_error(400, 20001, "Invalid Ttl")
  end
  if case == "empty" then
    local doc = cjson.encode(twilio_doc(TURN.twilio, ttl, "@EMPTY@"))
    return send(201, (doc:gsub('"@EMPTY@"', "[]")))
  end
  if case == "big" then
    local doc = twilio_doc(TURN.twilio, ttl, twilio_servers(TURN.twilio))
    doc.pad = "@PAD@"
    return send(201, big(doc))
  end
  -- the lifetime the service decided: 600 s whatever was asked
  if case == "ttl" then return json(201, twilio_doc(TURN.twilio, "600",
    twilio_servers(TURN.twilio))) end
  if case == "ok" then
    return json(201, twilio_doc(TURN.twilio, ttl, twilio_servers(TURN.twilio)))
  end
end

local cloudflare = {}

local CF_TURN = {
  "turn:turn.cloudflare.com:3478?transport=udp",
  "turn:turn.cloudflare.com:443?transport=udp",
  "turn:turn.cloudflare.com:3478?transport=tcp",
  "turn:turn.cloudflare.com:80?transport=tcp",
  "turns:turn.cloudflare.com:5349?transport=tcp",
  "turns:turn.cloudflare.com:443?transport=tcp",
}

-- POST /v1/turn/keys/{key_id}/credentials/generate-ice-servers, Bearer, {"ttl": n}
function cloudflare.generate(case, req, key_id)
  local auth = req.headers.authorization
  if case == "e401" then
    return json(401, { success = false, errors = { { code = 10000,
      message = "Authentication error" } } })
  end
  if case == "echo" then
    return json(401, { success = false, errors = { { code = 10000,
      message = "Authentication error for " .. tostring(auth) } } })
  end
  if case == "echocut" then
    return json(401, { success = false, errors = { { code = 10000,
      message = echo_cut(cred_of(auth)) } } })
  end
  if case == "500" then return send(500, HTML, "text/html") end
  if case == "garbage" then return send(201, HTML, "text/html") end
  if key_id ~= S.cloudflare_key_id then return send(404, "404 page not found", "text/plain") end
  if auth ~= "Bearer " .. S.cloudflare_token then
    return json(401, { success = false, errors = { { code = 10000,
      message = "Authentication error" } } })
  end
  local ok, doc = pcall(cjson.decode, req.body)
  local ttl = ok and type(doc) == "table" and doc.ttl
  if req.headers["content-type"] ~= "application/json" or type(ttl) ~= "number"
      or ttl < 1 or ttl ~= math.floor(ttl) then
    return json(400, { success = false, errors = { { code = 10001, message = "bad ttl" } } })
  end
  local t = TURN.cloudflare
  local turn = { urls = CF_TURN, username = t.username, credential = t.credential }
  if case == "ok" then
    return json(201, { iceServers = { { urls = { "stun:stun.cloudflare.com:3478" } }, turn } })
  end
  if case == "legacy" then
    return json(201, { iceServers = { urls = { "stun:stun.cloudflare.com:3478",
      "turn:turn.cloudflare.com:3478?transport=udp",
      "turn:turn.cloudflare.com:3478?transport=tcp",
      "turns:turn.cloudflare.com:5349?transport=tcp" },
      username = t.username, credential = t.credential } })
  end
  if case == "port53" then
    return json(201, { iceServers = {
      { urls = { "stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53" } },
      { urls = { "turn:turn.cloudflare.com:3478?transport=udp",
        "turn:turn.cloudflare.com:53?transport=udp",
        "turn:turn.cloudflare.com:80?transport=tcp",
        "turns:turn.cloudflare.com:443?transport=tcp" },
        username = t.username, credential = t.credential },
    } })
  end
  if case == "empty" then return send(201, '{"iceServers":[]}') end
  if case == "big" then
    turn.pad = "@PAD@"
    return send(201, big { iceServers = { turn } })
  end
end

local xirsys = {}

local function xirsys_obj(t)
  return { username = t.username, credential = t.credential, urls = {
    "stun:bturn2.xirsys.com",
    "turn:bturn2.xirsys.com:80?transport=udp", "turn:bturn2.xirsys.com:3478?transport=udp",
    "turn:bturn2.xirsys.com:80?transport=tcp", "turn:bturn2.xirsys.com:3478?transport=tcp",
    "turns:bturn2.xirsys.com:443?transport=tcp", "turns:bturn2.xirsys.com:5349?transport=tcp",
  } }
end

-- PUT /_turn/<channel>, Basic ident:secret, {"format":"urls"}
function xirsys.turn(case, req, channel)
  local auth = req.headers.authorization
  if case == "error200" then return json(200, { s = "error", v = "unauthorized" }) end
  if case == "e401" then return json(401, { s = "error", v = "unauthorized" }) end
  if case == "echo" then
    return json(200, { s = "error", v = "unauthorized: " .. tostring(auth) })
  end
  if case == "echocut" then return json(200, { s = "error", v = echo_cut(cred_of(auth)) }) end
  if case == "500" then return send(500, HTML, "text/html") end
  if case == "garbage" then return send(200, HTML, "text/html") end
  if auth ~= "Basic " .. b64(S.xirsys_ident .. ":" .. S.xirsys_secret) then
    return json(401, { s = "error", v = "unauthorized" })
  end
  if channel ~= S.xirsys_channel then return json(200, { s = "error", v = "path_not_found" }) end
  local ok, doc = pcall(cjson.decode, req.body)
  if req.headers["content-type"] ~= "application/json" or not ok or type(doc) ~= "table"
      or doc.format ~= "urls" then
    return json(400, { s = "error", v = "bad_request" })
  end
  if case == "ok" then
    return json(200, { s = "ok", v = { iceServers = xirsys_obj(TURN.xirsys) } })
  end
  if case == "array" then
    local t = TURN.xirsys
    return json(200, { s = "ok", v = { iceServers = {
      { url = "stun:bturn2.xirsys.com" },
      { url = "turn:bturn2.xirsys.com:80?transport=udp", username = t.username,
        credential = t.credential },
      { url = "turns:bturn2.xirsys.com:443?transport=tcp", username = t.username,
        credential = t.credential },
    } } })
  end
  if case == "empty" then return send(200, '{"s":"ok","v":{"iceServers":[]}}') end
  if case == "big" then
    local obj = xirsys_obj(TURN.xirsys)
    obj.pad = "@PAD@"
    return send(200, big { s = "ok", v = { iceServers = obj } })
  end
end

-- provider path -> provider, method, handler, captured argument
local ROUTES = {
  { "metered", "GET", "^/api/v1/turn/credentials$", metered.ice },
  { "metered", "POST", "^/api/v1/turn/credential$", metered.create },
  { "twilio", "POST", "^/2010%-04%-01/Accounts/([^/]+)/Tokens%.json$", twilio.tokens },
  { "cloudflare", "POST", "^/v1/turn/keys/([^/]+)/credentials/generate%-ice%-servers$",
    cloudflare.generate },
  { "xirsys", "PUT", "^/_turn/(.+)$", xirsys.turn },
}

---------------------------------------------------------------------------
-- the request

local function record(scenario, req)
  local n = dict:incr("count:" .. scenario, 1, 0)
  dict:set("req:" .. scenario .. ":" .. n, cjson.encode(req))
end

-- The recorded calls of a scenario, as a JSON array text.
local function calls(scenario)
  local out = {}
  for i = 1, dict:get("count:" .. scenario) or 0 do
    out[i] = dict:get("req:" .. scenario .. ":" .. i)
  end
  return "[" .. table.concat(out, ",") .. "]", out
end

local uri = ngx.var.uri
local what, name = uri:match("^/(%a+)/([^/]+)$")
if what == "count" then
  return send(200, tostring(dict:get("count:" .. name) or 0), "text/plain")
elseif what == "log" then
  return send(200, (calls(name)))
elseif what == "last" then
  local _, list = calls(name)
  return send(200, list[#list] or "null")
elseif what == "relay" and name == "set" then
  local a = ngx.req.get_uri_args()
  dict:set("relay", cjson.encode { plain = a.plain, tls = a.tls, secret = a.secret })
  return send(200, "{}")
end

local scenario, path = uri:match("^/s/([^/]+)(/.*)$")
if not scenario then return send(404, '{"mock":"no such route"}') end
ngx.req.read_body()
local req = {
  method = ngx.req.get_method(),
  path = path,
  args = ngx.req.get_uri_args(100),
  headers = ngx.req.get_headers(100),
  body = ngx.req.get_body_data() or "",
}
record(scenario, req)

local provider, case = scenario:match("^(%a+)%-([%w_]+)")
if not provider then return send(404, '{"mock":"scenario is not <provider>-<case>"}') end
if case == "429" then
  ngx.header["Retry-After"] = "30"
  return send(429, '{"message":"Too many requests","code":20429}')
end
if case == "flaky" then -- the first call succeeds, every later one fails
  case = (dict:get("count:" .. scenario) or 0) > 1 and "500" or "ok"
end
if case == "slow" then ngx.sleep(2.5) end -- longer than the specs' 1 s timeout
if case == "relay" then
  relay = cjson.decode(dict:get("relay") or "null")
  if not relay then return send(500, '{"mock":"GET /relay/set first"}') end
  local username = ("%d:relay-%s"):format(ngx.time() + 3600, provider)
  TURN[provider] = { username = username,
    credential = ngx.encode_base64(ngx.hmac_sha1(relay.secret, username)) }
  case = "ok"
end

for _, route in ipairs(ROUTES) do
  local arg = path:match(route[3])
  if arg then
    if route[1] ~= provider then
      return send(404, '{"mock":"an endpoint of another provider"}')
    end
    if req.method ~= route[2] then return send(405, '{"mock":"wrong method"}') end
    local c = case
    if route[4] == metered.ice then c = case:gsub("^get", "") end
    route[4](c, req, arg)
    return send(404, '{"mock":"no such case for this endpoint"}')
  end
end
return send(404, '{"mock":"no such endpoint"}')
