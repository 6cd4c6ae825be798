-- broker:json (what the nginx endpoint serves) writes the bytes that
-- iceservers.encode(broker:get(user)) writes, for every provider kind, format
-- and outcome, also once the cached text of an answer is reused; and the
-- hand-written encoder escapes strings exactly as lua-cjson does.
local iceservers = require "iceservers"
local encode = require "iceservers.encode"
local cjson = require "cjson"
local fx = require "support.fixtures"

local SECRET = "json-spec-secret"
local TURN = { "turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp" }
local STUN = "stun:stun.example.com:3478"

-- An answer in a provider's sloppy shape, repeating our STUN URL.
local ANSWER = cjson.encode {
  { urls = { STUN, "stun:stun.other.example:3478" } },
  { urls = "turn:relay.example.com:80", username = "u/1", credential = "c+2/=" },
  { url = "turns:relay.example.com:443?transport=tcp", username = "u/1", credential = "c+2/=" },
  { urls = { "turn:relay2.example.com:3478" }, username = "u\"2", credential = "c\\3" },
}

local function rest_broker(clock, status, more)
  local calls = 0
  local config = {
    providers = "metered", stun_urls = { STUN }, now = clock.now, log = function() end,
    metered = { api_url = "https://metered.invalid", api_key = "k3y-json-spec" },
    http = function()
      calls = calls + 1
      local s = type(status) == "function" and status(calls) or status or 200
      return { status = s, headers = {}, body = s == 200 and ANSWER or '{"error":"down"}' }
    end,
  }
  for k, v in pairs(more or {}) do config[k] = v end
  return iceservers.new(config), function() return calls end
end

-- json(user, format) and encode(get(user, nil, format), format) agree, both
-- formats (each shaped for its own).
local function assert_same(b, user)
  for _, format in ipairs { "webrtc", "rest" } do
    local servers, meta = b:get(user, nil, format)
    local json, jerr, failed = b:json(user, format)
    if not servers then
      assert.is_nil(json)
      -- the first failure starts a backoff, which the second one reports
      assert.are.equal(meta:gsub(" %(not retried for %d+ s%)", ""),
        jerr:gsub(" %(not retried for %d+ s%)", ""))
      assert.are.equal("get", failed)
    else
      local want, err = iceservers.encode(servers, meta, format)
      if want then
        assert.are.equal(want, json)
        assert.is_nil(jerr)
      else
        assert.is_nil(json)
        assert.are.equal(err, jerr)
        assert.are.equal("encode", failed)
      end
    end
  end
end

describe("broker:json", function()
  local clock
  before_each(function() clock = fx.clock() end)

  it("matches encode(get()) for the STUN-only default and an empty list", function()
    assert_same(iceservers.new { now = clock.now })
    assert_same(iceservers.new { now = clock.now, stun_urls = {} }, "alice")
    assert.are.equal('{"iceServers":[]}', (iceservers.new { stun_urls = {} }:json()))
  end)

  it("matches encode(get()) for coturn, with users that need escaping", function()
    local b = iceservers.new { providers = "coturn", stun_urls = { STUN }, now = clock.now,
      coturn = { secret = SECRET, urls = TURN } }
    for _, user in ipairs { nil, "alice", "a/b", 'q"uote', "back\\slash", "caf\195\169",
      "del\127", string.rep("x", 256) } do
      assert_same(b, user)
    end
    local doc = cjson.decode((b:json("a/b")))
    assert.are.equal(tostring(clock.t + 86400) .. ":a/b", doc.iceServers[2].username)
    assert.are.same(TURN, doc.iceServers[2].urls)
  end)

  it("matches encode(get()) for static credentials and a TURN URL that is also STUN's", function()
    assert_same(iceservers.new { providers = "static", stun_urls = {}, now = clock.now,
      static = { username = "st/at", password = "pa\"ss", urls = TURN } }, "bob")
  end)

  it("matches encode(get()) for a cached REST answer, as its ttl goes down", function()
    local b, calls = rest_broker(clock)
    for _ = 1, 3 do
      assert_same(b, "carol")
      clock.t = clock.t + 7
    end
    assert.are.equal(1, calls())
    -- a refresh (past half the lifetime) gives a new text
    local before = b:json()
    clock.t = clock.t + 1900
    assert_same(b)
    assert.are.equal(2, calls())
    assert.are_not.equal(before, (b:json()))
  end)

  it("matches encode(get()) when a stale answer is served and when the fallback serves", function()
    local b = rest_broker(clock, function(n) return n == 1 and 200 or 503 end)
    assert_same(b)
    clock.t = clock.t + 1900 -- refresh due; it fails: the stale answer is served
    local _, meta = b:get()
    assert.is_true(meta.stale)
    assert_same(b)
    clock.t = clock.t + 3600 -- past the margin: the fallback serves
    local _, m2 = b:get()
    assert.is_true(m2.degraded)
    assert_same(b)
    assert.matches('"degraded":true}$', (b:json()))
    local json, err, failed = b:json(nil, "rest")
    assert.is_nil(json)
    assert.matches("no TURN server", err)
    assert.are.equal("encode", failed)
  end)

  it("fails as get does", function()
    local b = rest_broker(clock, 500, { fallback = "none" })
    assert_same(b)
    local json, err, failed = b:json(string.rep("x", 300))
    assert.is_nil(json)
    assert.matches("^invalid user", err)
    assert.are.equal("get", failed)
    assert.has_error(function() b:json(nil, "xml") end)
  end)

  it("goes on with the chain when a signing provider fails after all, as get does", function()
    local tmp = fx.tmp()
    finally(tmp.cleanup)
    -- signs as static does (one canonical entry, the same URL table each
    -- time) until _G.signer_fails says otherwise
    tmp.file("signer.lua", [[
      local normalize = require "iceservers.normalize"
      return {
        configure = function(opts)
          opts.urls = normalize.turn_urls({ "turn:turn.example.com:3478" }, "urls")
          return opts
        end,
        get = function(_, _, opts)
          _G.signer_calls = (_G.signer_calls or 0) + 1
          if _G.signer_fails then error("boom") end
          return { { urls = opts.urls, username = "st", credential = "pw" } }, 600
        end,
      }]])
    local function chain()
      return iceservers.new { providers = "signer,coturn", providers_dir = tmp.dir,
        stun_urls = { STUN }, now = clock.now, log = function() end,
        coturn = { secret = SECRET, urls = { "turn:other.example.com" } } }
    end
    _G.signer_fails, _G.signer_calls = nil, nil
    local b = chain()
    assert.matches('"username":"st"', (b:json("dave")), 1, true) -- its own JSON path
    _G.signer_fails = true
    local want = iceservers.encode(chain():get("dave"))
    assert.are.equal(want, (b:json("dave")))
    assert.matches('"turn:other.example.com"', want, 1, true)
    -- its backoff is looked at from then on: not asked again within it
    local calls = _G.signer_calls
    assert_same(b, "dave")
    assert.are.equal(calls, _G.signer_calls)
    _G.signer_fails, _G.signer_calls = nil, nil
  end)

  it("keeps no memory of the tables of answers that are gone", function()
    local tmp = fx.tmp()
    finally(tmp.cleanup)
    -- canonical, but fresh tables on every call
    tmp.file("fresh.lua", [[return { get = function()
      return { { urls = { "turn:fresh.example:3478" }, username = "u", credential = "c" } }, 600
    end }]])
    local b = iceservers.new { providers = "fresh", providers_dir = tmp.dir, now = clock.now,
      stun_urls = { STUN } }
    local first = b:json()
    for _ = 1, 2000 do assert.are.equal(first, (b:json())) end
    collectgarbage()
    collectgarbage()
    local kept = 0
    for _ in pairs(b.render.memo) do kept = kept + 1 end
    assert.is_true(kept < 100, kept .. " tables remembered")
  end)

  it("leaves get's fresh tables alone: editing them changes no later answer", function()
    local b = rest_broker(clock)
    local servers = b:get()
    local text = b:json()
    servers[2].urls[1] = "stun:edited.example"
    servers[1].urls = nil
    assert.are.equal(text, (b:json()))
    assert.are_not.same(servers, (b:get()))
  end)
end)

describe("iceservers.encode", function()
  it("escapes every byte as lua-cjson does", function()
    for c = 0, 255 do
      local s = "a" .. string.char(c) .. "b"
      assert.are.equal(cjson.encode(s), encode.string(s), "byte " .. c)
    end
  end)

  it("writes RTCIceServer entries in W3C order, and anything else through cjson", function()
    local servers = {
      { urls = { STUN } },
      { urls = TURN, username = "u", credential = "c/d" },
      { urls = TURN, username = "u", credential = "c", extra = true },
      { urls = {}, username = "u" },
    }
    local json = iceservers.encode(servers, { ttl = 5, expires = 10 })
    assert.matches('^{"iceServers":%[{"urls":%["stun:stun.example.com:3478"%]},'
      .. '{"urls":%[[^%]]+%],"username":"u","credential":"c\\/d"},', json)
    assert.are.same({ iceServers = cjson.decode(cjson.encode(servers)), ttl = 5, expires = 10 },
      cjson.decode(json))
  end)
end)

describe("iceservers.runtime.ffi", function()
  it("writes what the core's C functions write (through the FFI on LuaJIT)", function()
    local ffi = require "iceservers.runtime.ffi"
    local core = require "iceservers.core"
    assert.are.equal(rawget(_G, "jit") ~= nil, ffi.active)
    for _, alg in ipairs { "sha1", "sha256", "sha512" } do
      local signer = core.hmac_key(alg, "key-" .. alg)
      for _, msg in ipairs { "", "1800000000", "1800000000:a/b", string.rep("x", 300) } do
        assert.are.equal(ffi.c.b64digest(signer, msg), signer:b64digest(msg))
      end
    end
    -- swapped in under the method's own name, for every signer
    assert.are.equal(ffi.active, core.hmac_key("sha1", "k").b64digest ~= ffi.c.b64digest)
    for _, s in ipairs { "", "a/b", '"\\\127', string.rep("\1", 200), string.rep("/", 160) } do
      assert.are.equal(ffi.c.json_quote(s), ffi.json_quote(s))
    end
    local a, b = ffi.json_quote("x", "y/z")
    assert.are.same({ '"x"', '"y\\/z"' }, { a, b })
    assert.has_error(function() ffi.json_quote(5) end)
    assert.has_error(function() core.hmac_key("sha1", "k"):b64digest(5) end)
  end)
end)
