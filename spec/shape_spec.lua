-- iceservers.shape (issue 14, not wired yet): dedupe, port 53, the cap by
-- class, and rendezvous picks.
local shape = require "iceservers.shape"
local core = require "iceservers.core"

local function sha256(s) return core.digest("sha256", s) end

describe("shape.class", function()
  it("sorts URLs into STUN, TURN over UDP, TLS and TCP", function()
    assert.are.equal("stun", shape.class("stun:h:3478"))
    assert.are.equal("stun", shape.class("stuns:h:5349"))
    assert.are.equal("turn_udp", shape.class("turn:h:3478"))
    assert.are.equal("turn_udp", shape.class("turn:h:3478?transport=udp"))
    assert.are.equal("turn_tcp", shape.class("turn:h:3478?transport=tcp"))
    assert.are.equal("turns", shape.class("turns:h:443?transport=tcp"))
  end)
end)

describe("shape.answer", function()
  local E = function(urls) return { urls = urls, username = "u", credential = "c" } end

  it("drops URLs seen before (STUN_URLS included) and port 53, and empty entries", function()
    local s, es, dropped = shape.answer({ "stun:s:3478" }, {
      E { "stun:s:3478", "turn:a:3478", "turn:a:53" },
      E { "turn:a:3478" },
    }, 0)
    assert.are.same({ "stun:s:3478" }, s)
    assert.are.same({ E { "turn:a:3478" } }, es)
    assert.are.same({ duplicate = 2, port_53 = 1 }, dropped)
  end)

  it("caps at max URLs, one per class in turn, TLS on 443 first, in the answer's order", function()
    local s, es, dropped = shape.answer({ "stun:s1:3478", "stun:s2:3478" }, {
      E { "turn:a:3478?transport=udp", "turn:a:3478?transport=tcp",
        "turns:a:5349?transport=tcp", "turns:a:443?transport=tcp" },
      E { "turn:b:3478?transport=udp" },
    }, 4)
    assert.are.same({ "stun:s1:3478" }, s)
    assert.are.same({ E { "turn:a:3478?transport=udp", "turn:a:3478?transport=tcp",
      "turns:a:443?transport=tcp" } }, es)
    assert.are.same({ cap = 3 }, dropped)
  end)

  it("goes round the classes again when there is room, and 0 is no cap", function()
    local s, es = shape.answer({ "stun:s1:3478", "stun:s2:3478" },
      { E { "turn:a:3478", "turn:b:3478", "turn:c:3478" } }, 4)
    assert.are.same({ "stun:s1:3478", "stun:s2:3478" }, s)
    assert.are.same({ E { "turn:a:3478", "turn:b:3478" } }, es)
    local _, all = shape.answer({}, { E { "turn:a:3478", "turn:b:3478", "turn:c:3478" } }, 0)
    assert.are.equal(3, #all[1].urls)
  end)
end)

describe("shape.pick (rendezvous hashing)", function()
  local HOSTS = { "turn1.example:3478", "turn2.example:3478", "turn3.example:3478" }

  it("spreads 10000 users over 3 hosts within 5 % of a third each", function()
    local n = {}
    for i = 1, 10000 do
      local h = shape.pick(HOSTS, "u" .. i, 1, sha256)[1]
      n[h] = (n[h] or 0) + 1
    end
    for _, h in ipairs(HOSTS) do
      assert.is_true(math.abs(n[h] - 10000 / 3) <= 0.05 * 10000 / 3, h .. ": " .. tostring(n[h]))
    end
  end)

  it("gives a user the same host every time, and moves only a removed host's users", function()
    local two = { HOSTS[1], HOSTS[3] }
    for i = 1, 3000 do
      local u = "u" .. i
      local h = shape.pick(HOSTS, u, 1, sha256)[1]
      assert.are.equal(h, shape.pick(HOSTS, u, 1, sha256)[1])
      if h ~= HOSTS[2] then assert.are.equal(h, shape.pick(two, u, 1, sha256)[1]) end
    end
  end)

  it("returns every host when n covers them", function()
    assert.are.equal(HOSTS, shape.pick(HOSTS, "u", 3, sha256))
    assert.are.equal(2, #shape.pick(HOSTS, "u", 2, sha256))
  end)
end)
