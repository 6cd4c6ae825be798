-- The guard fleet-wide: two nginx instances (the example nginx.conf) sharing
-- one redis-server started here on loopback.  A per-user limit of N per hour
-- allows exactly N answers across both; a user revoked on one is refused on
-- the other; with Redis stopped (SIGSTOP: the timeout path) and then killed,
-- ICESERVERS_REDIS_FAIL holds (open serves, closed answers 503) and no
-- request takes longer than the Redis timeout and a margin.
local nginx = require "support.nginx"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

local KEY = "redis-spec-hs256-secret-0123456789abcdef"
local TIMEOUT = 0.3
local MARGIN = 1.5

local function token(user) return require("support.fixtures").hs256(KEY, user) end

describe("limits and revocation in Redis, across two nginx #integration", function()
  local redis_pid, port, a, b, closed, tmp

  local function start_redis()
    local ok, out = sh.run(("cd %s && (exec redis-server --port %d --bind 127.0.0.1 --save '' "
      .. "--appendonly no --protected-mode yes >redis.log 2>&1 & echo $! >redis.pid)")
      :format(sh.quote(tmp), port))
    assert(ok, out)
    redis_pid = assert(sh.read_file(tmp .. "/redis.pid"):match("%d+"))
    local by = sh.now() + 10
    while not nginx.is_listening(port) do
      assert(sh.now() < by, "redis-server did not listen: " .. (sh.read_file(tmp .. "/redis.log")
        or ""))
      sh.sleep(0.05)
    end
  end

  lazy_setup(function()
    tmp = sh.tmpdir("redis")
    port = nginx.free_port()
    start_redis()
    local function node(fail)
      return nginx.start{ template = "examples/nginx/nginx.conf", workers = 2, env = {
        TURN_PROVIDER = "coturn", TURN_SECRET = "s", TURN_URLS = "turn:127.0.0.1:3478",
        STUN_URLS = "", ICESERVERS_JWT_KEY = KEY, ICESERVERS_JWT_ALGS = "HS256",
        ICESERVERS_LIMIT_PER_USER = "5/hour", ICESERVERS_REDIS = "127.0.0.1:" .. port,
        ICESERVERS_REDIS_TIMEOUT = tostring(TIMEOUT), ICESERVERS_REDIS_FAIL = fail } }
    end
    a, b, closed = node("open"), node("open"), node("closed")
  end)

  lazy_teardown(function()
    for _, s in ipairs { a, b, closed } do s:stop() end
    if redis_pid then sh.run("kill -CONT " .. redis_pid .. "; kill -KILL " .. redis_pid) end
    if tmp then sh.rmrf(tmp) end
  end)

  local function ask(srv, user)
    local t0 = sh.now()
    local res = assert(core.http_request { url = srv:url("/ice-servers"), timeout = 10,
      headers = { Authorization = "Bearer " .. token(user) } })
    return res.status, sh.now() - t0
  end

  it("counts a user's answers across both nodes: exactly N per window", function()
    local ok, codes = 0, {}
    for i = 1, 12 do
      local status = ask(i % 2 == 0 and a or b, "fleet-user")
      codes[#codes + 1] = status
      if status == 200 then ok = ok + 1 end
    end
    assert.are.equal(5, ok, table.concat(codes, " "))
    assert.are.equal(429, codes[12])
  end)

  it("refuses on one node a user revoked on the other", function()
    assert.are.equal(200, (ask(b, "mallory")))
    local res = assert(core.http_request { url = a:url("/ice-servers/admin"), method = "POST",
      body = "user=mallory&seconds=60",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    assert.are.equal(200, res.status, res.body)
    assert.are.equal(403, (ask(b, "mallory")))
    assert.are.equal(403, (ask(a, "mallory")))
    local list = cjson.decode(assert(core.http_request { url = b:url("/ice-servers/admin") })
      .body).revoked
    assert.are.equal("mallory", list[1].user)
  end)

  it("with Redis stopped, then killed, holds the fail mode within the timeout", function()
    assert(sh.run("kill -STOP " .. redis_pid))
    for _, case in ipairs { { a, 200 }, { closed, 503 } } do
      for i = 1, 3 do
        local status, took = ask(case[1], "stopped-" .. i)
        assert.are.equal(case[2], status)
        assert.is_true(took < 2 * TIMEOUT + MARGIN, ("took %.2f s"):format(took))
      end
    end
    assert(sh.run("kill -CONT " .. redis_pid .. "; kill -KILL " .. redis_pid))
    redis_pid = nil
    for _, case in ipairs { { b, 200 }, { closed, 503 } } do
      local status, took = ask(case[1], "killed")
      assert.are.equal(case[2], status)
      assert.is_true(took < 2 * TIMEOUT + MARGIN, ("took %.2f s"):format(took))
    end
    assert.truthy(a:error_log():find("does not answer", 1, true))
  end)
end)
