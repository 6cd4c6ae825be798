-- The cache of shared provider answers: early refresh, the safety margin,
-- stale-if-error, backoff with Retry-After, and redaction; all on an injected
-- clock and an injected transport, so nothing sleeps.
local iceservers = require "iceservers"
local fx = require "support.fixtures"

local SECRET = "FAKE-KEY-0123456789"
local ANSWER = [=[[{"urls":"turn:fake.example:3478","username":"u1","credential":"c1"}]]=]

describe("a shared provider behind the cache", function()
  local tmp, clock, calls, responses, lines, all_lines, broker

  setup(function()
    tmp = fx.tmp()
    tmp.file("fake.lua", [[
      local rest = require "iceservers.rest"
      return {
        shared = true,
        options = { key = { env = "FAKE_KEY", required = true, secret = true },
                    ttl = { env = "TURN_TTL", type = "ttl", default = 600 } },
        get = function(ctx, _, opts)
          local doc, err, wait = rest.json_call(ctx, { url = "https://fake.example/ice?key="
            .. opts.key }, { [200] = true }, function(d) return d.message end)
          if not doc then return nil, err, wait end
          return doc, opts.ttl
        end,
      }]])
    tmp.file("down.lua", [[return { shared = true,
      get = function() return nil, "HTTP 503" end }]])
  end)
  teardown(function() tmp.cleanup() end)

  local function http(req)
    calls[#calls + 1] = req
    local r = table.remove(responses, 1) or { status = 200, body = ANSWER }
    if r.error then return nil, r.error end
    r.headers = r.headers or {}
    return r
  end

  local function build(env)
    clock, calls, responses = fx.clock(1800000000), {}, {}
    lines, all_lines = {}, {}
    local function log(level, msg) -- lines: warnings only, what the default logger shows
      all_lines[#all_lines + 1] = level .. ": " .. msg
      if level == "warn" or level == "error" then lines[#lines + 1] = level .. ": " .. msg end
    end
    local vars = { TURN_PROVIDER = "fake", FAKE_KEY = SECRET, STUN_URLS = "",
      ICESERVERS_PROVIDERS_DIR = tmp.dir }
    for k, v in pairs(env or {}) do vars[k] = v end
    broker = iceservers.from_env(vars, { now = clock.now, http = http, log = log })
  end

  it("calls upstream once within the window, with the shared HTTP defaults", function()
    build { ICESERVERS_HTTP_TIMEOUT = "2.5", ICESERVERS_CA_FILE = "/etc/extra-ca.pem",
      ICESERVERS_RESOLVE = "fake.example:443:127.0.0.1" }
    local s1, m1 = assert(broker:get("a"))
    local s2, m2 = assert(broker:get("b"))
    assert.are.equal(1, #calls)
    assert.are.same(s1, s2)
    assert.are.equal(600, m1.ttl)
    assert.are.equal(1800000600, m1.expires)
    assert.are.same(m1, m2)
    assert.are.equal(2.5, calls[1].timeout)
    assert.are.equal(2, calls[1].connect_timeout)
    assert.are.equal("/etc/extra-ca.pem", calls[1].cafile)
    assert.are.same({ ["fake.example:443"] = "127.0.0.1" }, calls[1].resolve)
  end)

  it("reports the time left as ttl, and refreshes after half the lifetime", function()
    build()
    assert(broker:get())
    clock.t = clock.t + 299
    local _, meta = assert(broker:get())
    assert.are.equal(1, #calls)
    assert.are.equal(301, meta.ttl)
    clock.t = clock.t + 2 -- 301 s in: past half-life
    _, meta = assert(broker:get())
    assert.are.equal(2, #calls)
    assert.are.equal(600, meta.ttl)
    assert.are.equal(clock.t + 600, meta.expires)
  end)

  it("serves the cached answer while a refresh fails, logged once, until the margin", function()
    build()
    assert(broker:get())
    clock.t = clock.t + 301
    responses = { { status = 500, body = "{}" } }
    local servers, meta = assert(broker:get())
    assert.is_true(meta.stale)
    assert.are.equal(299, meta.ttl)
    assert.are.equal("u1", servers[1].username)
    assert.are.equal(1, #lines)
    assert.matches("^warn: fake: refresh failed, serving cached credentials: HTTP 500", lines[1])
    -- margin for a 600 s lifetime is 60 s: usable until 540 s in
    responses = { { status = 500, body = "{}" }, { status = 500, body = "{}" } }
    clock.t = clock.t + 238 -- 539 s in; past the 1 s backoff
    servers, meta = assert(broker:get())
    assert.is_true(meta.stale)
    assert.are.equal("u1", servers[1].username)
    assert.are.equal(1, #lines, "the stale answer is logged once")
    clock.t = clock.t + 2 -- 541 s in: inside the margin
    local _, m = broker:get()
    assert.is_true(m.degraded)
    assert.matches("^fake: HTTP 500", m.errors[1])
  end)

  it("never hands out an answer with less than 30 s left, whatever the lifetime", function()
    build { TURN_TTL = "60" }
    assert(broker:get())
    clock.t = clock.t + 31 -- past half-life: refresh, which fails
    responses = { { error = "GET https://fake.example/...: timed out after 2000 ms" } }
    local _, meta = broker:get()
    assert.is_true(meta.degraded, "60 s lifetime, 30 s margin: nothing usable at 31 s")
  end)

  it("backs off exponentially from 1 s, and a success resets it", function()
    build()
    responses = { { status = 502, body = "x" } }
    local _, meta = broker:get()
    assert.is_true(meta.degraded)
    assert.are.equal(1, #calls)
    clock.t = clock.t + 0.5
    _, meta = broker:get()
    assert.are.equal(1, #calls, "not called again within 1 s")
    assert.matches("not retried for 1 s", meta.errors[1], 1, true)
    responses = { { status = 502, body = "x" } }
    clock.t = clock.t + 0.5
    broker:get()
    assert.are.equal(2, #calls)
    clock.t = clock.t + 1.9
    broker:get()
    assert.are.equal(2, #calls, "second failure: 2 s")
    clock.t = clock.t + 0.1
    local servers = assert(broker:get())
    assert.are.equal(3, #calls)
    assert.are.equal("u1", servers[1].username)
    clock.t = clock.t + 400 -- refresh due; the last failure is forgotten
    responses = { { status = 502, body = "x" } }
    broker:get()
    assert.are.equal(4, #calls)
  end)

  it("honours Retry-After on 429 and 503, up to 10 minutes", function()
    build()
    responses = { { status = 429, body = "{}", headers = { ["retry-after"] = "120" } } }
    broker:get()
    clock.t = clock.t + 119
    broker:get()
    assert.are.equal(1, #calls)
    clock.t = clock.t + 1
    responses = { { status = 503, body = "{}", headers = { ["retry-after"] = "86400" } } }
    broker:get()
    assert.are.equal(2, #calls)
    clock.t = clock.t + 599
    broker:get()
    assert.are.equal(2, #calls)
    clock.t = clock.t + 1
    assert(broker:get())
    assert.are.equal(3, #calls)
  end)

  it("tries the next provider while one backs off", function()
    build { TURN_PROVIDER = "down,fake" }
    local _, meta = assert(broker:get())
    assert.are.equal("fake", meta.provider)
    _, meta = assert(broker:get())
    assert.are.equal("fake", meta.provider)
  end)

  it("keeps the provider's secrets out of errors and logs, whatever it echoes", function()
    build()
    responses = {
      { status = 401, body = '{"message":"key ' .. SECRET .. ' is not valid"}' },
    }
    local _, meta = broker:get()
    assert.is_true(meta.degraded)
    assert.matches("401 key %[redacted%] is not valid", meta.errors[1])
    responses = { { error = "GET https://fake.example/...: " .. SECRET } }
    clock.t = clock.t + 5
    local more, log = fx.recorder()
    local _, err = iceservers.from_env({ TURN_PROVIDER = "fake", FAKE_KEY = SECRET,
      ICESERVERS_PROVIDERS_DIR = tmp.dir, TURN_FALLBACK = "none" },
      { now = clock.now, http = http, log = log }):get()
    assert.matches("fake: GET https://fake.example/...: [redacted]", err, 1, true)
    assert.truthy(#all_lines > 0 and #more > 0)
    for _, text in ipairs { err, table.concat(meta.errors, "\n"), table.concat(all_lines, "\n"),
        table.concat(more, "\n") } do
      assert.is_nil(text:find(SECRET, 1, true), text)
    end
  end)
end)

describe("the cache key of a shared provider", function()
  local cache = require "iceservers.cache"
  local tmp
  setup(function()
    tmp = fx.tmp()
    -- answers a TURN URL that names its options, and counts its calls
    local provider = [[
      return {
        shared = true,
        options = { regions = { type = "list", default = "eu" }, a = {}, b = {},
                    key = { secret = true } },
        CONFIGURE
        get = function(_, user, opts)
          _G.keyed_calls = (_G.keyed_calls or 0) + 1
          _G.keyed_user = user or "nil"
          local name = table.concat(opts.regions, "-") .. "." .. (opts.a or "") .. "."
            .. (opts.b or "") .. "." .. (opts.key or "")
          return { { urls = "turn:" .. name:gsub("[^%w]", "x") .. ".example",
                     username = "u", credential = "c" } }, 600
        end,
      }]]
    tmp.file("keyed.lua", (provider:gsub("CONFIGURE", "")))
    tmp.file("stateful.lua", (provider:gsub("CONFIGURE", [[
        configure = function(opts)
          opts.nonce = tostring({}) -- state of this broker, not configuration
          opts.state = { built = opts.nonce }
          return opts
        end,]])))
  end)
  teardown(function() tmp.cleanup() end)
  before_each(function() _G.keyed_calls, _G.keyed_user = nil, nil end)

  -- Two brokers on one backend (as nginx workers share a dict): the URLs each serves.
  local function pair(opts1, opts2, name)
    local backend = cache.memory()
    name = name or "keyed"
    local function url(opts)
      local b = iceservers.new { providers = name, providers_dir = tmp.dir, stun_urls = {},
        cache = backend, [name] = opts, log = function() end }
      return assert(b:get("alice"))[1].urls[1]
    end
    return url(opts1), url(opts2)
  end

  it("differs for options that are lists", function()
    local u1, u2 = pair({ regions = { "eu", "us" } }, { regions = { "eu", "asia" } })
    assert.are.equal("turn:euxusxxx.example", u1)
    assert.are.equal("turn:euxasiaxxx.example", u2)
    assert.are.equal(2, _G.keyed_calls)
  end)

  it("cannot be forged by a value that spells another option", function()
    local u1, u2 = pair({ a = "x\nb=y" }, { a = "x", b = "y" })
    assert.are_not.equal(u1, u2)
    assert.are.equal(2, _G.keyed_calls)
    pair({ regions = { "a,b" } }, { regions = { "a", "b" } })
    assert.are.equal(4, _G.keyed_calls)
  end)

  it("differs for secret options, without holding them", function()
    local backend = cache.memory()
    local stored = {}
    local spy = { get = backend.get, set = function(self, k, v)
      stored[#stored + 1] = k
      return backend.set(self, k, v)
    end }
    for _, key in ipairs { "KEY-ONE-123", "KEY-TWO-456" } do
      iceservers.new { providers = "keyed", providers_dir = tmp.dir, cache = spy,
        keyed = { key = key }, log = function() end }:get()
    end
    assert.are.equal(2, _G.keyed_calls)
    assert.are_not.equal(stored[1], stored[2])
    for _, k in ipairs(stored) do assert.is_nil(k:find("KEY", 1, true), k) end
  end)

  it("is the same for the same options, whatever state configure adds", function()
    local u1, u2 = pair({ regions = { "eu" }, a = "1" }, { a = "1", regions = "eu" }, "stateful")
    assert.are.equal(u1, u2)
    assert.are.equal(1, _G.keyed_calls)
  end)

  it("is asked without the user: its answer goes to every user", function()
    pair({}, {}, "stateful")
    assert.are.equal("nil", _G.keyed_user)
  end)
end)
