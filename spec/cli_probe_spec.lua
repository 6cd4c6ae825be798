-- `iceservers probe` as operators run it: the answer of the configured chain
-- probed URL by URL against a real coturn (UDP, TCP and TLS listeners) and
-- silent servers, all at once; --json, --url, exit statuses, no secret shown.
local sh = require "support.sh"
local coturn = require "support.coturn"
local stun_mock = require "support.stun_mock"
local cjson = require "cjson"
local core = require "iceservers.core"

local INTERP = jit and "luajit" or "lua5.4"
local SECRET = "probe-cli-secret-Qw3Er5"
local TIMEOUT = 2

-- Runs bin/iceservers probe with a clean environment plus env; returns the
-- exit code, stdout, stderr and the seconds it took.
local function cli(env, args)
  local tmp = sh.tmpdir("cliprobe")
  local parts = { "env -i PATH=/usr/bin:/bin" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. sh.quote(v) end
  parts[#parts + 1] = INTERP .. " bin/iceservers probe " .. (args or "")
  local t0 = sh.now()
  local _, _, code = sh.run_clean(table.concat(parts, " ") .. " >" .. tmp .. "/out 2>"
    .. tmp .. "/err")
  local took = sh.now() - t0
  local out, err = assert(sh.read_file(tmp .. "/out")), assert(sh.read_file(tmp .. "/err"))
  sh.rmrf(tmp)
  return code, out, err, took
end

local function ip_port(s)
  local ip, port = tostring(s):match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  return ip, tonumber(port)
end

describe("iceservers probe", function()
  local a, b, silent1, silent2

  lazy_setup(function()
    a = coturn.start { secrets = { SECRET }, tls = true }
    b = coturn.start { secrets = { SECRET } }
    silent1 = stun_mock.start { "silence" }
    silent2 = stun_mock.start { "silence" }
  end)

  lazy_teardown(function()
    for _, s in ipairs { a, b, silent1, silent2 } do s:stop() end
  end)

  local function urls(srv)
    return { ("turn:127.0.0.1:%d?transport=udp"):format(srv.port),
      ("turn:127.0.0.1:%d?transport=tcp"):format(srv.port) }
  end

  -- 12 URLs: 8 that work (STUN, TURN over UDP, TCP and TLS on two coturns), 4 that never answer.
  local function chain_env(secret)
    local turn = {}
    for _, u in ipairs(urls(a)) do turn[#turn + 1] = u end
    for _, u in ipairs(urls(b)) do turn[#turn + 1] = u end
    turn[#turn + 1] = ("turns:localhost:%d?transport=tcp"):format(a.tls_port)
    turn[#turn + 1] = ("turn:127.0.0.1:%d?transport=udp"):format(silent1.ports.silence)
    turn[#turn + 1] = ("turn:127.0.0.1:%d"):format(silent2.ports.silence)
    local stun = { ("stun:127.0.0.1:%d"):format(a.port), ("stun:127.0.0.1:%d"):format(b.port),
      ("stuns:localhost:%d"):format(a.tls_port),
      ("stun:127.0.0.1:%d"):format(silent1.ports.silence),
      ("stun:127.0.0.1:%d"):format(silent2.ports.silence) }
    return { TURN_PROVIDER = "coturn", TURN_SECRET = secret or SECRET,
      TURN_URLS = table.concat(turn, ","), STUN_URLS = table.concat(stun, ","),
      ICESERVERS_CA_FILE = a.ca_file, ICESERVERS_MAX_URLS = "0" } -- every URL, not the 4 served
  end

  it("probes every URL of the answer at once, in about one timeout", function()
    local code, out, err, took = cli(chain_env(), "--user alice --timeout " .. TIMEOUT)
    assert.are.equal(1, code, out .. err)
    local rows = {}
    for line in out:gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.matches("^URL%s+VERDICT%s+RTT%s+ADDRESS%s+DETAIL", rows[1])
    assert.are.equal(14, #rows, out) -- header, 12 URLs, summary
    local ok, failed = 0, 0
    for i = 2, 13 do
      if rows[i]:find("%s+ok%s") then ok = ok + 1 else failed = failed + 1 end
    end
    assert.are.equal(8, ok, out)
    assert.are.equal(4, failed, out)
    assert.matches("^8 of 12 URLs work %(provider coturn, username %d+:alice%)$", rows[14])
    -- four silent servers and one refused port: one timeout, not four
    assert.is_true(took < 2 * TIMEOUT + 1.5, ("took %.1f s"):format(took))
    assert.is_nil(out:find(SECRET, 1, true))
    assert.is_nil(err:find(SECRET, 1, true))
  end)

  it("--json: one object per URL, relayed inside coturn's range, no password", function()
    local code, out = cli(chain_env(), "--user bob --json --timeout " .. TIMEOUT)
    assert.are.equal(1, code)
    local doc = cjson.decode(out)
    assert.are.equal(12, #doc)
    local by = {}
    for _, r in ipairs(doc) do
      for _, k in ipairs { "url", "ok", "stage", "code", "reason", "error", "rtt_ms", "mapped",
        "relayed" } do
        assert.is_not_nil(r[k], k .. " missing (null is written)")
      end
      by[r.url] = r
    end
    for _, u in ipairs(urls(a)) do
      local r = by[u]
      assert.is_true(r.ok, u)
      assert.are.equal("done", r.stage)
      local ip, port = ip_port(r.relayed)
      assert.are.equal("127.0.0.1", ip)
      assert.is_true(port >= a.min_port and port <= a.max_port, r.relayed)
    end
    local tls = by[("turns:localhost:%d?transport=tcp"):format(a.tls_port)]
    assert.is_true(tls.ok, cjson.encode(tls))
    local silent = by[("stun:127.0.0.1:%d"):format(silent1.ports.silence)]
    assert.is_false(silent.ok)
    assert.are.equal("timeout", silent.stage)
    -- the credential is not printed: neither the password nor the secret
    local expires = math.floor(os.time()) + 86400
    for t = expires - 5, expires + 5 do
      local pw = core.b64encode(core.hmac("sha1", SECRET, t .. ":bob"))
      assert.is_nil(out:find(pw, 1, true))
    end
  end)

  it("reports coturn's 401 for credentials signed with another secret", function()
    local env = chain_env("not-the-secret")
    env.TURN_URLS, env.STUN_URLS = table.concat(urls(b), ","), ""
    local code, out = cli(env, "--json --timeout " .. TIMEOUT)
    assert.are.equal(1, code)
    for _, r in ipairs(cjson.decode(out)) do
      assert.is_false(r.ok)
      assert.are.equal(401, r.code)
      assert.are.equal("401 Unauthorized", r.error)
    end
  end)

  it("--url with ICESERVERS_PROBE_CREDENTIAL, and without it up to the challenge", function()
    local url = ("turn:127.0.0.1:%d?transport=udp"):format(b.port)
    local username = tostring(os.time() + 600) .. ":carol"
    local password = core.b64encode(core.hmac("sha1", SECRET, username))
    local code, out, err = cli({ ICESERVERS_PROBE_CREDENTIAL = password },
      "--url " .. sh.quote(url) .. " --username " .. sh.quote(username))
    assert.are.equal(0, code, out .. err)
    assert.matches("1 of 1 URLs work %(credential of " .. username .. "%)", out)
    assert.is_nil(out:find(password, 1, true))
    code, out = cli({}, "--url " .. sh.quote(url))
    assert.are.equal(0, code)
    assert.matches("reachable, credentials not checked", out)
  end)

  it("exits 1 when the chain fell back: no TURN server to probe", function()
    local env = { TURN_PROVIDER = "metered", TURN_API_URL = "https://127.0.0.1:1",
      TURN_API_KEY = "k-not-used", STUN_URLS = ("stun:127.0.0.1:%d"):format(a.port),
      ICESERVERS_HTTP_TIMEOUT = "1" }
    local code, out, err = cli(env, "--timeout " .. TIMEOUT)
    assert.are.equal(1, code)
    assert.matches("1 of 1 URLs work", out)
    assert.matches("STUN fallback served: the TURN servers were not probed", err)
    assert.is_nil((out .. err):find("k-not-used", 1, true))
  end)

  it("exits 2 on a usage error, with one line", function()
    for _, args in ipairs { "--bogus", "--timeout 0", "--timeout x", "--user", "--username u",
      "--url stun:x --user y" } do
      local code, out, err = cli({}, args)
      assert.are.equal(2, code, args)
      assert.are.equal("", out)
      assert.are.equal(1, select(2, err:gsub("\n", "")), args .. ": " .. err)
    end
    local code, out = cli({}, "--help")
    assert.are.equal(0, code)
    assert.matches("usage: iceservers probe", out)
  end)
end)
