-- The broker API: configuration, the provider contract and chain, fallback,
-- the built-in providers, secrets rotation, and encoding.
local iceservers = require "iceservers"
local core = require "iceservers.core"
local cjson = require "cjson"
local fx = require "support.fixtures"

local TURN = { "turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349" }
local GOOGLE = "stun:stun.l.google.com:19302"

local function coturn_config(extra)
  local c = { providers = "coturn", log = function() end,
    coturn = { secret = "s3cret-value", urls = TURN, ttl = 3600 } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local error_of = fx.error_of

describe("iceservers.new / from_env with no configuration", function()
  it("serves the STUN-only default", function()
    for _, broker in ipairs { iceservers.new {}, iceservers.from_env {} } do
      local servers, meta = assert(broker:get())
      assert.are.same({ { urls = { GOOGLE } } }, servers)
      assert.are.equal("stun", meta.provider)
      assert.is_nil(meta.ttl)
      assert.is_nil(meta.expires)
      assert.is_nil(meta.degraded)
      assert.are.equal('{"iceServers":[{"urls":["' .. GOOGLE .. '"]}]}',
        iceservers.encode(servers, meta, "webrtc"))
    end
  end)

  it("serves an empty list when STUN_URLS is set empty, encoded as []", function()
    local broker = iceservers.from_env { STUN_URLS = "" }
    local servers, meta = assert(broker:get("alice"))
    assert.are.same({}, servers)
    assert.are.equal('{"iceServers":[]}', iceservers.encode(servers, meta))
  end)

  it("takes STUN_URLS as a comma list, in order", function()
    local broker = iceservers.from_env { STUN_URLS = " stun:a.example:3478 ,stun:b.example" }
    local servers = assert(broker:get())
    assert.are.same({ { urls = { "stun:a.example:3478", "stun:b.example" } } }, servers)
  end)

  it("reads the environment when from_env is called, and new() reads none", function()
    local env = {}
    local first = iceservers.from_env(env)
    env.TURN_PROVIDER, env.TURN_SECRET, env.TURN_URLS = "coturn", "x-secret", TURN[1]
    assert.are.equal("stun", select(2, first:get()).provider)
    local second = iceservers.from_env(env, { log = function() end })
    assert.are.equal("coturn", select(2, second:get()).provider)
    local sh = require "support.sh"
    local interp = jit and "luajit" or "lua5.4"
    local ok, out = sh.run("TURN_PROVIDER=coturn TURN_SECRET=x TURN_URLS=turn:h " .. interp
      .. " -e 'package.path=\"lua/?.lua;lua/?/init.lua;\"..package.path; package.cpath=\""
      .. (os.getenv("ICESERVERS_BUILD") or ("build/" .. _VERSION:match("%d+%.%d+")))
      .. "/?.so;\"..package.cpath; local b = require(\"iceservers\").new{}; "
      .. "print(select(2, b:get()).provider)'")
    assert(ok, out)
    assert.are.equal("stun", (out:gsub("%s+$", "")))
  end)
end)

describe("the coturn provider", function()
  it("signs expiry:user with HMAC-SHA1 of the secret", function()
    local clock = fx.clock(1800000000)
    local broker = iceservers.new(coturn_config { now = clock.now })
    local servers, meta = assert(broker:get("alice"))
    assert.are.equal(2, #servers)
    assert.are.same({ urls = { GOOGLE } }, servers[1])
    local turn = servers[2]
    assert.are.same(TURN, turn.urls)
    assert.are.equal("1800003600:alice", turn.username)
    assert.are.equal(core.b64encode(core.hmac("sha1", "s3cret-value", turn.username)),
      turn.credential)
    assert.are.equal("coturn", meta.provider)
    assert.are.equal(3600, meta.ttl)
    assert.are.equal(1800003600, meta.expires)
  end)

  it("uses the bare expiry as username without a user", function()
    local clock = fx.clock(1800000000)
    local servers = assert(iceservers.new(coturn_config { now = clock.now }):get())
    assert.are.equal("1800003600", servers[2].username)
  end)

  it("is also known as turn-rest, and reads TURN_* variables", function()
    local broker = iceservers.from_env({
      TURN_PROVIDER = "turn-rest", TURN_SECRET = "env-secret", TURN_URLS = TURN[1],
      TURN_TTL = "2h", STUN_URLS = "",
    }, { log = function() end })
    local servers, meta = assert(broker:get("bob"))
    assert.are.equal(1, #servers)
    assert.are.equal("turn-rest", meta.provider)
    assert.are.equal(7200, meta.ttl)
    assert.are.equal(core.b64encode(core.hmac("sha1", "env-secret", servers[1].username)),
      servers[1].credential)
  end)

  it("removes provider URLs that STUN_URLS already lists, STUN first", function()
    local broker = iceservers.new(coturn_config {
      stun_urls = { "stun:turn.example.com:3478" },
      coturn = { secret = "k", urls = { "turn:turn.example.com:3478" } },
    })
    local servers = assert(broker:get("u"))
    assert.are.same({ "stun:turn.example.com:3478" }, servers[1].urls)
    assert.are.same({ "turn:turn.example.com:3478" }, servers[2].urls)
  end)

  it("signs with the new first line after the secrets file is rewritten", function()
    local tmp = fx.tmp()
    local path = tmp.file("secrets", "first-secret\nold-secret\n")
    local clock = fx.clock(1800000000)
    local broker = iceservers.new(coturn_config {
      now = clock.now, coturn = { secret_file = path, urls = TURN },
    })
    local s1 = assert(broker:get("carol"))
    assert.are.equal(core.b64encode(core.hmac("sha1", "first-secret", s1[2].username)),
      s1[2].credential)
    fx.write(path, "rotated-secret-longer\nfirst-secret\n")
    clock.t = clock.t + 2
    local s2 = assert(broker:get("carol"))
    assert.are.equal(core.b64encode(core.hmac("sha1", "rotated-secret-longer", s2[2].username)),
      s2[2].credential)
    tmp.cleanup()
  end)

  it("fails (not falls over) when the secrets file breaks at run time", function()
    local tmp = fx.tmp()
    local path = tmp.file("secrets", "one\n")
    local clock = fx.clock()
    local lines, log = fx.recorder()
    local broker = iceservers.new(coturn_config {
      now = clock.now, log = log, coturn = { secret_file = path, urls = TURN },
    })
    fx.write(path, "\n\n")
    clock.t = clock.t + 5
    local servers, meta = assert(broker:get("dave"))
    assert.is_true(meta.degraded)
    assert.matches("coturn: the secrets file .* holds no secret", meta.errors[1])
    assert.are.same({ { urls = { GOOGLE } } }, servers)
    assert.are.equal(1, #lines)
    tmp.cleanup()
  end)
end)

describe("the static provider", function()
  it("hands out TURN_USERNAME/TURN_PASSWORD on TURN_URLS", function()
    local broker = iceservers.from_env { TURN_PROVIDER = "static", TURN_USERNAME = "user1",
      TURN_PASSWORD = "pass1", TURN_URLS = TURN[1], STUN_URLS = "" }
    local servers, meta = assert(broker:get())
    assert.are.same({ { urls = { TURN[1] }, username = "user1", credential = "pass1" } }, servers)
    assert.are.equal("static", meta.provider)
    assert.are.equal(86400, meta.ttl)
  end)
end)

describe("a provider dropped into ICESERVERS_PROVIDERS_DIR", function()
  local tmp
  before_each(function() tmp = fx.tmp() end)
  after_each(function() tmp.cleanup() end)

  it("is selected by TURN_PROVIDER, configured by its env option, normalized", function()
    tmp.file("acme.lua", [[
      return {
        options = { api_key = { env = "ACME_API_KEY", required = true },
                    region = { default = "eu" } },
        get = function(ctx, user, opts)
          return { { url = "turn:" .. opts.region .. ".acme.example:3478",
                     username = opts.api_key .. ":" .. (user or ""), password = "pw" },
                   { urls = "stun:" .. opts.region .. ".acme.example" } }, 600
        end,
      }]])
    local broker = iceservers.from_env { TURN_PROVIDER = "acme", ACME_API_KEY = "k1",
      ICESERVERS_PROVIDERS_DIR = "/nonexistent:" .. tmp.dir, STUN_URLS = "stun:s.example" }
    local servers, meta = assert(broker:get("erin"))
    assert.are.same({
      { urls = { "stun:s.example" } },
      { urls = { "turn:eu.acme.example:3478" }, username = "k1:erin", credential = "pw" },
      { urls = { "stun:eu.acme.example" } },
    }, servers)
    assert.are.equal("acme", meta.provider)
    assert.are.equal(600, meta.ttl)
  end)

  it("wins over a built-in of the same name", function()
    tmp.file("static.lua", [[return { kind = "stun", get = function() return {} end }]])
    local broker = iceservers.new { providers = "static", providers_dir = tmp.dir }
    assert.are.equal("static", select(2, broker:get()).provider)
  end)
end)

describe("the provider chain", function()
  local tmp
  setup(function()
    tmp = fx.tmp()
    tmp.file("down.lua", [[return { get = function() return nil, "HTTP 503\nsecond line" end }]])
    tmp.file("boom.lua", [[return { get = function() error("kaboom") end }]])
    tmp.file("stunny.lua", [[return { get = function()
      return { { urls = "stun:only.example" } } end }]])
  end)
  teardown(function() tmp.cleanup() end)

  local function broker(chain, extra)
    local c = coturn_config { providers = chain, providers_dir = tmp.dir }
    for k, v in pairs(extra or {}) do c[k] = v end
    return iceservers.new(c)
  end

  it("serves from the next provider when the first fails, and says which", function()
    local servers, meta = assert(broker("down,coturn"):get("f"))
    assert.are.equal("coturn", meta.provider)
    assert.is_nil(meta.degraded)
    assert.are.equal(2, #servers)
  end)

  it("treats a raising provider and a STUN-only answer as failures", function()
    local lines, log = fx.recorder()
    local servers, meta = assert(broker("boom,stunny,down", { log = log }):get("g"))
    assert.is_true(meta.degraded)
    assert.are.equal("stun", meta.provider)
    assert.are.same({ { urls = { GOOGLE } } }, servers)
    assert.are.equal(3, #meta.errors)
    assert.matches("^boom: failed: .*kaboom", meta.errors[1])
    assert.matches("^stunny: no valid TURN server", meta.errors[2])
    assert.are.equal("down: HTTP 503", meta.errors[3])
    assert.are.equal(1, #lines)
    assert.matches("^warn: every provider failed", lines[1])
    assert.are.equal('{"iceServers":[{"urls":["' .. GOOGLE .. '"]}],"degraded":true}',
      iceservers.encode(servers, meta))
  end)

  it("warns when the fallback starts, then at most once a minute", function()
    local lines, log = fx.recorder()
    local clock = fx.clock()
    local b = broker("down", { log = log, now = clock.now })
    for _ = 1, 5 do
      assert(b:get())
      clock.t = clock.t + 10 -- past the backoff each time
    end
    assert.are.equal(1, #lines)
    clock.t = clock.t + 20
    assert(b:get())
    assert.are.equal(2, #lines)
    assert.matches("(4 more degraded answers since the last warning)", lines[2], 1, true)
  end)

  it("returns nil, err listing every failure with TURN_FALLBACK=none", function()
    local servers, err = broker("down,boom", { fallback = "none" }):get("h")
    assert.is_nil(servers)
    assert.matches("down: HTTP 503; boom: failed:", err, 1, true)
  end)

  it("puts stun in a chain as a non-degraded last resort", function()
    local _, meta = assert(broker("down,stun"):get())
    assert.are.equal("stun", meta.provider)
    assert.is_nil(meta.degraded)
  end)
end)

describe("iceservers.encode", function()
  local servers = {
    { urls = { GOOGLE } },
    { urls = { TURN[1], TURN[2] }, username = "1800003600:al", credential = "c/r+ed=" },
  }
  local meta = { provider = "coturn", ttl = 3600, expires = 1800003600 }

  it("writes the webrtc shape with ttl and expires", function()
    local doc = cjson.decode(iceservers.encode(servers, meta, "webrtc"))
    assert.are.same(servers, doc.iceServers)
    assert.are.equal(3600, doc.ttl)
    assert.are.equal(1800003600, doc.expires)
    assert.is_nil(doc.degraded)
  end)

  it("writes the TURN REST API draft shape, TURN URIs only", function()
    local doc = cjson.decode(iceservers.encode(servers, meta, "rest"))
    assert.are.same({ username = "1800003600:al", password = "c/r+ed=", ttl = 3600,
      uris = { TURN[1], TURN[2] } }, doc)
  end)

  it("refuses the rest format without a TURN entry, and raises on misuse", function()
    local json, err = iceservers.encode({ { urls = { GOOGLE } } }, { provider = "stun" }, "rest")
    assert.is_nil(json)
    assert.matches("no TURN server", err)
    assert.has_error(function() iceservers.encode(servers, meta, "xml") end)
    assert.has_error(function() iceservers.encode(nil, meta) end)
  end)
end)

describe("bad input", function()
  local tmp, clock
  setup(function()
    tmp = fx.tmp()
    clock = fx.clock()
    tmp.file("syntax.lua", "return {")
    tmp.file("noget.lua", "return { options = {} }")
    tmp.file("raises.lua", "error('load-time failure')")
    tmp.file("badtype.lua", "return { options = { x = { type = 'color' } }, get = print }")
    tmp.file("needs.lua", [[return { options = { api_key = { env = "ACME_API_KEY",
      required = true } }, get = function() return {} end }]])
    tmp.file("empty-secrets", "\n  \n")
    tmp.file("good-secrets", "a-secret\n")
    tmp.file("open-secrets", "a-secret\n", "644")
    tmp.file("group-secrets", "a-secret\n", "640")
  end)
  teardown(function() tmp.cleanup() end)

  local function cot(opts) return { providers = "coturn", coturn = opts } end
  local function with_urls(opts)
    opts.urls = opts.urls or TURN
    return cot(opts)
  end

  -- { description, config (table for new, or env = {...} for from_env), expected error }
  local config_errors = {
    { "an unknown provider", { providers = "nope" }, "unknown provider 'nope'" },
    { "a provider name with a slash", { providers = "../etc" }, "is not a name" },
    { "a provider twice", { providers = "stun,stun" }, "appears twice" },
    { "an unknown fallback", { fallback = "maybe" }, "fallback (TURN_FALLBACK)" },
    { "an http STUN URL", { stun_urls = { "http://x" } }, "stun_urls" },
    { "a TURN URL in stun_urls", { stun_urls = { "turn:x:3478" } }, "holds a TURN URL" },
    { "stun_urls of the wrong type", { stun_urls = 42 }, "stun_urls (STUN_URLS) must be" },
    { "a misspelt top-level key", { provider = "coturn" }, "unknown config key 'provider'" },
    { "a log that is not a function", { log = "stderr" }, "config.log must be a function" },
    { "coturn without URLs", cot { secret = "s" }, "needs option 'urls' (TURN_URLS)" },
    { "coturn without a secret", with_urls {}, "a TURN secret is needed" },
    { "a secret and a secrets file", with_urls { secret = "s", secret_file = "/x" }, "not both" },
    { "an empty secret", with_urls { secret = "" }, "secret is empty" },
    { "a TTL under 60 s", with_urls { secret = "s", ttl = 59 }, "outside 60 s .. 7 d" },
    { "a TTL over 7 d", with_urls { secret = "s", ttl = "8d" }, "outside 60 s .. 7 d" },
    { "a fractional TTL", with_urls { secret = "s", ttl = "1.5h" }, "whole number" },
    { "a TTL in milliseconds", with_urls { secret = "s", ttl = "86400ms" }, "whole number" },
    { "a boolean TTL", with_urls { secret = "s", ttl = true }, "must be a number or a string" },
    { "a STUN URL for coturn", cot { secret = "s", urls = { "stun:x" } }, "turn: or turns:" },
    { "turns with transport=udp", cot { secret = "s", urls = { "turns:x:5349?transport=udp" } },
      "transport=udp" },
    { "a port out of range", cot { secret = "s", urls = { "turn:x:99999" } }, "TURN_URLS" },
    { "a misspelt provider option", with_urls { secrte = "s" }, "has no option 'secrte'" },
    { "a missing secrets file", with_urls { secret_file = "/nonexistent/secrets" },
      "No such file" },
    { "an empty secrets file", "empty-secrets", "holds no secret" },
    { "a secrets file others can read", "open-secrets", "readable by group or others" },
    { "a secrets file the group can read", "group-secrets", "chmod 600 it" },
    { "static without a password", { providers = "static", static = { username = "u",
      urls = TURN } }, "needs option 'password' (TURN_PASSWORD)" },
    { "a provider file with a syntax error", { providers = "syntax" }, "cannot load" },
    { "a provider file without get", { providers = "noget" }, "get function" },
    { "a provider file that raises", { providers = "raises" }, "load-time failure" },
    { "a provider declaring an unknown type", { providers = "badtype" }, "unknown type 'color'" },
    { "a provider missing its required option", { env = { TURN_PROVIDER = "needs" } },
      "needs option 'api_key' (ACME_API_KEY)" },
    { "TURN_TTL in milliseconds", { env = { TURN_PROVIDER = "coturn", TURN_SECRET = "s",
      TURN_URLS = TURN[1], TURN_TTL = "86400000ms" } }, "TURN_TTL: TTL" },
    { "TURN_TTL that is 1000 days", { env = { TURN_PROVIDER = "coturn", TURN_SECRET = "s",
      TURN_URLS = TURN[1], TURN_TTL = "86400000" } }, "outside 60 s .. 7 d" },
    { "TURN_FALLBACK=off", { env = { TURN_FALLBACK = "off" } }, "TURN_FALLBACK" },
    { "STUN_URLS with an empty host", { env = { STUN_URLS = "stun:" } }, "stun_urls" },
    { "TURN_SECRET and TURN_SECRET_FILE", { env = { TURN_PROVIDER = "coturn",
      TURN_SECRET = "s", TURN_SECRET_FILE = "/x", TURN_URLS = TURN[1] } }, "not both" },
    { "TURN_PROVIDER with an unknown name in the chain", { env = { TURN_PROVIDER = "coturn,xx",
      TURN_SECRET = "s", TURN_URLS = TURN[1] } }, "unknown provider 'xx'" },
    -- under 30 s the safety margin would leave nothing cached
    { "ICESERVERS_CACHE_TTL of 30 s", { env = { ICESERVERS_CACHE_TTL = "30" } },
      "cache_ttl (ICESERVERS_CACHE_TTL): TTL 30 is outside 60 s .. 7 d" },
    { "ICESERVERS_CACHE_TTL of 59 s", { env = { ICESERVERS_CACHE_TTL = "59" } },
      "outside 60 s .. 7 d" },
    { "ICESERVERS_CACHE_TTL of 8 d", { env = { ICESERVERS_CACHE_TTL = "8d" } },
      "outside 60 s .. 7 d" },
    { "ICESERVERS_CACHE_TTL in milliseconds", { env = { ICESERVERS_CACHE_TTL = "3600ms" } },
      "ICESERVERS_CACHE_TTL" },
    { "a negative cache_ttl", { cache_ttl = -1 }, "outside 60 s .. 7 d" },
    { "a fractional cache_ttl", { cache_ttl = 90.5 }, "whole number" },
    { "a cache_ttl of 1 s", { cache_ttl = 1 }, "cache_ttl (ICESERVERS_CACHE_TTL)" },
    -- an http:// base URL of a built-in REST provider, without the test flag
    { "an http:// TURN_API_URL", { env = { TURN_PROVIDER = "metered", TURN_API_KEY = "k",
      TURN_API_URL = "http://metered.example" } }, "TURN_API_URL must be an https://" },
    { "an http:// TWILIO_API_URL", { env = { TURN_PROVIDER = "twilio",
      TWILIO_ACCOUNT_SID = "AC00", TWILIO_AUTH_TOKEN = "t",
      TWILIO_API_URL = "http://twilio.example" } }, "TWILIO_API_URL must be an https://" },
    { "an http:// CLOUDFLARE_API_URL", { env = { TURN_PROVIDER = "cloudflare",
      CLOUDFLARE_TURN_KEY_ID = "id", CLOUDFLARE_TURN_KEY_API_TOKEN = "t",
      CLOUDFLARE_API_URL = "http://cf.example" } }, "CLOUDFLARE_API_URL must be an https://" },
    { "an http:// xirsys api_url in config", { providers = "xirsys", xirsys = { ident = "i",
      secret = "s", channel = "c", api_url = "HTTP://x.example" } },
      "XIRSYS_API_URL must be an https://" },
    { "an http:// base URL with ICESERVERS_ALLOW_HTTP=0", { env = { TURN_PROVIDER = "metered",
      TURN_API_KEY = "k", TURN_API_URL = "http://metered.example", ICESERVERS_ALLOW_HTTP = "0" } },
      "ICESERVERS_ALLOW_HTTP=1" },
    { "ICESERVERS_ALLOW_HTTP=maybe", { env = { ICESERVERS_ALLOW_HTTP = "maybe" } },
      "allow_http (ICESERVERS_ALLOW_HTTP) must be a boolean" },
    { "allow_http that is a number in config", { allow_http = 1 },
      "allow_http (ICESERVERS_ALLOW_HTTP) must be a boolean" },
  }

  for _, case in ipairs(config_errors) do
    it("raises a config error for " .. case[1], function()
      local config = case[2]
      if type(config) == "string" then -- a file made in setup
        config = with_urls { secret_file = tmp.dir .. "/" .. config }
      end
      local err = error_of(function()
        if config.env then
          config.env.ICESERVERS_PROVIDERS_DIR = tmp.dir
          return iceservers.from_env(config.env)
        end
        config.providers_dir = tmp.dir
        config.now = clock.now
        return iceservers.new(config)
      end)
      assert.truthy(err:find(case[3], 1, true), ("expected %q in %q"):format(case[3], err))
      assert.is_nil(err:find("\n"), "one line: " .. err)
      assert.is_nil(err:find("s3cret", 1, true))
    end)
  end

  it("accepts a group-readable secrets file with ICESERVERS_ALLOW_INSECURE_SECRET_FILE=1",
    function()
      local broker = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_URLS = TURN[1],
        TURN_SECRET_FILE = tmp.dir .. "/open-secrets",
        ICESERVERS_ALLOW_INSECURE_SECRET_FILE = "1" })
      assert.truthy(broker:get("x"))
    end)

  it("takes ICESERVERS_CACHE_TTL as TURN_TTL is taken: seconds or with a suffix", function()
    local answer = [[ [{"urls":"turn:m.example:3478","username":"u","credential":"c"}] ]]
    local function http() return { status = 200, headers = {}, body = answer } end
    for value, want in pairs { ["2h"] = 7200, ["60"] = 60, [" 90m "] = 5400, ["7d"] = 604800 } do
      local b = iceservers.from_env({ TURN_PROVIDER = "metered", TURN_API_KEY = "k",
        TURN_API_URL = "https://m.example", ICESERVERS_CACHE_TTL = value },
        { http = http, now = clock.now, log = function() end })
      assert.are.equal(want, select(2, assert(b:get())).ttl)
    end
    local b = iceservers.new { providers = "metered", cache_ttl = "1h", http = http,
      now = clock.now, metered = { api_url = "https://m.example", api_key = "k" } }
    assert.are.equal(3600, select(2, assert(b:get())).ttl)
  end)

  it("accepts an http:// provider base URL with ICESERVERS_ALLOW_HTTP=1 or allow_http",
    function()
      local seen
      local function http(req)
        seen = req.url
        return { status = 200, headers = {}, body = "[]" }
      end
      iceservers.from_env({ TURN_PROVIDER = "metered", TURN_API_KEY = "k",
        TURN_API_URL = "http://m.example", ICESERVERS_ALLOW_HTTP = "1" },
        { http = http, log = function() end }):get()
      assert.matches("^http://m%.example/api/v1/turn/credentials%?", seen)
      iceservers.new { providers = "cloudflare", allow_http = true, http = http,
        log = function() end,
        cloudflare = { key_id = "id", api_token = "t", api_url = "http://cf.example" } }:get()
      assert.matches("^http://cf%.example/v1/turn/keys/id/", seen)
    end)

  it("lets a drop-in provider call http:// URLs itself without the flag", function()
    tmp.file("plain.lua", [[return { get = function(ctx)
      local res = ctx.http { url = "http://plain.example/ice" }
      return ctx.json.decode(res.body), 600 end }]])
    local seen
    local b = iceservers.new { providers = "plain", providers_dir = tmp.dir,
      http = function(req)
        seen = req.url
        return { status = 200, headers = {}, body =
          [[ [{"urls":"turn:p.example","username":"u","credential":"c"}] ]] }
      end }
    assert.are.equal("plain", select(2, assert(b:get())).provider)
    assert.are.equal("http://plain.example/ice", seen)
  end)

  it("raises on a non-table config and a bad env argument", function()
    assert.has_error(function() iceservers.new("coturn") end)
    assert.has_error(function() iceservers.from_env(42) end)
    assert.has_error(function() iceservers.from_env({ TURN_PROVIDER = 7 }) end)
  end)

  local bad_users = {
    { "", "1 to 256 bytes" },
    { string.rep("u", 257), "1 to 256 bytes" },
    { "a\nb", "control characters" },
    { "a\0b", "control characters" },
    { "tab\there", "control characters" },
    { "del\127", "control characters" },
    { 42, "must be a string" },
    { {}, "must be a string" },
    { false, "must be a string" },
    -- invalid UTF-8 would be copied into the JSON answer
    { "\128", "not valid UTF-8" },                -- a lone continuation byte
    { "caf\195", "not valid UTF-8" },             -- cut in the middle of a character
    { "\195(", "not valid UTF-8" },               -- a lead byte without its continuation
    { "\192\175", "not valid UTF-8" },            -- overlong "/"
    { "\193\191", "not valid UTF-8" },            -- overlong
    { "\224\128\175", "not valid UTF-8" },        -- overlong "/" in 3 bytes
    { "\240\128\128\175", "not valid UTF-8" },    -- overlong "/" in 4 bytes
    { "\237\160\128", "not valid UTF-8" },        -- U+D800, a surrogate
    { "\237\191\191", "not valid UTF-8" },        -- U+DFFF
    { "\244\144\128\128", "not valid UTF-8" },    -- U+110000
    { "\245\128\128\128", "not valid UTF-8" },
    { "\248\136\128\128\128", "not valid UTF-8" }, -- a 5-byte form
    { "ok\255", "not valid UTF-8" },
    { "\254\255", "not valid UTF-8" },
  }
  local broker = iceservers.new(coturn_config())
  for _, case in ipairs(bad_users) do
    it(("returns nil, err for the user %q"):format(tostring(case[1])), function()
      local servers, err = broker:get(case[1])
      assert.is_nil(servers)
      assert.matches(case[2], err, 1, true)
    end)
  end

  it("returns the same nil, err from json for a user that is not UTF-8", function()
    for _, format in ipairs { "webrtc", "rest" } do
      local json, err, where = broker:json("\237\160\128", format)
      assert.is_nil(json)
      assert.are.equal("invalid user: not valid UTF-8", err)
      assert.are.equal("get", where)
    end
  end)

  it("accepts users in UTF-8, up to U+10FFFF", function()
    for _, user in ipairs { "caf\195\169", "\230\151\165\230\156\172", "\240\159\146\169",
        "\194\128", "\223\191", "\224\160\128", "\237\159\191", "\238\128\128",
        "\239\191\191", "\240\144\128\128", "\244\143\191\191", "a\195\169b\240\159\146\169c" } do
      local servers = assert(broker:get(user))
      assert.are.equal(user, servers[2].username:match("^%d+:(.*)$"))
      assert.truthy(broker:json(user))
    end
  end)

  it("accepts a 256-byte user and a Matrix id with colons", function()
    assert.truthy(broker:get(string.rep("u", 256)))
    local servers = assert(broker:get("@alice:matrix.example"))
    assert.matches("^%d+:@alice:matrix%.example$", servers[2].username)
  end)
end)

describe("examples/providers/draft_endpoint.lua", function()
  it("works as documented, through an injected transport", function()
    local seen
    local function http(req)
      seen = req
      return { status = 200, headers = {}, body = [[{"username":"1800000600:zoe",
        "password":"pw","ttl":600,"uris":["turn:t.example:3478?transport=udp","bogus"]}]] }
    end
    local broker = iceservers.from_env({
      TURN_PROVIDER = "draft_endpoint", ICESERVERS_PROVIDERS_DIR = "examples/providers",
      DRAFT_ENDPOINT_URL = "https://auth.example/turn", DRAFT_ENDPOINT_KEY = "k&y",
      STUN_URLS = "",
    }, { http = http, log = function() end })
    local servers, meta = assert(broker:get("zoe"))
    assert.are.equal("https://auth.example/turn?service=turn&username=zoe&key=k%26y", seen.url)
    assert.are.same({ { urls = { "turn:t.example:3478?transport=udp" },
      username = "1800000600:zoe", credential = "pw" } }, servers)
    assert.are.equal(600, meta.ttl)
  end)
end)

describe("a provider's check_user hook", function()
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- refuses users starting with "x", and counts its calls (in a global the
    -- spec reads); its get would serve anyone.
    tmp.file("picky.lua", [[
      return {
        options = { prefix = { default = "x" } },
        check_user = function(user, opts)
          _G.picky_seen = { user = user, prefix = opts.prefix }
          if user:sub(1, #opts.prefix) == opts.prefix then
            return nil, "starts with " .. opts.prefix
          end
          return true
        end,
        get = function(_, user)
          _G.picky_gets = (_G.picky_gets or 0) + 1
          return { { urls = "turn:picky.example:3478", username = user or "anon",
                     credential = "pw" } }, 600
        end,
      }]])
    tmp.file("raisy.lua", [[
      return { check_user = function() error("hook bug") end,
               get = function() return { { urls = "turn:r.example", username = "u",
                 credential = "p" } }, 600 end }]])
    tmp.file("notfn.lua", [[return { check_user = true, get = function() end }]])
  end)
  teardown(function() tmp.cleanup() end)
  before_each(function() _G.picky_seen, _G.picky_gets = nil, nil end)

  local function build(chain, extra)
    local events = {}
    local c = coturn_config { providers = chain, providers_dir = tmp.dir,
      on_event = function(kind, name) events[#events + 1] = kind .. ":" .. name end }
    for k, v in pairs(extra or {}) do c[k] = v end
    return iceservers.new(c), events
  end

  it("refuses a user in get and json as invalid, without asking or failing a provider",
    function()
      for _, chain in ipairs { "picky", "picky,coturn", "coturn,picky", "stun,picky" } do
        _G.picky_seen, _G.picky_gets = nil, nil
        local b, events = build(chain)
        local servers, err = b:get("xavier")
        assert.is_nil(servers)
        assert.are.equal("invalid user: starts with x", err)
        for _, format in ipairs { "webrtc", "rest" } do
          local json, jerr, where = b:json("xavier", format)
          assert.is_nil(json)
          assert.are.equal("invalid user: starts with x", jerr)
          assert.are.equal("get", where)
        end
        assert.is_nil(_G.picky_gets)
        assert.are.same({}, events) -- no failure, no degraded answer
        assert.are.same({ user = "xavier", prefix = "x" }, _G.picky_seen)
        -- and no backoff: the next user is served by the chain's first provider
        local ok, meta = assert(b:get("yvonne"))
        assert.truthy(ok)
        assert.are.equal(chain:match("^[^,]+"), meta.provider)
        assert.truthy(b:json("yvonne"))
      end
    end)

  it("is asked in coturn's own JSON path too, with the provider's opts", function()
    local b = build("coturn,picky", { picky = { prefix = "zz" } })
    assert.are.equal("invalid user: starts with zz", select(2, b:json("zzz")))
    assert.truthy(b:json("zed"))
    assert.are.same({ user = "zed", prefix = "zz" }, _G.picky_seen)
  end)

  it("is not asked without a user, nor for a user the broker refused", function()
    local b = build("picky")
    assert.truthy(b:get())
    assert.truthy(b:json())
    assert.matches("^invalid user: control", select(2, b:get("x\n")))
    assert.is_nil(_G.picky_seen)
  end)

  it("that raises is an error of that provider, not an invalid user, nor a raise", function()
    local b = build("raisy,coturn")
    local servers, err = b:get("anyone")
    assert.is_nil(servers)
    assert.matches("^raisy: check_user failed: .*hook bug", err)
    local json, jerr = b:json("anyone")
    assert.is_nil(json)
    assert.matches("^raisy: check_user failed", jerr)
  end)

  it("must be a function", function()
    local err = error_of(function() build("notfn") end)
    assert.matches("check_user must be a function", err)
  end)
end)

describe("the lifetime a provider reports", function()
  local T = 1800000000
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- answers what _G.life says: {ttl =, expires =}
    local body = [[
        get = function()
          _G.life_calls = (_G.life_calls or 0) + 1
          return { { urls = "turn:life.example:3478", username = "u", credential = "c" } },
            _G.life.ttl, _G.life.expires
        end,
      }]]
    tmp.file("life.lua", "return {" .. body)
    tmp.file("asking.lua", [[return { options = { ttl = { type = "ttl", default = 3600 } },]]
      .. body)
    tmp.file("sharedlife.lua", "return { shared = true," .. body)
    tmp.file("stunlife.lua", [[return { kind = "stun", get = function()
      return { { urls = "stun:s.example" } }, -5 end }]])
  end)
  teardown(function() tmp.cleanup() end)
  before_each(function() _G.life, _G.life_calls = nil, nil end)

  local function build(chain, extra)
    local clock = fx.clock(T)
    local c = { providers = chain, providers_dir = tmp.dir, fallback = "none", stun_urls = {},
      now = clock.now, log = function() end,
      coturn = { secret = "s3cret-value", urls = TURN, ttl = 3600 } }
    for k, v in pairs(extra or {}) do c[k] = v end
    return iceservers.new(c), clock
  end

  -- get and both json formats: the ttl and expires they report; or the error.
  local function outcome(b)
    local servers, meta = b:get("u")
    local ok, json, jerr = pcall(b.json, b, "u")
    assert(ok, "json raised: " .. tostring(json))
    local ok2, rest = pcall(b.json, b, "u", "rest")
    assert(ok2, "json rest raised: " .. tostring(rest))
    if not servers then
      assert.is_nil(json)
      assert.are.equal(meta:gsub(" %(not retried.*", ""), jerr:gsub(" %(not retried.*", ""))
      return nil, meta
    end
    local doc = cjson.decode(json)
    assert.are.equal(meta.ttl, doc.ttl)
    assert.are.equal(meta.expires, doc.expires)
    assert.are.equal(meta.ttl, cjson.decode(rest).ttl)
    assert.matches('"ttl":' .. meta.ttl .. ',', json, 1, true)
    return meta.ttl, meta.expires
  end

  local WEEK = 7 * 86400
  local good = {
    { { ttl = 600 }, 600 },
    { { ttl = "600" }, 600 },
    { { ttl = 60 }, 60 },
    { { ttl = WEEK + 1 }, WEEK },
    { { ttl = 1e300 }, WEEK },     -- json raised on Lua 5.4; LuaJIT wrote -2^63
    { { ttl = 2 ^ 63 }, WEEK },
    { { expires = T + 600 }, 600 },
    { { expires = T + WEEK }, WEEK },
    { { ttl = 600, expires = T + 900 }, 900 }, -- expires is what the answer ends at
  }
  for _, case in ipairs(good) do
    it(("takes ttl %s, expires %s as %d s"):format(tostring(case[1].ttl),
      tostring(case[1].expires), case[2]), function()
      _G.life = case[1]
      local ttl, expires = outcome(build("life"))
      assert.are.equal(case[2], ttl)
      assert.are.equal(T + case[2], expires)
    end)
  end

  local bad = {
    { { ttl = math.huge }, "TTL inf is not a finite number of seconds" },
    { { ttl = -math.huge }, "is not a finite number" },
    { { ttl = 0 / 0 }, "is not a finite number" },
    { { ttl = 0 }, "TTL 0 is under the 60 s floor" },
    { { ttl = -1 }, "TTL -1 is under the 60 s floor" },
    { { ttl = -1e300 }, "under the 60 s floor" },
    { { ttl = 59 }, "TTL 59 is under the 60 s floor" },
    { { ttl = 59.5 }, "under the 60 s floor" },
    { { ttl = "soon" }, "TTL is not a number (a string)" },
    { { ttl = {} }, "TTL is not a number (a table)" },
    { { expires = T - 1 }, "expires 1799999999 is in the past" },
    { { expires = T }, "is in the past" },
    { { expires = T + 30 }, "expires 1800000030 is 30 s ahead, under the 60 s floor" },
    { { expires = T * 1000 }, "is more than 7 d ahead (in milliseconds?)" },
    { { expires = T + 8 * 86400 }, "expires 1800691200 is more than 7 d ahead" },
    { { expires = math.huge }, "expires inf is not a finite Unix time" },
    { { expires = 0 / 0 }, "is not a finite Unix time" },
    { { expires = "later" }, "expires is not a number (a string)" },
    { { ttl = 600, expires = T - 5 }, "in the past" },
    { { ttl = 1, expires = T + 600 }, "under the 60 s floor" },
  }
  for _, case in ipairs(bad) do
    it(("fails the provider for ttl %s, expires %s"):format(tostring(case[1].ttl),
      tostring(case[1].expires)), function()
      _G.life = case[1]
      local ttl, err = outcome(build("life"))
      assert.is_nil(ttl)
      assert.are.equal("every provider failed: life: ", err:sub(1, 29))
      assert.truthy(err:find(case[2], 30, true), err)
    end)
  end

  it("is a failure with backoff, and the chain goes on (never an expired credential)",
    function()
      _G.life = { ttl = -5 }
      local events = {}
      local b = build("life,coturn", { on_event = function(kind, name)
        events[#events + 1] = kind .. ":" .. name end })
      local _, meta = assert(b:get("u"))
      assert.are.equal("coturn", meta.provider)
      assert.are.equal(3600, meta.ttl)
      assert.are.same({ "failure:life" }, events)
      assert(b:json("u"))
      assert.are.equal(1, _G.life_calls, "backed off")
    end)

  it("does not matter in a STUN-only answer, which reports none", function()
    local servers, meta = assert(build("stunlife"):get())
    assert.are.same({ { urls = { "stun:s.example" } } }, servers)
    assert.are.same({ provider = "stunlife" }, meta)
  end)

  it("is cut to the lifetime the provider was asked for", function()
    for _, case in ipairs {
      { { ttl = 86400 }, nil, 3600 },
      { { ttl = 1e300 }, nil, 3600 },
      { { expires = T + 86400 }, nil, 3600 },
      { { ttl = 1e300 }, { ttl = "2h" }, 7200 },
      { { ttl = 600 }, { ttl = "2h" }, 600 },
    } do
      _G.life = case[1]
      local ttl, expires = outcome(build("asking", { asking = case[2] }))
      assert.are.equal(case[3], ttl)
      assert.are.equal(T + case[3], expires)
    end
  end)

  it("of a shared provider: a huge one is cached for 7 d at most, a negative one not at all",
    function()
      _G.life = { ttl = 1e300 }
      local b, clock = build("sharedlife")
      assert.are.equal(WEEK, (outcome(b)))
      clock.t = T + WEEK / 2 + 1 -- past half the (cut) lifetime: refreshed
      assert.are.equal(WEEK, (outcome(b)))
      assert.are.equal(2, _G.life_calls)
      _G.life, _G.life_calls = { ttl = -5 }, nil
      b, clock = build("sharedlife")
      assert.matches("under the 60 s floor", select(2, outcome(b)))
      clock.t = T + 0.5
      outcome(b)
      assert.are.equal(1, _G.life_calls, "backed off, not asked on every request")
    end)

  it("of twilio: the answer's ttl is cut to TURN_TTL and its 24 h maximum", function()
    local function twilio(answer_ttl, env_ttl)
      local body = cjson.encode { ttl = answer_ttl, ice_servers = {
        { urls = "turn:global.turn.twilio.com:3478", username = "u", credential = "c" } } }
      return iceservers.from_env({ TURN_PROVIDER = "twilio", TWILIO_ACCOUNT_SID = "AC00",
        TWILIO_AUTH_TOKEN = "tok", TURN_TTL = env_ttl, TURN_FALLBACK = "none" },
        { now = function() return T end, log = function() end,
          http = function() return { status = 201, headers = {}, body = body } end })
    end
    assert.are.equal(3600, (outcome(twilio("86400", "1h"))))
    assert.are.equal(3600, (outcome(twilio("1e300", "1h"))))
    assert.are.equal(86400, (outcome(twilio("172800", "7d"))))
    assert.are.equal(600, (outcome(twilio("600", "1h"))))
    assert.matches("twilio: TTL %-5 is under the 60 s floor", select(2, outcome(twilio("-5"))))
    assert.matches("twilio: TTL 30 is under the 60 s floor", select(2, outcome(twilio("30"))))
  end)
end)

describe("entries a provider's answer loses in normalization", function()
  local T = 1800000000
  local SECRET = "SLOPPY-SECRET-4711"
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- answers _G.sloppy, a list as a provider could write it
    tmp.file("sloppy.lua", [[return {
      options = { key = { secret = true, default = "]] .. SECRET .. [[" } },
      get = function() return _G.sloppy, 600 end }]])
  end)
  teardown(function() tmp.cleanup() end)

  local GOOD = { urls = "turn:good.example:3478", username = "good-user", credential = "pw-XYZ" }
  local BAD = {
    { urls = "http://bad.example" },
    { urls = "turn:h.example?transport=" .. SECRET, username = "user-1", credential = "pw-XYZ" },
    { urls = "turn:nocred.example" },
  }

  local function build()
    local lines, log = fx.recorder()
    local clock = fx.clock(T)
    local b = iceservers.new { providers = "sloppy", providers_dir = tmp.dir, stun_urls = {},
      fallback = "none", now = clock.now, log = log }
    return b, lines, clock
  end

  local function dropped(lines)
    local out = {}
    for _, l in ipairs(lines) do
      if l:find("dropped", 1, true) then out[#out + 1] = l end
      assert.is_nil(l:find(SECRET, 1, true), l)
      assert.is_nil(l:find("pw-XYZ", 1, true), l)
    end
    return out
  end

  it("are logged at info with the reason, once per reason a minute", function()
    _G.sloppy = { BAD[1], GOOD, BAD[2], BAD[3] }
    local b, lines, clock = build()
    assert(b:get("u"))
    local got = dropped(lines)
    assert.are.equal(3, #got)
    assert.are.equal('info: sloppy: dropped from the answer: entry 1: invalid URL '
      .. '"http://bad.example": unsupported scheme "http"', got[1])
    assert.matches('^info: sloppy: dropped from the answer: entry 3: invalid URL .*%[redacted%]',
      got[2])
    assert.matches("^info: sloppy: dropped from the answer: entry 4: TURN URL "
      .. '"turn:nocred.example": dropped: username missing', got[3])
    assert(b:json("u"))
    clock.t = T + 59
    assert(b:get("u"))
    assert.are.equal(3, #dropped(lines), "not again within the minute")
    _G.sloppy = { BAD[1], GOOD, { urls = 7 } } -- a new reason is logged at once
    assert(b:get("u"))
    assert.are.equal(4, #dropped(lines))
    assert.matches("entry 3: urls is not a string or a list %(number%)$", dropped(lines)[4])
    clock.t = T + 61
    assert(b:get("u"))
    assert.are.equal(5, #dropped(lines), "the first reason again, a minute later")
  end)

  it("are counted in the error when nothing valid is left", function()
    _G.sloppy = BAD
    local b, lines = build()
    local servers, err = b:get("u")
    assert.is_nil(servers)
    assert.are.equal('every provider failed: sloppy: no valid TURN server in the answer '
      .. '(3 dropped: entry 1: invalid URL "http://bad.example": unsupported scheme "http"; ...)',
      err)
    assert.are.equal(3, #dropped(lines))
    _G.sloppy = { BAD[3] }
    b = build()
    assert.are.equal('every provider failed: sloppy: no valid TURN server in the answer '
      .. '(1 dropped: entry 1: TURN URL "turn:nocred.example": dropped: username missing)',
      select(2, b:json("u")))
    _G.sloppy = "not a list"
    b = build()
    assert.matches("no valid TURN server in the answer %(1 dropped: answer is not a list%)$",
      select(2, b:get("u")))
    _G.sloppy = {} -- nothing dropped: nothing to count
    b = build()
    assert.matches("no valid TURN server in the answer$", select(2, b:get("u")))
  end)
end)

describe("SSLKEYLOGFILE", function()
  local sh = require "support.sh"
  local interp = jit and "luajit" or "lua5.4"
  local build = os.getenv("ICESERVERS_BUILD") or ("build/" .. _VERSION:match("%d+%.%d+"))

  -- The log lines of a script that asks a REST provider (on a port nobody
  -- listens on) twice, with the environment prefix env.
  local function lines_of(env, http)
    local script = ([[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = %q .. "/?.so;" .. package.cpath
      local b = require("iceservers").new { providers = "metered", fallback = "none",
        http = %s, log = function(level, msg) print(level .. ": " .. msg) end,
        metered = { api_url = "https://127.0.0.1:%d", api_key = "k" },
        http_timeout = 2, connect_timeout = 2 }
      b:get(); b:get()
    ]]):format(build, http or "nil", sh.free_port())
    local ok, out = sh.run(env .. " " .. interp .. " -e " .. sh.quote(script))
    assert(ok, out)
    local warned = {}
    for line in out:gmatch("[^\n]+") do
      if line:find("SSLKEYLOGFILE", 1, true) then warned[#warned + 1] = line end
    end
    return warned
  end

  it("set while the libcurl transport is in use is warned about, once", function()
    local warned = lines_of("SSLKEYLOGFILE=/tmp/iceservers-keylog-spec-unused")
    assert.are.equal(1, #warned)
    assert.matches("^warn: SSLKEYLOGFILE is set: ", warned[1])
    assert.is_nil(warned[1]:find("/tmp/", 1, true), "the path is not logged")
  end)

  it("is not warned about when unset, or with another transport", function()
    assert.are.same({}, lines_of("env -u SSLKEYLOGFILE"))
    assert.are.same({}, lines_of("SSLKEYLOGFILE=/tmp/x",
      "function() return nil, 'no network here' end"))
  end)
end)

describe("a provider's one TURN entry (what coturn and static answer)", function()
  local normalize = require "iceservers.normalize"
  local URLS = normalize.turn_urls({ "turn:one.example:3478" }, "TURN_URLS")
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- _G.one_entry(user) makes each answer: an entry built per call, as coturn's
    tmp.file("single.lua",
      [[return { get = function(_, user) return _G.one_entry(user), 600 end }]])
    tmp.file("single_shared.lua",
      [[return { shared = true, get = function() return _G.one_entry(), 600 end }]])
  end)
  teardown(function()
    tmp.cleanup()
    _G.one_entry = nil
  end)

  it("is read, never kept: its other keys reach no answer, and it is collectable", function()
    local made = setmetatable({}, { __mode = "k" })
    _G.one_entry = function(user)
      local e = { urls = URLS, username = user, credential = "pw-" .. user, note = "not ICE" }
      made[e] = true
      return e
    end
    local b = iceservers.new { providers = "single", providers_dir = tmp.dir, stun_urls = {},
      fallback = "none" }
    local servers = assert(b:get("alice"))
    assert.are.same({ { urls = { "turn:one.example:3478" }, username = "alice",
      credential = "pw-alice" } }, servers)
    assert.are_not.equal(URLS, servers[1].urls) -- get's tables are the caller's
    local json = assert(b:json("bob"))
    assert.are.same({ iceServers = { { urls = { "turn:one.example:3478" }, username = "bob",
      credential = "pw-bob" } }, ttl = 600 }, (function()
        local t = cjson.decode(json)
        t.expires = nil
        return t
      end)())
    assert.is_nil(json:find("not ICE", 1, true))
    local rest = cjson.decode((assert(b:json("carol", "rest"))))
    assert.are.same({ "turn:one.example:3478" }, rest.uris)
    assert.are.equal("carol", rest.username)
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(made), "the broker kept a provider's entry")
  end)

  it("of a shared provider is cached as a list of its three fields, not as the table", function()
    local given
    _G.one_entry = function()
      given = { urls = URLS, username = "shared-u", credential = "shared-p", note = "not ICE" }
      return given
    end
    local store = {}
    local cache = { get = function(_, k) return store[k] end,
      set = function(_, k, v) store[k] = v end }
    local b = iceservers.new { providers = "single_shared", providers_dir = tmp.dir,
      stun_urls = {}, fallback = "none", cache = cache }
    assert(b:get())
    local lists = 0
    for _, v in pairs(store) do
      if type(v) == "table" and v.list then
        lists = lists + 1
        assert.are.same({ { urls = URLS, username = "shared-u", credential = "shared-p" } },
          v.list)
        assert.are_not.equal(given, v.list[1])
      end
    end
    assert.are.equal(1, lists)
    given.username = "changed" -- the provider's table, not the cache's
    local servers = assert(b:get())
    assert.are.equal("shared-u", servers[1].username)
  end)
end)
