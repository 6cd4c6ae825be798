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

local function error_of(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(err)
end

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
    { "stun_urls of the wrong type", { stun_urls = 42 }, "stun_urls must be" },
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
  }
  local broker = iceservers.new(coturn_config())
  for _, case in ipairs(bad_users) do
    it(("returns nil, err for the user %q"):format(tostring(case[1])), function()
      local servers, err = broker:get(case[1])
      assert.is_nil(servers)
      assert.matches(case[2], err, 1, true)
    end)
  end

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
