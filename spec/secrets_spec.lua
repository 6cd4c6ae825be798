-- TURN_SECRET_FILE rewritten in place: a reader can see it half written, and
-- a truncated secret would sign credentials that stay broken for their TTL.
-- So a changed file is taken only once its mtime is 2 s old; until then the
-- previous content signs.  mtimes are set with touch -d (never by sleeping)
-- against an injected clock.
local secrets = require "iceservers.secrets"
local iceservers = require "iceservers"
local core = require "iceservers.core"
local sh = require "support.sh"
local fx = require "support.fixtures"

local T = 1800000000

-- Writes path with text (mode 600) and sets its mtime (fractions allowed).
local function write(path, text, mtime)
  fx.write(path, text, "600")
  assert(sh.run(("touch -d @%s %s"):format(("%.3f"):format(mtime), sh.quote(path))))
  local info = assert(core.stat(path))
  assert(math.abs(info.mtime - mtime) < 0.01, "touch -d did not set the mtime")
end

describe("a secrets file", function()
  local tmp, path, clock

  before_each(function()
    tmp = fx.tmp()
    path = tmp.dir .. "/secrets"
    clock = fx.clock(T)
  end)
  after_each(function() tmp.cleanup() end)

  local function load(text, mtime)
    write(path, text, mtime)
    return secrets.new({ secret_file = path }, core.stat, clock.now)
  end

  local function first(s)
    local list, err = s:current()
    assert(list, err)
    return list[1]
  end

  it("rewritten in place is taken only once it is 2 s old, never half written", function()
    local s = load("old-secret\n", T - 100)
    write(path, "new-sec", T + 0.25) -- half written
    clock.t = T + 1
    assert.are.equal("old-secret", first(s))
    write(path, "new-secret\nold-secret\n", T + 1.5) -- done
    clock.t = T + 2
    assert.are.equal("old-secret", first(s))
    clock.t = T + 3 -- 1.5 .. 2.5 s old: maybe still being written
    assert.are.equal("old-secret", first(s))
    clock.t = T + 4 -- at least 2.5 s old
    assert.are.same({ "new-secret", "old-secret" }, (s:current()))
  end)

  it("is fresh while its mtime is after now - 2 (the clock has whole seconds)", function()
    local s = load("old-secret\n", T - 100)
    write(path, "new-secret\n", (T + 1) - 1.999)
    clock.t = T + 1
    assert.are.equal("old-secret", first(s))
    write(path, "new-secret\n", (T + 2) - 2)
    clock.t = T + 2
    assert.are.equal("new-secret", first(s))
  end)

  it("is used as it is at first load, however fresh", function()
    assert.are.equal("fresh-secret", first(load("fresh-secret\n", T)))
    assert.are.equal("fresh-secret", first(load("fresh-secret\n", T + 0.5)))
  end)

  it("emptied by a rewrite fails only once the emptied file is 2 s old", function()
    local s = load("old-secret\n", T - 100)
    write(path, "", T + 0.5)
    clock.t = T + 1
    assert.are.equal("old-secret", first(s))
    clock.t = T + 3
    local list, err = s:current()
    assert.is_nil(list)
    assert.matches("holds no secret", err)
  end)

  it("is taken at once when its mtime is ahead of the clock (waiting would not help)",
    function()
      local s = load("old-secret\n", T - 100)
      write(path, "new-secret\n", T + 3600)
      clock.t = T + 1
      assert.are.equal("new-secret", first(s))
    end)

  it("rewritten in place signs the broker's credentials with the old secret meanwhile",
    function()
      write(path, "old-secret\n", T - 100)
      local broker = iceservers.new { providers = "coturn", stun_urls = {},
        log = function() end, now = clock.now,
        coturn = { secret_file = path, urls = { "turn:turn.example.com:3478" } } }
      local function signed_with(secret)
        local servers = assert(broker:get("alice"))
        local entry = servers[1]
        assert.are.equal(core.b64encode(core.hmac("sha1", secret, entry.username)),
          entry.credential)
        local json = assert(broker:json("alice"))
        assert.truthy(json:find(core.b64encode(core.hmac("sha1", secret, entry.username)),
          1, true))
      end
      signed_with("old-secret")
      write(path, "new", T + 0.5) -- half of "new-secret"
      clock.t = T + 1
      signed_with("old-secret")
      write(path, "new-secret\nold-secret\n", T + 0.75)
      clock.t = T + 3
      signed_with("new-secret")
    end)
end)
