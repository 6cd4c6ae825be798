-- The provider contract (docs/providers.md) as the broker enforces it: a
-- closed set of keys, the per-request argument, the ctx a provider sees,
-- max_ttl for every provider, and what the broker works out by itself (no
-- backoff read for a provider that has not failed); and the declared
-- settings of the broker and of serve().
local iceservers = require "iceservers"
local cjson = require "cjson"
local fx = require "support.fixtures"

local T = 1800000000
local TURN = [[{ { urls = "turn:p.example:3478", username = "u", credential = "c" } }]]

local error_of = fx.error_of

describe("the provider table", function()
  local tmp
  setup(function() tmp = fx.tmp() end)
  teardown(function() tmp.cleanup() end)

  local function load(name, body)
    tmp.file(name .. ".lua", "return " .. body)
    return function()
      return iceservers.new { providers = name, providers_dir = tmp.dir, log = function() end }
    end
  end

  it("is a load error with an unknown key, naming the key and the file", function()
    local err = error_of(load("sharey", "{ share = true, get = function() end }"))
    assert.matches("provider 'sharey' %(" .. tmp.dir:gsub("%p", "%%%0") .. "/sharey%.lua%): "
      .. "unknown key 'share'", err)
    assert.matches("shared", err, 1, true) -- the keys it may have are listed
    assert.is_nil(err:find("\n"))
  end)

  it("takes keys starting with _ as the author's own", function()
    local b = load("own", "{ _VERSION = '1', _helper = function() end, get = function() "
      .. "return " .. TURN .. ", 600 end }")()
    assert.are.equal("own", select(2, assert(b:get())).provider)
  end)

  it("is a load error when a key has the wrong type", function()
    for name, case in pairs {
      badshared = { "{ shared = 'yes', get = function() end }", "shared must be true or false" },
      badkind = { "{ kind = 'relay', get = function() end }", 'kind must be "stun" or "turn"' },
      badmax = { "{ max_ttl = 30, get = function() end }", "max_ttl must be a whole number" },
      badconf = { "{ configure = 1, get = function() end }", "configure must be a function" },
    } do
      assert.truthy(error_of(load(name, case[1])):find(case[2], 1, true), name)
    end
  end)
end)

describe("a provider's get", function()
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- records its arguments in _G.seen
    local body = [[
      get = function(ctx, user, opts, req)
        _G.seen[#_G.seen + 1] = { ctx = ctx, user = user, opts = opts, req = req }
        if _G.fail_get then return nil, "down" end
        return ]] .. TURN .. [[, 600
      end,
      check_user = function(user, opts, req)
        _G.checked = { user = user, req = req }
        return true
      end,
    }]]
    tmp.file("perreq.lua", "return {" .. body)
    tmp.file("sharedreq.lua", "return { shared = true," .. body)
    tmp.file("capped.lua", [[return { max_ttl = 600, get = function()
      return ]] .. TURN .. [[, 3600 end }]])
  end)
  teardown(function() tmp.cleanup() end)
  before_each(function() _G.seen, _G.checked, _G.fail_get = {}, nil, nil end)

  local function build(name, extra)
    local c = { providers = name, providers_dir = tmp.dir, log = function() end,
      now = fx.clock(T).now, stun_urls = {} }
    for k, v in pairs(extra or {}) do c[k] = v end
    return iceservers.new(c)
  end

  it("gets the request's req as its fourth argument, in get and json, and check_user too",
    function()
      local b = build("perreq")
      local req = { region = "eu" }
      assert(b:get("alice", req))
      assert.are.equal(req, _G.seen[1].req)
      assert.are.equal(req, _G.checked.req)
      assert(b:json("bob", "webrtc", req))
      assert.are.equal(req, _G.seen[2].req)
      assert.are.equal("bob", _G.seen[2].user)
    end)

  it("gets an empty, read-only req without one, and a shared provider always", function()
    assert(build("perreq"):get("alice"))
    local req = _G.seen[1].req
    assert.are.same({}, req)
    assert.has_error(function() req.region = "eu" end)
    assert(build("sharedreq"):get("alice", { region = "eu" }))
    assert.are.same({}, _G.seen[2].req)
    assert.is_nil(_G.seen[2].user)
  end)

  it("raises for a req that is not a table (a programming mistake)", function()
    local b = build("perreq")
    assert.has_error(function() b:get("alice", "eu") end)
    assert.has_error(function() b:json("alice", "webrtc", 5) end)
  end)

  it("sees a ctx with the crypto primitives only, and stat under ctx.fs", function()
    assert(build("perreq"):get())
    local ctx = _G.seen[1].ctx
    local core = require "iceservers.core"
    for _, name in ipairs { "hmac", "hmac_key", "digest", "b64encode", "b64decode", "hex",
        "ct_equal", "random_bytes", "crc32" } do
      assert.are.equal(core[name], ctx.crypto[name], name)
    end
    for _, name in ipairs { "http_request", "http_client", "stat", "json_quote" } do
      assert.is_nil(ctx.crypto[name], name)
    end
    assert.are.equal(core.stat, ctx.fs.stat)
    local signer = ctx.crypto.hmac_key("sha1", "k")
    assert.are.equal(core.b64encode(core.hmac("sha1", "k", "m")), signer:b64digest("m"))
    assert.are.equal("perreq", ctx.provider)
  end)

  it("has its reported ttl cut to its max_ttl, an operator's provider too", function()
    local _, meta = assert(build("capped"):get())
    assert.are.equal(600, meta.ttl)
    assert.are.equal(T + 600, meta.expires)
  end)

  it("costs no backoff read until the provider has failed in this process", function()
    local reads, store = {}, {}
    local backend = {
      get = function(_, key) reads[#reads + 1] = key; return store[key] end,
      set = function(_, key, value) store[key] = value end,
    }
    _G.seen = {}
    local b = build("perreq", { cache = backend })
    for _ = 1, 3 do assert(b:get("alice")) end
    assert.are.same({}, reads)
    -- once it has failed, its backoff is looked at before each call
    _G.fail_get = true
    assert.is_true(select(2, assert(b:get("alice"))).degraded)
    assert.truthy(#reads > 0)
    for _, key in ipairs(reads) do assert.matches("^perreq:%x+|backoff$", key) end
    local before, calls = #reads, #_G.seen
    assert(b:get("alice")) -- backed off: not asked
    assert.are.equal(calls, #_G.seen)
    assert.are.equal(before + 1, #reads)
  end)
end)

describe("the declared settings", function()
  local settings = require "iceservers.settings"

  it("are what from_env reads: each declared variable, and no other", function()
    local asked = {}
    iceservers.from_env(function(name)
      asked[#asked + 1] = name
      return nil
    end)
    local want = {}
    for _, s in ipairs(settings.LIST) do
      if s.env then want[#want + 1] = s.env end
    end
    table.sort(asked)
    table.sort(want)
    assert.are.same(want, asked) -- the stun provider has no variable of its own
  end)

  it("name their variable in errors, from a table or the environment", function()
    assert.matches("^iceservers: http_timeout %(ICESERVERS_HTTP_TIMEOUT%) must be a positive",
      error_of(function() iceservers.new { http_timeout = "soon" } end))
    assert.matches("^iceservers: http_timeout %(ICESERVERS_HTTP_TIMEOUT%) must be a positive",
      error_of(function() iceservers.from_env { ICESERVERS_HTTP_TIMEOUT = "-1" } end))
    assert.matches("^iceservers: config.now must be a function",
      error_of(function() iceservers.new { now = 5 } end))
  end)
end)

describe("serve()'s declared options (iceservers.ngx.settings)", function()
  local serve = require "iceservers.ngx.settings"
  local function env(vars) return function(name) return vars[name] end end

  it("resolve with their defaults, and api_key from ICESERVERS_API_KEY", function()
    local o = assert(serve.resolve(nil, env {}))
    assert.are.same({ user_from_query = false, dict = "iceservers", lock_timeout = 5,
      api_key = false, health_interval = 30, health_timeout = 2, health_fall = 2,
      health_rise = 1, health_mode = "filter", health_providers = { "coturn", "static" },
      jwt_claim = "sub", redis_timeout = 0.2, redis_fail = "open" }, o)
    -- every option with a variable takes it when opts leaves it out; opts wins
    o = assert(serve.resolve({ health_fall = 5 }, env { ICESERVERS_HEALTH_INTERVAL = "30",
      ICESERVERS_HEALTH_MODE = "observe", ICESERVERS_HEALTH_FALL = "3",
      ICESERVERS_HEALTH_PROVIDERS = "coturn,metered", ICESERVERS_HEALTH_TIMEOUT = "" }))
    assert.are.equal(30, o.health_interval)
    assert.are.equal("observe", o.health_mode)
    assert.are.equal(5, o.health_fall)
    assert.are.equal(2, o.health_timeout) -- empty: unset
    assert.are.same({ "coturn", "metered" }, o.health_providers)
    assert.are.equal("k", assert(serve.resolve({}, env { ICESERVERS_API_KEY = "k" })).api_key)
    assert.are.equal("mine", assert(serve.resolve({ api_key = "mine" },
      env { ICESERVERS_API_KEY = "k" })).api_key)
  end)

  it("refuse a misspelt option: it could open the endpoint", function()
    local o, err = serve.resolve({ apikey = "k3y" }, env {})
    assert.is_nil(o)
    assert.are.equal("opts.apikey is not an option of serve() (a misspelling?)", err)
  end)

  it("refuse a bad value, naming the option", function()
    for _, case in ipairs {
      { { api_key = "" }, "opts.api_key is empty: it must be a non-empty string" },
      { { api_key = 42 }, "opts.api_key is a number: it must be a non-empty string" },
      { { user = "header" }, "opts.user must be a function" },
      { { lock_timeout = 0 }, "opts.lock_timeout must be a positive number of seconds" },
      { { health_interval = 0.5 }, "opts.health_interval must be 0 (off) or at least 1 second" },
      { {}, "ICESERVERS_HEALTH_INTERVAL must be 0 (off) or at least 1 second",
        { ICESERVERS_HEALTH_INTERVAL = "soon" } },
      { {}, "ICESERVERS_HEALTH_FALL must be a whole number 1 .. 100",
        { ICESERVERS_HEALTH_FALL = "0" } },
      { { health_rise = 1.5 }, "opts.health_rise must be a whole number 1 .. 100" },
      { {}, "ICESERVERS_HEALTH_MODE must be filter or observe",
        { ICESERVERS_HEALTH_MODE = "drop" } },
      { {}, "ICESERVERS_API_KEY is set but empty (unset it for no key)",
        { ICESERVERS_API_KEY = "" } },
    } do
      local o, err = serve.resolve(case[1], env(case[3] or {}))
      assert.is_nil(o)
      assert.are.equal(case[2], err)
    end
  end)

  it("are every option the docs table lists", function()
    local names = {}
    for _, s in ipairs(serve.LIST) do names[#names + 1] = s.name end
    assert.are.same({ "user", "user_from_query", "api_key", "jwt", "jwt_key", "jwt_key_file",
      "jwt_algs", "jwt_audience", "jwt_issuer", "jwt_claim", "jwt_cookie", "jwt_query",
      "origins", "cors_origin", "limit_per_ip", "limit_per_user", "denylist_file", "redis",
      "redis_password", "redis_timeout", "redis_fail", "region", "region_var", "dict",
      "lock_timeout", "health_interval", "health_timeout", "health_fall", "health_rise",
      "health_mode", "health_providers" }, names)
    assert.is_string(cjson.encode(serve.LIST))
  end)
end)

describe("the built-in providers", function()
  it("are runtime-blind: they require plain-Lua helpers only, never the core or ngx", function()
    local sh = require "support.sh"
    local allowed = { ["iceservers.rest"] = true, ["iceservers.normalize"] = true,
      ["iceservers.secrets"] = true, ["iceservers.pools"] = true }
    for _, name in ipairs { "coturn", "static", "stun", "metered", "twilio", "cloudflare",
        "xirsys" } do
      local path = "lua/iceservers/providers/" .. name .. ".lua"
      local text = assert(sh.read_file(path))
      for module in text:gmatch("require%s*%(?%s*[\"']([^\"']+)[\"']") do
        assert.truthy(allowed[module], path .. " requires " .. module)
      end
      assert.is_nil(text:find("ngx%."), path .. " uses ngx")
    end
  end)
end)
