-- The broker's health setting: down URLs leave the answers, a TURN provider
-- with every TURN URL down fails over, and with every one down the first
-- answer is served unverified (fail open).
local iceservers = require "iceservers"
local fx = require "support.fixtures"
local cjson = require "cjson"

local A = { "turn:a.example:3478?transport=udp", "turn:a.example:3478?transport=tcp" }
local B = { "turn:b.example:3478?transport=udp" }
local STUN = { "stun:s1.example:3478", "stun:s2.example:3478" }

local function broker(down, extra)
  local lines, log = fx.recorder()
  local c = { providers = "coturn", stun_urls = STUN, log = log,
    coturn = { secret = "health-spec-secret", urls = A },
    health = function(url) return not down[url] end }
  for k, v in pairs(extra or {}) do c[k] = v end
  return iceservers.new(c), lines
end

local urls_of = require("support.fixtures").urls_of

describe("health in the broker", function()
  it("changes nothing while every URL is up", function()
    local b = broker({})
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ STUN[1], STUN[2], A[1], A[2] }, urls_of(servers))
    assert.is_nil(meta.unverified)
  end)

  it("leaves a down URL out of get's tables and of the JSON, in both formats", function()
    local down = { [A[1]] = true, [STUN[2]] = true }
    local b = broker(down)
    local servers = assert(b:get("alice"))
    assert.are.same({ STUN[1], A[2] }, urls_of(servers))
    local doc = cjson.decode((assert(b:json("alice"))))
    assert.are.same({ STUN[1], A[2] }, urls_of(doc.iceServers))
    local rest = cjson.decode((assert(b:json("alice", "rest"))))
    assert.are.same({ A[2] }, rest.uris)
    -- up again: back in the next answer
    down[A[1]] = nil
    down[STUN[2]] = nil
    assert.are.same({ STUN[1], STUN[2], A[1], A[2] }, urls_of((assert(b:get("alice")))))
    doc = cjson.decode((assert(b:json("bob"))))
    assert.are.same({ STUN[1], STUN[2], A[1], A[2] }, urls_of(doc.iceServers))
  end)

  it("moves on to the next provider when every TURN URL of one is down", function()
    local tmp = fx.tmp()
    tmp.file("second.lua", ([[return { get = function() return { urls = %s,
      username = "u2", credential = "p2" }, 600 end,
      configure = function(opts) opts.urls = require("iceservers.normalize").turn_urls(%s, "x")
        return opts end }]]):gsub("%%s", (("{ %q }"):format(B[1]))))
    local b = broker({ [A[1]] = true, [A[2]] = true },
      { providers = "coturn,second", providers_dir = tmp.dir })
    local servers, meta = assert(b:get("alice"))
    tmp.cleanup()
    assert.are.equal("second", meta.provider)
    assert.is_nil(meta.degraded)
    assert.is_nil(meta.unverified)
    assert.are.same({ "coturn: all 2 TURN URLs down" }, meta.errors)
    assert.are.same({ STUN[1], STUN[2], B[1] }, urls_of(servers))
  end)

  it("serves the first answer unverified when every TURN URL is down, logging once", function()
    local down = { [A[1]] = true, [A[2]] = true }
    local b, lines = broker(down)
    for _ = 1, 3 do
      local servers, meta = assert(b:get("alice"))
      assert.is_true(meta.unverified)
      assert.is_nil(meta.degraded)
      assert.are.equal("coturn", meta.provider)
      assert.are.same({ "coturn: all 2 TURN URLs down" }, meta.errors)
      assert.are.same({ STUN[1], STUN[2], A[1], A[2] }, urls_of(servers))
      local doc = cjson.decode((assert(b:json("alice"))))
      assert.is_nil(doc.degraded)
    end
    local errors = {}
    for _, l in ipairs(lines) do if l:find("^error:") then errors[#errors + 1] = l end end
    assert.are.same({ "error: every provider failed: coturn: all 2 TURN URLs down; serving "
      .. "the first answer unverified" }, errors)
    down[A[2]] = nil
    local servers, meta = assert(b:get("alice"))
    assert.is_nil(meta.unverified)
    assert.are.same({ STUN[1], STUN[2], A[2] }, urls_of(servers))
    assert.matches("answers are verified again", lines[#lines])
  end)

  it("falls back to STUN as before when a provider failed for another reason", function()
    local b = broker({ [A[1]] = true, [A[2]] = true },
      { providers = "coturn,static", static = { username = "u", password = "p", urls = B } })
    -- static's URL is up: it serves
    local _, meta = assert(b:get())
    assert.are.equal("static", meta.provider)
    b = broker({ [A[1]] = true, [A[2]] = true, [B[1]] = true },
      { providers = "coturn,static", static = { username = "u", password = "p", urls = B } })
    _, meta = assert(b:get())
    assert.is_true(meta.unverified) -- both only down: the first one's answer
    assert.are.equal("coturn", meta.provider)
  end)

  it("filters a cached list the same way, keeping one filtered table while the same are down",
    function()
      local down = { ["turn:m.example:3478?transport=tcp"] = true }
      local calls = 0
      local b = broker(down, { providers = "metered",
        metered = { api_url = "https://metered.test/api", api_key = "k" },
        http = function()
          calls = calls + 1
          return { status = 200, headers = {}, body = cjson.encode {
            { urls = "turn:m.example:3478?transport=udp", username = "mu", credential = "mp" },
            { urls = "turn:m.example:3478?transport=tcp", username = "mu", credential = "mp" },
          } }
        end })
      local one = assert(b:json("a"))
      local two = assert(b:json("b"))
      assert.are.equal(one, two)
      assert.is_nil(one:find("transport=tcp", 1, true))
      assert.truthy(one:find("transport=udp", 1, true))
      assert.are.equal(1, calls) -- health never adds a provider call
      down["turn:m.example:3478?transport=tcp"] = nil
      assert.truthy(assert(b:json("c")):find("transport=tcp", 1, true))
      assert.are.equal(1, calls)
    end)

  describe("health_targets: what a probe round checks", function()
    it("signs coturn's URLs, then the broker's STUN URLs, each URL once", function()
      local b = broker({})
      local items = b:health_targets({ "coturn" })
      assert.are.same({ A[1], A[2], STUN[1], STUN[2] }, { items[1].url, items[2].url,
        items[3].url, items[4].url })
      assert.are.equal(4, #items)
      assert.matches("^%d+$", items[1].credential.username) -- no user: the bare expiry
      assert.are.equal(items[1].credential.username, items[2].credential.username)
      assert.is_nil(items[3].credential)
      -- a provider not listed is not probed
      assert.are.equal(2, #b:health_targets({}))
    end)

    it("reads a REST provider's cached answer, never calling it", function()
      local calls = 0
      local b = broker({}, { providers = "metered",
        metered = { api_url = "https://metered.test/api", api_key = "k" },
        http = function()
          calls = calls + 1
          return { status = 200, headers = {}, body = cjson.encode {
            { urls = "turn:m.example:3478", username = "mu", credential = "mp" } } }
        end })
      assert.are.equal(2, #b:health_targets({ "metered" })) -- nothing cached: STUN only
      assert.are.equal(0, calls)
      assert(b:get())
      local items = b:health_targets({ "metered" })
      assert.are.equal(1, calls)
      assert.are.equal("turn:m.example:3478", items[1].url)
      assert.are.same({ username = "mu", credential = "mp" }, items[1].credential)
    end)
  end)
end)
