-- luacheck: globals ngx
--[[
The handlers of the benchmark nginx (bench/nginx.conf; bench/run.lua writes
the locations).  init(cfg) runs in init_worker_by_lua and builds the brokers
once per worker, as a deployment would.

  B1  /b1?impl=ngx|iceservers&s=SECONDS   the credential loop of bench/sign.lua
      inside nginx: OpenResty's ngx.hmac_sha1 + ngx.encode_base64, or the
      signer of iceservers.core; answers "rate=... n=... check=..."
  B3  /ice-servers/coturn, /ice-servers/rest: serve(broker) with the coturn
      provider, and with the Metered provider (cached after the first
      request); /ceiling/coturn, /ceiling/rest: the same response (status,
      Content-Type and Cache-Control, the endpoint's body) from a string
      computed once, by content_by_lua: the ceiling for this runtime.  The
      locations call require("bench.app").<handler>() alike, so the cost of
      that lookup is in both.  /ceiling/bare: the coturn body with no header
      set, only to show what the two headers cost
  B4  /b4/<cached|naive>/<tag>: serve() of a Metered broker per tag (so each
      tag starts cold), with the shared-dict cache, or with no cache at all
      (every request calls the provider: the naive integration)
      /drive: POST {"url": U, "n": N}: N concurrent GETs of U (light threads),
      answered with {"statuses": {...}, "turn": answers with the TURN entry}
  B5  /b5?url=U&s=SECONDS: GETs of U in a loop through the cosocket transport
      of iceservers (connections kept alive), answers "rate=... n=..."
  B6  /lua-heap: the worker's Lua heap in KiB (collectgarbage "count")
      /versions: nginx, lua-nginx-module and LuaJIT versions
  B7  /b7: POST a list of URLs and credentials: probe.list of them at once
      (ngx threads, cosockets), with the time it took and the worker's CPU;
      /b7round: one health round of a coturn provider with the URLs POSTed
]]
local common = require "bench.common"
local core = require "iceservers.core"
local cjson = require "cjson"
local iceservers = require "iceservers"
local ngxi = require "iceservers.ngx"

local M = {}

local cfg          -- what init() was given
local brokers = {} -- name -> broker
local ceilings = {} -- name -> the precomputed body of /ceiling/<name>
local SERVE_OPTS = {}

local function metered_config(tag, cache)
  return {
    providers = "metered", stun_urls = common.STUN_URLS,
    metered = { api_url = cfg.upstream .. "/metered/" .. tag, api_key = common.METERED_KEY },
    resolve = cfg.resolve, cache = cache,
  }
end

-- cfg: {upstream = "https://mock.test:PORT", resolve = "mock.test:PORT:127.0.0.1"}
function M.init(config)
  cfg = config
  brokers.coturn = ngxi.new {
    providers = "coturn", stun_urls = common.STUN_URLS,
    coturn = { secret = common.SECRET, urls = common.TURN_URLS },
  }
  brokers.rest = ngxi.new(metered_config("b3"))
  -- shaping with a cut and a per-user pick: 3 hosts of 2 URLs, one host per user
  brokers.pool = ngxi.new {
    providers = "coturn", stun_urls = common.STUN_URLS,
    coturn = { secret = common.SECRET, urls = common.POOL_URLS, pick = 1 },
  }
end

function M.coturn() return ngxi.serve(brokers.coturn, SERVE_OPTS) end
function M.rest() return ngxi.serve(brokers.rest, SERVE_OPTS) end
local POOL_OPTS = { user = function() return common.POOL_USER end }
function M.pool() return ngxi.serve(brokers.pool, POOL_OPTS) end
-- the coturn endpoint for the same user, without a pool: what the pick adds
function M.user() return ngxi.serve(brokers.coturn, POOL_OPTS) end
-- guarded: the application's JWT (the same token each time, as a client
-- repeats it) and both limits on, counted in the shared dict
local GUARDED_OPTS = { jwt_key = common.JWT_KEY, jwt_algs = { "HS256" },
  limit_per_ip = "1000000000/minute", limit_per_user = "1000000000/minute" }
function M.guarded() return ngxi.serve(brokers.coturn, GUARDED_OPTS) end

-- B8: distinct-token verifications per second of iceservers.jwt (no cache):
-- POST {alg =, key = or pem =, tokens = {...}, seconds =}.
function M.verify_rate()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then -- a big body nginx kept in a file
    local f = assert(io.open(assert(ngx.req.get_body_file(), "bench: B8: no body"), "rb"))
    body = f:read("*a")
    f:close()
  end
  local job = cjson.decode(body)
  local v = require("iceservers.jwt").new { algs = { job.alg }, secret = job.key,
    keys = job.pem and { job.pem } or nil }
  local tokens, done = job.tokens, 0
  assert(v:verify(tokens[1]), "bench: B8 token refused")
  local t0 = core.monotonic()
  repeat
    for i = 1, #tokens do v:verify(tokens[i]) end
    done = done + #tokens
  until core.monotonic() - t0 >= (job.seconds or 1)
  ngx.say(cjson.encode { rate = done / (core.monotonic() - t0) })
end

-- The ceiling: what reply() of iceservers.ngx sends for a 200, nothing
-- computed.  Its body is the endpoint's answer, made by the first request
-- (bench/run.lua sends one before measuring; REST needs the cache warm).
local function ceiling(name, user)
  local body = assert(iceservers.encode(brokers[name]:get(user)))
  return function()
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(body)
  end
end

function M.ceiling_coturn()
  ceilings.coturn = ceilings.coturn or ceiling("coturn")
  M.ceiling_coturn = ceilings.coturn -- the next requests call the handler itself
  return ceilings.coturn()
end

function M.ceiling_guarded()
  ceilings.guarded = ceilings.guarded or ceiling("coturn", common.JWT_USER)
  M.ceiling_guarded = ceilings.guarded
  return ceilings.guarded()
end

function M.ceiling_rest()
  ceilings.rest = ceilings.rest or ceiling("rest")
  M.ceiling_rest = ceilings.rest
  return ceilings.rest()
end

-- For comparison only: the coturn body printed with no header set at all.
function M.ceiling_bare()
  local body = assert(iceservers.encode(brokers.coturn:get()))
  M.ceiling_bare = function() ngx.print(body) end
  return M.ceiling_bare()
end

function M.sign()
  local impl, seconds = ngx.var.arg_impl, tonumber(ngx.var.arg_s) or 1
  local sign
  if impl == "ngx" then
    local hmac_sha1, encode_base64, secret = ngx.hmac_sha1, ngx.encode_base64, common.SECRET
    sign = function(username) return encode_base64(hmac_sha1(secret, username)) end
  elseif impl == "iceservers" then
    local signer = core.hmac_key("sha1", common.SECRET) -- as the coturn provider signs
    sign = function(username) return signer:b64digest(username) end
  else
    return ngx.exit(400)
  end
  local check = sign(common.EXPIRY .. ":user-1")
  ngx.say(common.rate_loop(sign, seconds, core.monotonic), " check=", check)
end

local b4 = {} -- "kind/tag" -> broker, per worker
local NO_CACHE = { get = function() end, set = function() end }

function M.b4()
  local kind, tag = ngx.var.uri:match("^/b4/(%a+)/([%w%-]+)$")
  local key = kind .. "/" .. tostring(tag)
  local broker = b4[key]
  if not broker then
    broker = ngxi.new(metered_config(tag, kind == "naive" and NO_CACHE or nil))
    b4[key] = broker
  end
  return ngxi.serve(broker, SERVE_OPTS)
end

function M.drive()
  local cosocket = require "iceservers.ngx.cosocket"
  ngx.req.read_body()
  local job = cjson.decode(ngx.req.get_body_data())
  local statuses, errors, turn = {}, {}, 0
  local function one()
    local res, err = cosocket.request { url = job.url, timeout = 30 }
    if not res then
      errors[#errors + 1] = err
      return
    end
    statuses[tostring(res.status)] = (statuses[tostring(res.status)] or 0) + 1
    if res.body:find(common.METERED_TURN.credential, 1, true) then turn = turn + 1 end
  end
  local threads = {}
  for i = 1, job.n do threads[i] = ngx.thread.spawn(one) end
  for i = 1, job.n do ngx.thread.wait(threads[i]) end
  ngx.say(cjson.encode { statuses = statuses, turn = turn, errors = errors })
end

function M.b5()
  local cosocket = require "iceservers.ngx.cosocket"
  local url = ngx.var.arg_url
  local req = { url = url, resolve = { [url:match("^https://([^/]+)")] = "127.0.0.1" } }
  local seconds = tonumber(ngx.var.arg_s) or 1
  for _ = 1, 20 do assert(cosocket.request(req)) end -- warm up (and fill the pool)
  local n, t0 = 0, core.monotonic()
  local elapsed
  repeat
    local res, err = cosocket.request(req)
    if not res or res.status ~= 200 then return ngx.say("error=", tostring(err)) end
    n = n + 1
    elapsed = core.monotonic() - t0
  until elapsed >= seconds
  ngx.say(("rate=%.0f n=%d"):format(n / elapsed, n))
end

-- B7: POST {"items": [{"url": U, "username": N, "credential": C}], "timeout": T}:
-- probe.list of them at once (ngx threads, cosockets), answered with
-- {"took": s, "cpu_ms": ms of the worker's CPU, "results": [{ok, stage, exchanges}]}.
function M.probe()
  local probe = require "iceservers.stun.probe"
  local net = require "iceservers.stun.net_ngx"
  ngx.req.read_body()
  local job = cjson.decode(ngx.req.get_body_data())
  local items = {}
  for i, it in ipairs(job.items) do
    items[i] = { url = it.url, credential = it.username
      and { username = it.username, credential = it.credential } or nil }
  end
  local cpu0, t0 = os.clock(), core.monotonic()
  local results = probe.list(items, { net = net, crypto = core, now = core.monotonic,
    timeout = job.timeout, run = net.run })
  local took, cpu = core.monotonic() - t0, os.clock() - cpu0
  local out = {}
  for i, r in ipairs(results) do
    out[i] = { ok = r.ok, stage = r.stage, exchanges = r.exchanges, error = r.error }
  end
  ngx.say(cjson.encode { took = took, cpu_ms = cpu * 1000, results = out })
end

-- B7: POST {"urls": [...], "secret": S}: one health round (iceservers.ngx.health)
-- of a coturn provider with those URLs, answered with {"cpu_ms", "took", "ok"}.
function M.round()
  local ngx_health = require "iceservers.ngx.health"
  ngx.req.read_body()
  local job = cjson.decode(ngx.req.get_body_data())
  local broker = iceservers.new { providers = "coturn", stun_urls = {},
    coturn = { secret = job.secret, urls = job.urls } }
  local o = { health_providers = { "coturn" }, health_timeout = 2, health_fall = 2,
    health_rise = 1, health_interval = 30 }
  local cpu0, t0 = os.clock(), core.monotonic()
  local results = ngx_health.round(broker, o, ngx.shared.iceservers, function() end)
  local took, cpu = core.monotonic() - t0, os.clock() - cpu0
  local ok = 0
  for _, r in ipairs(results) do if r.ok then ok = ok + 1 end end
  ngx.say(cjson.encode { cpu_ms = cpu * 1000, took = took, ok = ok, n = #results })
end

function M.lua_heap()
  ngx.say(("%.1f"):format(collectgarbage("count")))
end

function M.versions()
  ngx.say(cjson.encode {
    nginx = ngx.config.nginx_version, ngx_lua = ngx.config.ngx_lua_version,
    luajit = rawget(_G, "jit") and rawget(_G, "jit").version or "?",
  })
end

return M
