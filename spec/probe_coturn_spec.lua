-- iceservers.stun.probe against a real coturn (spec/support/coturn.lua, TURN
-- REST credentials from use-auth-secret) over UDP and TCP with LuaSocket's
-- net (iceservers.stun.net_socket): what the server really answers, that the
-- probe's Refresh deletes the allocation, and that the verdicts are the ones
-- turnutils_uclient reaches with the same credentials.
local coturn = require "support.coturn"
local sh = require "support.sh"
local core = require "iceservers.core"
local probe = require "iceservers.stun.probe"
local net = require "iceservers.stun.net_socket"

local SLOW = sh.slow(3)
local TIMEOUT = 3 * SLOW
local MARGIN = 1.5 * SLOW -- a loaded machine's slack over the probe's own timeout
local function token(n) return core.hex(core.random_bytes(n)) end
local SECRET = token(16)
local RUN = token(4)

-- A TURN REST credential: username "expiry:user", password b64(HMAC-SHA1(secret, username)).
local function credential(name, expires_in, secret)
  local username = ("%d:%s-%s"):format(os.time() + (expires_in or 3600), name, RUN)
  return { username = username,
    credential = core.hmac_key("sha1", secret or SECRET):b64digest(username) }
end

local function run(url, cred, timeout)
  local t0 = core.monotonic()
  local r = probe.url(url, cred, { net = net, crypto = core, now = core.monotonic,
    timeout = timeout or TIMEOUT })
  return r, core.monotonic() - t0
end

-- Polls until fn() is true or seconds pass.
local function eventually(seconds, fn)
  local deadline = sh.now() + seconds
  while not fn() do
    if sh.now() > deadline then return false end
    sh.sleep(0.1)
  end
  return true
end

describe("probe against a real coturn", function()
  local turn

  setup(function() turn = coturn.start{ secrets = { SECRET } } end)
  teardown(function() if turn then turn:stop() end end)

  local function url(transport, port)
    return ("turn:127.0.0.1:%d?transport=%s"):format(port or turn.port, transport)
  end

  -- coturn's session id of the line where it refreshed `username` to lifetime 0.
  local function refreshed_session(username)
    local needle = ", username=<" .. username .. ">, lifetime=0"
    for line in turn:log():gmatch("[^\n]+") do
      local session = line:match("session (%d+): refreshed, realm=<[^>]*>")
      if session and line:find(needle, 1, true) then return session end
    end
    return nil
  end

  -- Did coturn delete that session after the refresh (and is it ours)?
  local function deleted_after_refresh(session, username)
    local log = turn:log()
    local at = log:find("session " .. session .. ": refreshed", 1, true)
    local del = log:find(("session %s: delete: realm=<[^>]*>, username=<%s>"):format(session,
      username:gsub("%p", "%%%0")), at)
    return at ~= nil and del ~= nil
  end

  for _, transport in ipairs { "udp", "tcp" } do
    it(transport .. ": the right secret allocates inside the relay range, and the Refresh "
      .. "(lifetime=0) deletes it within 5 s", function()
      local cred = credential("ok-" .. transport)
      local r = run(url(transport), cred)
      assert.is_true(r.ok, r.error)
      assert.are.equal("done", r.stage)
      assert.is_true(r.checked)
      assert.are.equal(3, r.exchanges)
      assert.are.equal(3, r.sent)
      assert.is_true(r.released)
      assert.is_nil(r.warning)
      local ip, port = r.relayed:match("^([%d.]+):(%d+)$")
      assert.are.equal("127.0.0.1", ip)
      port = tonumber(port)
      assert.truthy(port >= turn.min_port and port <= turn.max_port,
        ("%d not in %d-%d"):format(port, turn.min_port, turn.max_port))
      assert.truthy(r.mapped:match("^127%.0%.0%.1:%d+$"))
      assert.are.equal(600, r.lifetime)
      assert.truthy(r.software:find("^Coturn"))
      assert.truthy(turn:accepted(cred.username))
      local session
      assert.is_true(eventually(5, function()
        session = refreshed_session(cred.username)
        return session ~= nil
      end), "no 'refreshed, ... lifetime=0' for " .. cred.username)
      assert.is_true(eventually(5, function()
        return deleted_after_refresh(session, cred.username)
      end), "no 'delete: ... username=<" .. cred.username .. ">' after the refresh")
    end)

    it(transport .. ": a wrong secret and an expired credential get coturn's 401", function()
      for _, cred in ipairs { credential("wrong-" .. transport, 3600, SECRET .. "x"),
          credential("expired-" .. transport, -60) } do
        local r = run(url(transport), cred)
        assert.is_false(r.ok)
        assert.are.equal("request", r.stage)
        assert.are.equal(401, r.code)
        assert.are.equal("Unauthorized", r.reason)
        assert.are.equal("401 Unauthorized", r.error)
        assert.are.equal(2, r.exchanges)
        assert.is_true(turn:rejected(cred.username))
      end
    end)

    it(transport .. ": without a credential: reachable, credentials not checked", function()
      local r = run(url(transport), nil)
      assert.is_true(r.ok, r.error)
      assert.is_false(r.checked)
      assert.are.equal("reachable, credentials not checked", r.reason)
      assert.are.equal(1, r.exchanges)
    end)
  end

  it("a port with no server: UDP times out or is refused, TCP is refused, within the timeout",
    function()
      local port = sh.free_port()
      local r, took = run(url("udp", port), credential("none"))
      assert.is_false(r.ok)
      assert.truthy(r.stage == "timeout" or (r.stage == "connect" and r.error == "refused"),
        r.stage .. ": " .. r.error)
      assert.truthy(took < TIMEOUT + MARGIN, took)
      r, took = run(url("tcp", port), credential("none"))
      assert.is_false(r.ok)
      assert.are.equal("connect", r.stage)
      assert.are.equal("refused", r.error)
      assert.are.equal(0, r.sent)
      assert.truthy(took < TIMEOUT + MARGIN, took)
    end)

  it("stun: a Binding gets the mapped address (our socket's)", function()
    local r = run(("stun:127.0.0.1:%d"):format(turn.port))
    assert.is_true(r.ok, r.error)
    assert.are.equal(1, r.exchanges)
    assert.truthy(r.mapped:match("^127%.0%.0%.1:%d+$"))
    assert.is_nil(r.relayed)
  end)

  it("reaches the verdicts turnutils_uclient reaches on the same credentials", function()
    local cases = {}
    for _, transport in ipairs { "udp", "tcp" } do
      cases[#cases + 1] = { transport, credential("cmp-ok-" .. transport), true }
      cases[#cases + 1] = { transport, credential("cmp-bad-" .. transport, 3600, "other"), false }
      cases[#cases + 1] = { transport, credential("cmp-old-" .. transport, -60), false }
    end
    local runs = {}
    for i, c in ipairs(cases) do
      runs[i] = { port = turn.port, user = c[2].username, password = c[2].credential,
        tcp = c[1] == "tcp", timeout = 20 * SLOW }
    end
    local uclient = coturn.allocate_all(runs)
    for i, c in ipairs(cases) do
      local r = run(url(c[1]), c[2])
      local label = c[1] .. " " .. c[2].username
      assert.are.equal(c[3], uclient[i][1], "uclient " .. label .. ":\n" .. uclient[i][2])
      assert.are.equal(c[3], r.ok, "probe " .. label .. ": " .. tostring(r.error))
      if not c[3] then
        assert.truthy(uclient[i][2]:find("Cannot complete Allocation", 1, true))
        assert.are.equal(401, r.code)
      end
    end
  end)
end)
