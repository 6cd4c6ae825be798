--[[
iceservers inside nginx (OpenResty's lua-nginx-module):

  lua_shared_dict iceservers 1m;
  location = /ice-servers {
      content_by_lua_block { require("iceservers.ngx").serve() }
  }
  location = /ice-servers/metrics {   # internal: allow/deny as you see fit
      content_by_lua_block { require("iceservers.ngx").metrics() }
  }

serve(broker, opts), both optional: without a broker, one is built per worker on first
use from the environment (list the variables with nginx's `env` directive).
opts are declared in iceservers.ngx.settings; the endpoint key is opts.api_key,
else ICESERVERS_API_KEY; check(opts) raises, in init_worker_by_lua*, what
serve() would refuse to run with.
The answers of REST providers are shared by all workers through the dict, and
one request refreshes them for all.  Provider calls use cosockets, so a slow
provider never blocks the worker.
]]
local iceservers = require "iceservers"
local shm_cache = require "iceservers.ngx.shm_cache"
local ngx_health = require "iceservers.ngx.health"
local prometheus = require "iceservers.prometheus"
local settings = require "iceservers.ngx.settings"
local auth = require "iceservers.ngx.auth"
local guard = require "iceservers.ngx.guard"
local stores = require "iceservers.ngx.stores"
local core = require "iceservers.core"
local clock = require "iceservers.ngx.clock"
local counts = require "iceservers.ngx.counts"

local M = {}

local find, gsub = string.find, string.gsub
-- The request path's ngx functions, read once (lua-resty-core has replaced
-- them by then): each field read per request is a constant of its trace, and
-- LuaJIT compiles a trace of at most 500 constants (maxirconst).
local get_method, ngx_print, ngx_exit, header, var = ngx.req.get_method, ngx.print, ngx.exit,
  ngx.header, ngx.var

local KEY_VAR = settings.BY_NAME.api_key.env
local RETRY = 5 -- seconds between two builds of a broken configuration
local NOT_CONFIGURED = "ICE servers are not configured"
local METRIC_PREFIX = "metrics|"
local LEVELS = { error = ngx.ERR, warn = ngx.WARN, info = ngx.INFO, debug = ngx.DEBUG }

local function logger(level, msg)
  ngx.log(LEVELS[level] or ngx.INFO, "iceservers: ", msg)
end

-- Counters in the shared dict: totals for the node, whichever worker counted
-- (through iceservers.ngx.counts: in batches, up to a second late).  A hit is
-- counted on every request, so its key is made once, not per call.
local function counter(dict)
  local keys = {} -- event -> provider -> key
  return function(event, provider, value)
    provider = provider or "-"
    local per = keys[event]
    if not per then
      per = {}
      keys[event] = per
    end
    local base = per[provider]
    if not base then
      base = METRIC_PREFIX .. event .. "|" .. provider
      per[provider] = base
    end
    counts.add(dict, base, 1)
    if event == "upstream" and value then
      counts.add(dict, base .. "|ms", value)
      for i, bound in ipairs(prometheus.BUCKETS) do
        if value <= bound * 1000 then
          counts.add(dict, METRIC_PREFIX .. "upstream_le|" .. provider .. "|" .. i, 1)
          break
        end
      end
    end
  end
end

local worker_broker -- built once per worker, on the first request
local build_failed_at -- ngx.now() of the last failed build of worker_broker
local env_key         -- ICESERVERS_API_KEY, false when unset: a worker's environment is fixed
local complained = {} -- configuration error -> ngx.now() of its last log line
local warned_open = false
local NO_OPTS = {}
local checked = setmetatable({}, { __mode = "k" }) -- opts -> settings.resolve's, or {err =}

local function getenv(name)
  if name ~= KEY_VAR then return os.getenv(name) end
  if env_key == nil then env_key = os.getenv(KEY_VAR) or false end
  return env_key or nil
end

-- The options of opts, checked once per table: resolved, or {err = why}.
-- (not a closure made in options_of: LuaJIT would not compile its return)
local function store_for(o)
  return o.redis and stores.redis(o) or o.shared and stores.dict(o.shared) or nil
end

local function options_of(opts)
  opts = opts or NO_OPTS
  local o = checked[opts]
  if not o then
    local err, bad
    o, err, bad = settings.resolve(opts, getenv)
    o = o or { err = "iceservers: " .. err, bad = bad }
    o.regional = (o.region or o.region_var) and true -- one field read per request
    o.shared = o.dict and ngx.shared[o.dict] -- the counters' (nil outside a request phase dict)
    if not o.err then
      local v, why = auth.verifier(o)
      if why then o = { err = "iceservers: " .. why, bad = "jwt" } end
      o.verifier = v
    end
    if not o.err then
      if o.origins then
        o.origin_set = {}
        for _, origin in ipairs(o.origins) do o.origin_set[origin] = true end
      end
      o.denylist = o.denylist_file and guard.denylist(o.denylist_file) or nil
      o.limited = (o.limit_per_ip or o.limit_per_user) and true
      local ok, store = pcall(store_for, o)
      if ok then o.store = store else o = { err = "iceservers: " .. store, bad = "redis" } end
    end
    checked[opts] = o
  end
  return o
end

-- The options for a broker of its own: raises on a bad one.
local function wired(opts)
  local o = options_of(opts)
  if o.err then error(o.err, 0) end
  return o
end

-- The clock is nginx's cached one (ngx.time, no system call, the second
-- nginx read at the start of this event-loop turn; through iceservers.ngx.clock,
-- which LuaJIT can compile), not os.time.
local function runtime(o)
  local cache = shm_cache.new(o.dict, o)
  return { cache = cache, log = logger, on_event = counter(cache.dict), now = clock.time,
    -- read whether or not this worker runs health(): nothing down, nothing left out
    health = o.health_mode == "filter" and ngx_health.source(cache.dict) or nil }
end

-- A broker wired to nginx: the shared-dict cache, ngx.log, the metrics.
function M.new(config, opts)
  local c = {}
  for k, v in pairs(config) do c[k] = v end
  for k, v in pairs(runtime(wired(opts))) do
    if c[k] == nil then c[k] = v end
  end
  return iceservers.new(c)
end

function M.from_env(env, opts)
  return iceservers.from_env(env, runtime(wired(opts)))
end

-- One error line per worker and retry window for a configuration error.
local function complain(err)
  local now = ngx.now()
  local last = complained[err]
  if not last or now - last >= RETRY then
    complained[err] = now
    ngx.log(ngx.ERR, err)
  end
end

-- The worker's broker from the environment.  A configuration that fails to
-- build is tried again (and logged) at most every RETRY seconds, not on
-- every request.
local function env_broker(opts)
  if worker_broker then return worker_broker end
  local now = ngx.now()
  if build_failed_at and now - build_failed_at < RETRY then return nil end
  local ok, built = pcall(M.from_env, nil, opts)
  if not ok then
    build_failed_at = now
    local err = tostring(built)
    ngx.log(ngx.ERR, find(err, "^iceservers: ") and "" or "iceservers: ", err)
    return nil
  end
  worker_broker, build_failed_at = built, nil
  return built
end

--[[
health(broker, opts), in init_worker_by_lua*: probes what the broker's
providers hand out (opts.health_providers) every opts.health_interval
seconds, one worker per node at a time, and keeps each URL's state in the
dict, where every worker's brokers built by this module read it (mode
filter).  Without a broker, the worker's from the environment.  Off (false)
when the interval is 0; raises a one-line error on a bad option.
]]
function M.health(broker, opts)
  local o = options_of(opts)
  if o.err then
    -- a bad option of health's own is raised here; any other serve() reports
    if o.bad and o.bad:find("^health_") then error(o.err, 0) end
    return false
  end
  if o.health_interval == 0 then return false end
  local dict = ngx.shared[o.dict]
  if not dict then error("iceservers: no lua_shared_dict " .. o.dict, 0) end
  local function get() return broker or env_broker(opts) end
  return ngx_health.start(get, o, dict, logger)
end

-- Raises what serve(broker, opts) would answer 503 for, as a one-line error:
-- a bad option, a bad endpoint key.  For init_worker_by_lua*, where the
-- mistake shows at start.
function M.check(opts)
  local _, err = settings.resolve(opts, getenv)
  if err then error("iceservers: " .. err, 0) end
  return true
end

local REQUEST_KEYS = setmetatable({}, { __index = function(t, status)
  local key = METRIC_PREFIX .. "request|" .. status
  t[status] = key
  return key
end })

-- The request is counted after the body is out: measured, the guarded
-- request's traces then stay within LuaJIT's limits (docs/nginx.md, "LuaJIT").
-- (counts: a Lua table, added to the dict once a second)
local function reply(status, body, opts)
  ngx.status = status
  header["Content-Type"] = "application/json"
  header["Cache-Control"] = "no-store"
  ngx_print(body)
  local dict = opts.shared
  if dict then counts.add(dict, REQUEST_KEYS[status], 1) end
  return ngx_exit(status)
end

local function failure(status, message, opts)
  return reply(status, ('{"error":"%s"}'):format(message), opts)
end

-- The store (Redis) did not answer: ICESERVERS_REDIS_FAIL says whether the
-- request goes on (open, said once a minute) or gets 503 (closed).
local store_failed_at = -math.huge
local function store_failed(opts, err)
  local now = ngx.now()
  if now - store_failed_at >= 60 then
    store_failed_at = now
    ngx.log(ngx.ERR, "iceservers: the limits' store does not answer (", err, "); failing ",
      opts.redis_fail)
  end
  if opts.redis_fail == "closed" then
    return failure(503, "service unavailable", opts)
  end
end

local function too_many(wait, opts)
  header["Retry-After"] = tostring(wait)
  return failure(429, "too many requests", opts)
end

-- The user id of the request's JWT; or nil and the 401 sent (RFC 6750 §3:
-- no error code without a token; invalid_token, and nothing of why, for a
-- bad one, whose reason goes to the info log).
local function bearer_user(opts, args)
  local token = auth.token(opts, args)
  if not token then
    header["WWW-Authenticate"] = "Bearer"
    return nil, failure(401, "unauthorized", opts)
  end
  local user, why = auth.user(opts.verifier, token)
  if user then return user end
  ngx.log(ngx.INFO, "iceservers: token refused: ", why)
  header["WWW-Authenticate"] = 'Bearer error="invalid_token"'
  return nil, failure(401, "unauthorized", opts)
end

-- The query's parameters.  Janus appends "?service=turn&..." to its
-- turn_rest_api URL even when that has a query already: a literal "?" in the
-- query then separates parameters too (an encoded %3F does not).  The raw
-- query is read first: no table walk, and no parse at all without a query.
-- The parameters of a request without a query (no table per request).
local NO_ARGS = setmetatable({}, { __newindex = function() error("read-only", 2) end })
local function query_args()
  local raw = var.args
  if not raw then return NO_ARGS end
  if find(raw, "?", 1, true) then
    return ngx.decode_args((gsub(raw, "%?", "&")), 32)
  end
  return ngx.req.get_uri_args(32)
end

-- Query arguments, and those of a form body (Janus POSTs them).
local function params(method)
  local args = query_args()
  if method == "POST" and (ngx.var.content_type or ""):find("application/x-www-form-urlencoded",
    1, true) then
    ngx.req.read_body()
    local form = ngx.req.get_post_args(32)
    if args == NO_ARGS then args = {} end
    for k, v in pairs(form or {}) do
      if args[k] == nil then args[k] = v end
    end
  end
  return args
end

local function one(v)
  if type(v) == "table" then return v[1] end -- a repeated parameter: the first
  if v == true then return "" end             -- a parameter without a value
  return v
end

-- opts: see iceservers.ngx.settings.  A bad option is a configuration error:
-- 503 to every request, logged once per worker and RETRY seconds.
-- (not a closure made in region_req: LuaJIT would not compile its returns)
local function read_only() error("req is read-only", 2) end

-- The req of a request with a region: one read-only table per region name
-- (a bounded number: the names come from requests), never one per request.
local REGION_REQS, region_reqs = {}, 0
local function region_req(opts)
  local region
  if opts.region then
    region = opts.region(ngx)
  else
    region = var[opts.region_var]
  end
  if type(region) ~= "string" or region == "" then return nil end
  local req = REGION_REQS[region]
  if req then return req end
  req = setmetatable({}, { __index = { region = region }, __newindex = read_only })
  if region_reqs < 64 then
    REGION_REQS[region], region_reqs = req, region_reqs + 1
  end
  return req
end

function M.serve(broker, raw_opts)
  local opts = options_of(raw_opts)
  if opts.err then
    complain(opts.err)
    return failure(503, NOT_CONFIGURED, NO_OPTS)
  end
  local key = opts.api_key
  local method = get_method()
  local origins = opts.origin_set
  if origins then
    -- a browser's request names its page's origin; anything else is not a browser
    local origin = var.http_origin
    if origin then
      if not origins[origin] then return failure(403, "origin not allowed", opts) end
      header["Access-Control-Allow-Origin"] = origin -- (set now: the reply may come later)
      header["Vary"] = "Origin"
    end
    if method == "OPTIONS" then -- a preflight: before the key, the token and the limits
      header["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
      header["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Api-Key"
      header["Access-Control-Max-Age"] = "600"
      return ngx_exit(204)
    end
  end
  if method ~= "GET" and method ~= "POST" then
    header["Allow"] = origins and "GET, POST, OPTIONS" or "GET, POST"
    return failure(405, "method not allowed", opts)
  end
  if opts.limited and opts.limit_per_ip then
    local wait, err = guard.over(opts.store, "ip", guard.client(var.remote_addr),
      opts.limit_per_ip)
    if wait then return too_many(wait, opts) end
    if err then
      local refused = store_failed(opts, err)
      if refused then return refused end
    end
  end

  -- the key first: a client without it learns nothing of the configuration
  local args = params(method)
  local token_user
  if key or opts.verifier then
    local admitted = false
    if key then
      local given = one(args.key) or one(args.api) or var.http_x_api_key
      admitted = given ~= nil and core.ct_equal(tostring(given), key)
    end
    if not admitted and opts.verifier then -- the application's JWT: either one admits
      local refused
      token_user, refused = bearer_user(opts, args)
      if not token_user then return refused end
    elseif not admitted then
      return failure(401, "unauthorized", opts)
    end
  elseif not opts.user and not warned_open then
    warned_open = true
    ngx.log(ngx.WARN, "iceservers: this endpoint has neither opts.user nor an API key ",
      "(opts.api_key, ", KEY_VAR, "): anyone who can reach it gets TURN credentials ",
      "(fine behind your own auth)")
  end

  if not broker then
    broker = env_broker(raw_opts)
    if not broker then return failure(503, NOT_CONFIGURED, opts) end
  end

  -- service=turn is the draft's own parameter: what Janus sends, never format=
  local service = one(args.service)
  if service and service ~= "turn" then
    return failure(400, "service must be turn", opts)
  end
  local format = one(args.format) or (service and "rest" or "webrtc")
  if format ~= "webrtc" and format ~= "rest" then
    return failure(400, "format must be webrtc or rest", opts)
  end

  local user, from_query
  if token_user then
    user = token_user -- the verified claim: nothing of the request overrides it
  elseif opts.user then
    user = opts.user(ngx)
  elseif opts.user_from_query then
    user = one(args.username) or one(args.user)
    if user == "" then user = nil end
    from_query = user ~= nil
  end

  if user then
    local revoked, err = guard.revoked(opts.store, user, opts.denylist)
    if revoked then
      ngx.log(ngx.INFO, "iceservers: a revoked user was refused")
      return failure(403, "forbidden", opts)
    end
    local wait
    if not err and opts.limited and opts.limit_per_user then
      wait, err = guard.over(opts.store, "user", user, opts.limit_per_user)
      if wait then return too_many(wait, opts) end
    end
    if err then
      local refused = store_failed(opts, err)
      if refused then return refused end
    end
  end

  local req = opts.regional and region_req(opts) or nil

  -- broker:json writes what encode(broker:get(user)) would, reusing the text
  -- of a cached answer; a broker-like object of the caller's may have get only.
  local json, err, failed
  if broker.json then
    json, err, failed = broker:json(user, format, req)
  else
    local servers, meta = broker:get(user, req, format)
    if servers then
      json, err = iceservers.encode(servers, meta, format)
      failed = "encode"
    else
      err, failed = meta, "get"
    end
  end
  if json then return reply(200, json, opts) end
  if failed == "encode" then
    ngx.log(ngx.ERR, "iceservers: ", err)
    return failure(503, "no TURN servers available", opts)
  end
  -- a username the client sent that the broker refuses is the client's error
  if from_query and tostring(err):find("^invalid user") then
    ngx.log(ngx.INFO, "iceservers: ", err)
    return failure(400, "invalid username", opts)
  end
  ngx.log(ngx.ERR, "iceservers: ", err)
  return failure(503, "no ICE servers available", opts)
end

-- The guard's store for opts (Redis, or the node's dict), also where options_of
-- ran outside a request (no dict then).
local function store_of(opts)
  local o = options_of(opts)
  if o.err then error(o.err, 0) end
  if o.store then return o.store end
  local dict = ngx.shared[o.dict or settings.BY_NAME.dict.default]
  return dict and stores.dict(dict)
end

-- Revokes user for seconds, in the guard's store (Redis, or the node's
-- shared dict opts.dict): serve()
-- refuses it with 403 until then.  Credentials handed out before stay valid
-- at the TURN server until they expire (docs/auth.md).
function M.revoke(user, seconds, opts)
  local store = store_of(opts)
  if not store then error("iceservers: no lua_shared_dict for revoke", 2) end
  return guard.revoke(store, user, seconds)
end

-- An admin location (keep it internal: allow/deny): GET lists the revoked
-- users as JSON, POST user=&seconds= revokes one, DELETE ?user= takes a
-- revocation back.
function M.admin(opts)
  local store = store_of(opts)
  header["Content-Type"] = "application/json"
  header["Cache-Control"] = "no-store"
  if not store then
    ngx.status = 503
    return ngx_print('{"error":"no lua_shared_dict"}')
  end
  local method = get_method()
  local args = params(method)
  local user = one(args.user)
  if method == "GET" then
    local list = {}
    local revoked, err = guard.revoked_list(store)
    if not revoked then
      ngx.status = 503
      return ngx_print(require("cjson").encode { error = err })
    end
    for i, r in ipairs(revoked) do
      list[i] = { user = r.user, ["until"] = r.until_t }
    end
    return ngx_print(require("cjson").encode { revoked = setmetatable(list,
      require("cjson").array_mt) })
  end
  if type(user) ~= "string" or user == "" then
    ngx.status = 400
    return ngx_print('{"error":"user is required"}')
  end
  if method == "DELETE" then
    guard.unrevoke(store, user)
    return ngx_print('{"ok":true}')
  end
  if method == "POST" or method == "PUT" then
    local ok, err = pcall(guard.revoke, store, user, one(args.seconds))
    if not ok or not err then
      err = ok and "the store did not take it" or err
      ngx.status = 400
      return ngx_print(require("cjson").encode { error = (tostring(err):gsub("^.-: ", "", 1)) })
    end
    return ngx_print('{"ok":true}')
  end
  ngx.status = 405
  header["Allow"] = "GET, POST, PUT, DELETE"
  return ngx_print('{"error":"method not allowed"}')
end

-- The counters and the URLs' health: the Prometheus text format, or with
-- ?format=json the counters as JSON: {"hit": {"metered": 10}, ...},
-- "upstream_ms" holding the summed latency per provider.
local function counters(dict)
  local out = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local event, label = key:match("^metrics|([^|]+)|(.+)$")
    if event then
      if event == "upstream" and label:sub(-3) == "|ms" then
        event, label = "upstream_ms", label:sub(1, -4)
      end
      out[event] = out[event] or {}
      out[event][label] = dict:get(key)
    end
  end
  return out
end

function M.metrics(opts)
  local dict = ngx.shared[options_of(opts).dict or settings.BY_NAME.dict.default]
  counts.flush() -- this worker's; the others' are at most a second late
  local c = dict and counters(dict) or {}
  ngx.header["Cache-Control"] = "no-store"
  local failures = c.probe_failure
  c.probe_failure = nil
  if ngx.var.arg_format == "json" then
    c.request, c.upstream_le = nil, nil
    ngx.header["Content-Type"] = "application/json"
    local json = require("cjson").encode(c)
    return ngx.print(json == "[]" and "{}" or json)
  end
  ngx.header["Content-Type"] = prometheus.CONTENT_TYPE
  ngx.print(prometheus.text(c, dict and ngx_health.urls(dict, failures) or {}))
end

return M
