-- iceservers.health: the state machine of each probed URL, and its reasons.
local health = require "iceservers.health"

local OK = { ok = true, stage = "done", rtt_ms = 1.5 }
local TIMEOUT = { ok = false, stage = "timeout", error = "timeout" }
local UNAUTH = { ok = false, stage = "done", code = 401, reason = "Unauthorized",
  error = "401 Unauthorized" }

describe("health.tracker", function()
  local now, t
  before_each(function()
    now = 1800000000
    t = health.tracker(health.memory_store(function() return now end),
      { fall = 2, rise = 2, keep = 90 })
  end)

  it("counts a URL never probed as up", function()
    assert.is_true(t:up("turn:a:3478"))
    assert.is_nil(t:state("turn:a:3478"))
  end)

  it("goes down after fall failures in a row, up after rise successes, each URL alone", function()
    local u, other = "turn:a:3478?transport=udp", "turn:a:3478?transport=tcp"
    local s, changed = t:record(u, TIMEOUT, now)
    assert.is_true(s.up)
    assert.is_false(changed)
    t:record(other, OK, now)
    now = now + 30
    s, changed = t:record(u, TIMEOUT, now)
    assert.is_false(s.up)
    assert.is_true(changed)
    assert.are.equal(now, s.since)
    assert.are.equal("timeout", s.reason)
    assert.is_false(t:up(u))
    assert.is_true(t:up(other))
    now = now + 30
    s, changed = t:record(u, OK, now)
    assert.is_false(s.up)
    assert.is_false(changed)
    s, changed = t:record(u, OK, now + 30)
    assert.is_true(s.up)
    assert.is_true(changed)
    assert.are.equal(1.5, s.rtt_ms)
    assert.is_nil(s.reason)
  end)

  it("a success in between starts the failures again", function()
    local u = "turn:b:3478"
    t:record(u, TIMEOUT, now)
    t:record(u, OK, now)
    local s = t:record(u, UNAUTH, now)
    assert.is_true(s.up)
    s = t:record(u, UNAUTH, now)
    assert.is_false(s.up)
    assert.are.equal("401", s.reason)
    assert.are.equal("401 Unauthorized", s.error)
  end)

  it("forgets a URL not probed for keep seconds", function()
    local u = "turn:c:3478"
    t:record(u, TIMEOUT, now)
    t:record(u, TIMEOUT, now)
    assert.is_false(t:up(u))
    now = now + 91
    assert.is_true(t:up(u))
    assert.is_nil(t:state(u))
  end)

  it("keeps an error line with | and control bytes as one field", function()
    local s = t:record("turn:d:3478", { ok = false, stage = "connect",
      error = "connect: a|b\ncd" }, now)
    assert.are.equal("connect: a|b cd", s.error)
    assert.are.equal("connect: a|b cd", t:state("turn:d:3478").error)
  end)
end)

describe("health.reason", function()
  it("is a closed set: the code when it is one of them, else other; never the server's text",
    function()
      assert.are.equal("401", health.reason(UNAUTH))
      assert.are.equal("441", health.reason({ code = 441, reason = "Wrong Credentials" }))
      assert.are.equal("other", health.reason({ code = 420, reason = "x\n<script>" }))
      assert.are.equal("timeout", health.reason(TIMEOUT))
      assert.are.equal("tls", health.reason({ stage = "tls", error = "tls: verify failed" }))
      assert.are.equal("refused", health.reason({ stage = "connect", error = "refused" }))
      assert.are.equal("other", health.reason({ stage = "resolve", error = "resolve: no name" }))
      local known = {}
      for _, r in ipairs(health.REASONS) do known[r] = true end
      for _, code in ipairs { 300, 400, 437, 486, 500, 508 } do
        assert.is_true(known[health.reason({ code = code })])
      end
    end)
end)
