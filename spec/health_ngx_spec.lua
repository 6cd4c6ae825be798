-- Health inside nginx, as operators turn it on: the example nginx.conf with
-- ICESERVERS_HEALTH_* set, two real coturns as the two TURN hosts of the
-- coturn provider, one stopped and started again, one restarted with another
-- secret; the metrics page checked by promtool and scraped by a real
-- Prometheus.  Tagged: it starts several servers, and runs once.
local nginx = require "support.nginx"
local coturn = require "support.coturn"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

local SLOW = sh.slow(2)
local INTERVAL, TIMEOUT, FALL = 1, 1, 2
-- fall rounds, a probe's timeout, and slack for a loaded machine
local DEADLINE = (FALL * INTERVAL + TIMEOUT + 5) * SLOW
local SECRET = "health-secret-" .. core.hex(core.random_bytes(6))

local function fetch(url)
  local res, err = core.http_request { url = url, timeout = 10 }
  assert(res, err)
  return res
end

-- Polls fn() until it returns a truthy value or the deadline passes.
local function eventually(fn, seconds, what)
  local by = sh.now() + seconds
  while true do
    local v = fn()
    if v then return v end
    assert(sh.now() < by, "not within " .. seconds .. " s: " .. what)
    sh.sleep(0.2)
  end
end

local function urls_of(t)
  return { ("turn:127.0.0.1:%d?transport=udp"):format(t.port),
    ("turn:127.0.0.1:%d?transport=tcp"):format(t.port) }
end

describe("#integration health in nginx (the example nginx.conf)", function()
  local a, b, srv, observer, b_port

  local function answer()
    local res = fetch(srv:url("/ice-servers"))
    assert.are.equal(200, res.status, res.body) -- no request fails meanwhile
    return cjson.decode(res.body), res.body
  end

  local function metrics()
    local res = fetch(srv:url("/ice-servers/metrics"))
    assert.are.equal(200, res.status)
    assert.are.equal("text/plain; version=0.0.4; charset=utf-8", res.headers["content-type"])
    return res.body
  end

  lazy_setup(function()
    a = coturn.start { secrets = { SECRET } }
    b = coturn.start { secrets = { SECRET } }
    b_port = b.port
    local turn = {}
    for _, t in ipairs { a, b } do
      for _, u in ipairs(urls_of(t)) do turn[#turn + 1] = u end
    end
    local env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = SECRET, TURN_URLS = table.concat(turn, ","),
      STUN_URLS = ("stun:127.0.0.1:%d"):format(a.port),
      ICESERVERS_HEALTH_INTERVAL = tostring(INTERVAL),
      ICESERVERS_HEALTH_TIMEOUT = tostring(TIMEOUT),
      ICESERVERS_HEALTH_FALL = tostring(FALL),
      ICESERVERS_MAX_URLS = "0" } -- the answer whole: every URL's state shows in it
    srv = nginx.start { template = "examples/nginx/nginx.conf", workers = 2, env = env }
    env.ICESERVERS_HEALTH_MODE = "observe" -- probes and reports, answers as they are
    observer = nginx.start { template = "examples/nginx/nginx.conf", workers = 1, env = env }
  end)

  lazy_teardown(function()
    for _, s in ipairs { srv, observer, a, b } do if s then s:stop() end end
  end)

  it("probes every URL: all up, in the metrics, and the answer has them all", function()
    local page = eventually(function()
      local m = metrics()
      return select(2, m:gsub("\niceservers_url_up{[^}]*} 1", "")) >= 5 and m
    end, DEADLINE, "five URLs up")
    for _, u in ipairs(urls_of(b)) do
      assert.truthy(page:find(('iceservers_url_up{url="%s"} 1'):format(u), 1, true), page)
    end
    local _, body = answer()
    for _, u in ipairs(urls_of(b)) do assert.truthy(body:find(u, 1, true)) end
  end)

  it("drops a stopped coturn's URLs within fall rounds, and takes them back when it returns",
    function()
      b:stop()
      eventually(function()
        local _, body = answer()
        return not body:find(":" .. b_port, 1, true)
      end, DEADLINE, "no answer with the stopped coturn's URLs")
      local _, body = answer()
      for _, u in ipairs(urls_of(a)) do assert.truthy(body:find(u, 1, true), body) end
      local page = metrics()
      for _, u in ipairs(urls_of(b)) do
        assert.truthy(page:find(('iceservers_url_up{url="%s"} 0'):format(u), 1, true), page)
      end
      assert.matches('iceservers_probe_failures_total{url="turn:127.0.0.1:' .. b_port
        .. '%?transport=tcp",reason="refused"} %d+', page)
      assert.truthy(srv:error_log():find(urls_of(b)[1] .. " down: ", 1, true))
      -- observe: the same state in the metrics, the answer left alone
      eventually(function()
        local res = fetch(observer:url("/ice-servers/metrics"))
        return res.body:find(('iceservers_url_up{url="%s"} 0'):format(urls_of(b)[1]), 1, true)
      end, DEADLINE, "the observer's metrics saying down")
      local seen = fetch(observer:url("/ice-servers"))
      assert.are.equal(200, seen.status)
      assert.truthy(seen.body:find(urls_of(b)[1], 1, true), seen.body)

      b = coturn.start { secrets = { SECRET }, port = b_port }
      eventually(function()
        local _, text = answer()
        return text:find(urls_of(b)[1], 1, true) and text:find(urls_of(b)[2], 1, true)
      end, DEADLINE, "the restarted coturn's URLs back")
      assert.truthy(srv:error_log():find(urls_of(b)[1] .. " up", 1, true))
    end)

  it("takes a URL down with the reason 401 when its coturn has another secret", function()
    b:stop()
    b = coturn.start { secrets = { "another-secret-" .. core.hex(core.random_bytes(4)) },
      port = b_port }
    local page = eventually(function()
      local m = metrics()
      return m:find(('iceservers_url_up{url="%s"} 0'):format(urls_of(b)[1]), 1, true) and m
    end, DEADLINE, "the URL down")
    assert.truthy(page:find(('iceservers_probe_failures_total{url="%s",reason="401"}')
      :format(urls_of(b)[1]), 1, true), page)
    assert.truthy(srv:error_log():find(urls_of(b)[1] .. " down: 401 Unauthorized", 1, true))
    assert.is_nil(srv:error_log():find(SECRET, 1, true))
    local _, body = answer()
    assert.is_nil(body:find(":" .. b_port, 1, true))
  end)

  it("serves the answer unverified, and logs it once, when every TURN URL is down", function()
    a:stop()
    eventually(function()
      answer()
      return srv:error_log():find("serving the first answer unverified", 1, true)
    end, DEADLINE, "the unverified log line")
    local doc, body = answer()
    assert.is_nil(doc.degraded)
    for _, u in ipairs(urls_of(b)) do assert.truthy(body:find(u, 1, true), body) end
    local _, n = srv:error_log():gsub("serving the first answer unverified", "")
    assert.is_true(n <= 2, "one line per worker that served it") -- the state is per worker
  end)

  it("writes a metrics page promtool accepts, and a real Prometheus scrapes", function()
    local page = metrics()
    local dir = sh.tmpdir("prom")
    sh.write_file(dir .. "/metrics.txt", page)
    local ok, out = sh.run("promtool check metrics < " .. sh.quote(dir .. "/metrics.txt"))
    assert(ok, out)
    local port = nginx.free_port()
    sh.write_file(dir .. "/prometheus.yml", ([[
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: iceservers
    metrics_path: /ice-servers/metrics
    static_configs: [ { targets: ["127.0.0.1:%d"] } ]
]]):format(srv.port))
    local started, pid = sh.run(("exec prometheus --config.file=%s --storage.tsdb.path=%s "
      .. "--web.listen-address=127.0.0.1:%d >%s 2>&1 & echo $!"):format(
      sh.quote(dir .. "/prometheus.yml"), sh.quote(dir .. "/data"), port,
      sh.quote(dir .. "/prometheus.log")))
    assert(started, pid)
    pid = tonumber(pid:match("(%d+)%s*$"))
    local finished, got = pcall(eventually, function()
      local res = core.http_request { url = ("http://127.0.0.1:%d/api/v1/query?query=%s")
        :format(port, "iceservers_url_up"), timeout = 5 }
      if not res or res.status ~= 200 then return nil end
      local doc = cjson.decode(res.body)
      return #doc.data.result >= 5 and doc
    end, 30 * SLOW, "Prometheus reading iceservers_url_up")
    sh.run("kill " .. pid)
    local log = sh.read_file(dir .. "/prometheus.log") or ""
    sh.rmrf(dir)
    assert(finished, tostring(got) .. "\n" .. log:sub(-2000))
    local seen = {}
    for _, r in ipairs(got.data.result) do seen[r.metric.url] = r.value[2] end
    assert.are.equal("0", seen[urls_of(b)[1]])
  end)
end)
