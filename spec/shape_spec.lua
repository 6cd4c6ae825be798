-- iceservers.shape: dedupe, port 53, IPv6 in rest, the cap by class, and
-- rendezvous ranking.  What the broker makes of them: broker_shape_spec.lua.
local shape = require "iceservers.shape"
local core = require "iceservers.core"

local weigh = shape.weigher(core.hmac_key)

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

describe("shape.answer's other cases", function()
  local E = function(urls) return { urls = urls, username = "u", credential = "c" } end

  it("returns what nothing was taken from as it is", function()
    local stun, list = { "stun:s:3478" }, { E { "turn:a:3478" } }
    local s, es, dropped = shape.answer(stun, list, 4)
    assert.are.equal(stun, s)
    assert.are.equal(list, es)
    assert.is_nil(dropped)
  end)

  it("in rest, drops IPv6 literals (unless kept) and caps TURN URLs only", function()
    local list = { E { "turn:[::1]:3478", "turn:a:3478", "turn:b:3478", "turn:c:3478",
      "turn:d:3478", "turn:e:3478" } }
    local s, es, dropped = shape.answer({ "stun:s:3478" }, list, 4, true)
    assert.are.same({ "stun:s:3478" }, s)
    assert.are.same({ "turn:a:3478", "turn:b:3478", "turn:c:3478", "turn:d:3478" }, es[1].urls)
    assert.are.same({ ipv6 = 1, cap = 1 }, dropped)
    local _, kept = shape.answer({}, list, 0, true, true)
    assert.are.equal(list, kept)
    local _, webrtc = shape.answer({}, { E { "turn:[::1]:3478" } }, 4)
    assert.are.same({ "turn:[::1]:3478" }, webrtc[1].urls)
  end)

  it("with a cap of 1, keeps a TURN URL rather than the STUN one", function()
    local s, es, dropped = shape.answer({ "stun:s:3478" }, { E { "turn:a:3478" } }, 1)
    assert.are.same({}, s)
    assert.are.same({ "turn:a:3478" }, es[1].urls)
    assert.are.same({ cap = 1 }, dropped)
  end)
end)

describe("shape.hosts", function()
  it("groups URLs by host and port, in first-seen order", function()
    local hosts, of = shape.hosts { "turn:a:3478?transport=udp", "turns:a:5349?transport=tcp",
      "turn:b:3478", "turn:a:3478?transport=tcp", "turn:[::1]:3478" }
    assert.are.same({ "a:3478", "a:5349", "b:3478", "[::1]:3478" }, hosts)
    assert.are.same({ "turn:a:3478?transport=udp", "turn:a:3478?transport=tcp" }, of[1])
  end)
end)

describe("shape.rank and shape.best (rendezvous hashing)", function()
  local HOSTS = { "turn1.example:3478", "turn2.example:3478", "turn3.example:3478" }
  local function pick(hosts, u) return hosts[shape.best(hosts, u, weigh)] end

  it("spreads 10000 users over 3 hosts within 5 % of a third each", function()
    local n = {}
    for i = 1, 10000 do
      local h = pick(HOSTS, "u" .. i)
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
      local h = pick(HOSTS, u)
      assert.are.equal(h, pick(HOSTS, u))
      if h ~= HOSTS[2] then assert.are.equal(h, pick(two, u)) end
    end
  end)

  it("weighs by the first 48 bits of HMAC-SHA256(\"iceservers pick\", text)", function()
    local mac = core.hmac("sha256", "iceservers pick", "turn1.example:3478\0u1")
    local a, b, c, d, e, f = mac:byte(1, 6)
    assert.are.equal(((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f,
      weigh("turn1.example:3478\0u1"))
  end)

  it("ranks every host, best first as best says", function()
    for i = 1, 50 do
      local r = shape.rank(HOSTS, "u" .. i, weigh)
      assert.are.equal(3, #r)
      assert.are.equal(shape.best(HOSTS, "u" .. i, weigh), r[1])
      table.sort(r)
      assert.are.same({ 1, 2, 3 }, r)
    end
  end)
end)
