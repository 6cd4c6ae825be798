-- iceservers.ngx (serve and metrics) in a real nginx on loopback: the
-- documented example config (examples/nginx/nginx.conf, as is, filled in by
-- the harness), serve()'s options in a generated config, that a slow provider
-- does not block the worker, and that 200 concurrent requests on a cold cache
-- across two workers make exactly one provider call.  Provider APIs are
-- mocked by another nginx (spec/support/ngx_mock.lua).
local core = require "iceservers.core"
local cjson = require "cjson"
local nginx = require "support.nginx"
local sh = require "support.sh"
local mockc = require "support.ngx_mock"

local EXAMPLE = "examples/nginx/nginx.conf"
local SECRET = "COTURN-SECRET-Hx5Pw2Zk"
local TURN_URLS = { "turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp" }
local STUN = "stun:stun.example.org:3478"
local CORS = "https://app.example"
local API_KEY = "k3y"
local ENV_KEY = "ENV-KEY-Jv7Qm2Wd" -- ICESERVERS_API_KEY of the example
local WARN_OPEN = "this endpoint has neither opts.user nor an API key"
local NOT_CONFIGURED = '{"error":"ICE servers are not configured"}'
local RETRY = 5 -- seconds between two tries to build a broken configuration
local JANUS_USER = "videoroom-Hk3x9" -- a handle's opaque_id

local COTURN_ENV = {
  TURN_PROVIDER = "coturn", TURN_SECRET = SECRET, TURN_URLS = table.concat(TURN_URLS, ","),
  STUN_URLS = STUN,
}

-- One HTTP request with the core client; fails the test on a transport error.
local function fetch(url, req)
  req = req or {}
  req.url = url
  req.timeout = req.timeout or 10
  local res, err = core.http_request(req)
  assert(res, err)
  return res
end

local function decode(res)
  local ok, doc = pcall(cjson.decode, res.body)
  assert(ok, "not JSON: " .. res.body)
  return doc
end

local function signed(username)
  return core.b64encode(core.hmac("sha1", SECRET, username))
end

-- The coturn TURN entry of a webrtc answer, checked; returns its username.
local function assert_coturn_webrtc(doc, user)
  assert.are.same({ urls = { STUN } }, doc.iceServers[1])
  local turn = doc.iceServers[2]
  assert.are.same(TURN_URLS, turn.urls)
  assert.are.equal(2, #doc.iceServers)
  local expiry = assert(tonumber(turn.username:match("^(%d+)")), turn.username)
  assert.are.equal(user and (expiry .. ":" .. user) or tostring(expiry), turn.username)
  assert.are.equal(signed(turn.username), turn.credential)
  assert.are.equal(86400, doc.ttl)
  assert.are.equal(expiry, doc.expires)
  assert.is_true(math.abs(expiry - (os.time() + 86400)) < 120)
  assert.is_nil(doc.degraded)
  return turn.username
end

-- The metrics as JSON once settled(m) holds: each worker adds its counts to
-- the shared dict once a second (iceservers.ngx.counts), so the other
-- worker's may show up to a second late; polled for 5 s, then returned as
-- they are, for the caller's assertions to say what is wrong.
local function metrics_when(srv, settled)
  local by, m = sh.now() + 5
  repeat
    m = decode(fetch(srv:url("/ice-servers/metrics?format=json")))
    if settled(m) then return m end
    sh.sleep(0.2)
  until sh.now() > by
  return m
end

local function assert_json_headers(res)
  assert.are.equal("application/json", res.headers["content-type"])
  assert.are.equal("no-store", res.headers["cache-control"])
end

local function assert_no_cors(res)
  for name in pairs(res.headers) do
    assert.is_nil(name:find("^access%-control%-"), "unexpected CORS header " .. name)
  end
end

local function worker_pids(srv)
  local _, out = sh.run_clean("pgrep -P " .. srv.pid)
  local set = {}
  for pid in out:gmatch("%d+") do set[pid] = true end
  return set
end

local function assert_not_in(text, secret, what)
  assert.is_nil(text:find(secret, 1, true), what .. " shows a secret: " .. text)
end

-- curl_easy_escape: everything but the unreserved characters.
local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The request Janus 1.1.2 (src/turnrest.c) sends for turn_rest_api =
-- `configured`: "<configured>?service=turn[&api=K&key=K][&username=U]" (a
-- second "?" when `configured` has a query already), never a format=; with
-- turn_rest_api_method "POST" (its default) the same query is the form body.
local function janus(configured, method, key, user)
  local query = "service=turn"
  if key then query = query .. "&api=" .. escape(key) .. "&key=" .. escape(key) end
  if user then query = query .. "&username=" .. escape(user) end
  local req = { url = configured .. "?" .. query, method = method,
    headers = { ["User-Agent"] = "Janus/1.0" } }
  if method == "POST" then
    req.body = query
    req.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  return req
end

-- The configured turn_rest_api URLs a spec tries, as paths: none, the query
-- the README once suggested, another parameter, a bare "?".
local function janus_urls(path)
  return { path, path .. "?format=rest", path .. "?x=1", path .. "?" }
end

-- A TURN REST draft answer, checked (Janus reads username, password, ttl, uris).
local function assert_coturn_rest(doc, user, what)
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  assert.are.same({ "password", "ttl", "uris", "username" }, keys, what)
  assert.are.same(TURN_URLS, doc.uris, what)
  if user then
    assert.matches("^%d+:" .. user:gsub("%p", "%%%0") .. "$", doc.username, what)
  else
    assert.matches("^%d+$", doc.username, what)
  end
  assert.are.equal(signed(doc.username), doc.password, what)
  assert.are.equal(86400, doc.ttl, what)
end

-- Error-log lines holding `text`, by worker pid; and their total.
local function lines_per_pid(log, text)
  local per_pid, total = {}, 0
  for line in log:gmatch("[^\n]+") do
    if line:find(text, 1, true) then
      local pid = assert(line:match("%] (%d+)#%d+:"), line)
      per_pid[pid] = (per_pid[pid] or 0) + 1
      total = total + 1
    end
  end
  return per_pid, total
end

-- The error-log lines that warn about an open endpoint, by worker pid.
local function open_warnings(log)
  return lines_per_pid(log, WARN_OPEN)
end

-- At most one line per worker per retry window over `elapsed` seconds.
local function assert_once_per_window(log, text, elapsed)
  local per_pid, total = lines_per_pid(log, text)
  assert.is_true(total >= 1, "no line with " .. text .. ":\n" .. log)
  local most = 1 + math.floor(elapsed / RETRY)
  for pid, n in pairs(per_pid) do
    assert.is_true(n <= most, ("worker %s logged %q %d times in %.1f s:\n%s"):format(pid, text,
      n, elapsed, log))
  end
  return total
end

describe("iceservers.ngx in nginx", function()
  local mock -- the provider APIs and the request driver

  lazy_setup(function()
    mock = nginx.start{
      http = [[
        lua_shared_dict ngx_mock 1m;
        lua_ssl_trusted_certificate ${ca_file};
      ]],
      server = [[ location / { content_by_lua_file ${root}/spec/support/ngx_mock.lua; } ]],
    }
  end)

  lazy_teardown(function()
    if mock then mock:stop() end
  end)

  local function metered_env(tag, more)
    local env = {
      TURN_PROVIDER = "metered", STUN_URLS = STUN,
      TURN_API_URL = ("https://mock.test:%d/metered/%s"):format(mock.tls_port, tag),
      TURN_API_KEY = mockc.METERED_KEY,
      ICESERVERS_RESOLVE = ("mock.test:%d:127.0.0.1"):format(mock.tls_port),
    }
    for k, v in pairs(more or {}) do env[k] = v end
    return env
  end

  local function calls(tag)
    return tonumber(fetch(mock:url("/count/" .. tag)).body)
  end

  local function example(env)
    return nginx.start{ template = EXAMPLE, workers = 2, env = env, ca_file = mock.ca_file }
  end

  ---------------------------------------------------------------------------
  describe("the example nginx.conf with coturn", function()
    local srv

    lazy_setup(function() srv = example(COTURN_ENV) end)
    lazy_teardown(function() if srv then srv:stop() end end)

    local function ice(query, req)
      return fetch(srv:url("/ice-servers" .. (query or "")), req)
    end

    it("answers GET and POST with the webrtc JSON", function()
      for _, method in ipairs { "GET", "POST" } do
        local res = ice(nil, { method = method })
        assert.are.equal(200, res.status, res.body)
        assert_json_headers(res)
        assert_coturn_webrtc(decode(res), nil)
      end
    end)

    it("answers ?format=rest with the TURN REST draft JSON; an explicit format wins", function()
      for _, query in ipairs { "?format=rest", "?format=rest&service=turn" } do
        local res = ice(query)
        assert.are.equal(200, res.status, res.body)
        assert_json_headers(res)
        assert_coturn_rest(decode(res), nil, query)
      end
      -- the webrtc format named explicitly, and service=turn with it
      local res = ice("?format=webrtc&service=turn")
      assert.are.equal(200, res.status)
      assert_coturn_webrtc(decode(res), nil)
    end)

    it("answers Janus' request (service=turn, no format) with the TURN REST draft JSON",
      function()
        for _, configured in ipairs(janus_urls(srv:url("/ice-servers"))) do
          for _, method in ipairs { "GET", "POST" } do
            for _, user in ipairs { false, JANUS_USER } do
              local req = janus(configured, method, nil, user or nil)
              local what = method .. " " .. req.url
              local res = fetch(req.url, req)
              assert.are.equal(200, res.status, what .. ": " .. res.body)
              assert_json_headers(res)
              -- no user_from_query: the username Janus sends is not used
              assert_coturn_rest(decode(res), nil, what)
            end
          end
        end
      end)

    it("reads the parameters of a form body (as Janus POSTs them)", function()
      local res = ice(nil, { method = "POST", body = "service=turn&username=" .. JANUS_USER,
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.are.equal(200, res.status, res.body)
      assert_coturn_rest(decode(res), nil)
      res = ice(nil, { method = "POST", body = "format=nope",
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.are.equal(400, res.status)
    end)

    it("splits parameters at a literal ? only, not at an encoded one", function()
      local res = ice("?format=rest%3Fservice%3Dturn")
      assert.are.equal(400, res.status, res.body)
      assert.are.same({ error = "format must be webrtc or rest" }, decode(res))
      res = ice("?format=webrtc?service=turn")
      assert.are.equal(200, res.status, res.body)
      assert_coturn_webrtc(decode(res), nil)
      res = ice("?format=xml?service=turn")
      assert.are.equal(400, res.status, res.body)
      res = ice("?format=rest?service=stun")
      assert.are.same({ error = "service must be turn" }, decode(res))
    end)

    it("ignores ?username= without user_from_query", function()
      local res = ice("?username=mallory")
      assert.are.equal(200, res.status)
      assert_coturn_webrtc(decode(res), nil)
      assert.is_nil(res.body:find("mallory", 1, true))
    end)

    it("sends no CORS headers and refuses OPTIONS without cors_origin", function()
      assert_no_cors(ice())
      local res = ice(nil, { method = "OPTIONS" })
      assert.are.equal(405, res.status)
      assert_no_cors(res)
      assert.are.equal("GET, POST", res.headers.allow)
    end)

    it("answers 405 to PUT and DELETE", function()
      for _, method in ipairs { "PUT", "DELETE" } do
        local res = ice(nil, { method = method, body = method == "PUT" and "x" or nil })
        assert.are.equal(405, res.status, method)
        assert_json_headers(res)
        assert.are.equal("GET, POST", res.headers.allow)
        assert.are.same({ error = "method not allowed" }, decode(res))
      end
    end)

    it("answers 400 to a bad format and to a service other than turn", function()
      for query, message in pairs {
        ["?format=xml"] = "format must be webrtc or rest",
        ["?format="] = "format must be webrtc or rest",
        ["?format"] = "format must be webrtc or rest",
        ["?service=stun"] = "service must be turn",
        ["?format=rest&service=turns"] = "service must be turn",
      } do
        local res = ice(query)
        assert.are.equal(400, res.status, query)
        assert_json_headers(res)
        assert.are.same({ error = message }, decode(res))
      end
    end)

    it("warns about an open endpoint once per worker, and logs no secret", function()
      for _ = 1, 20 do assert.are.equal(200, ice().status) end
      local log = srv:error_log()
      local per_pid, total = open_warnings(log)
      local workers = worker_pids(srv)
      assert.is_true(total >= 1 and total <= 2, "warnings: " .. total .. "\n" .. log)
      for pid, n in pairs(per_pid) do
        assert.are.equal(1, n, "worker " .. pid .. " warned " .. n .. " times")
        assert.is_true(workers[pid], pid .. " is not a worker of this nginx")
      end
      assert_not_in(log, SECRET, "the error log")
      assert.is_nil(log:find("%[error%]"), log)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the metrics' counts across a reload", function()
    it("loses none: each worker adds what it holds to the dict as it exits", function()
      local srv = example(COTURN_ENV)
      finally(function() srv:stop() end)
      local N = 60
      for _ = 1, N do assert.are.equal(200, fetch(srv:url("/ice-servers")).status) end
      -- at once (within the second a worker holds its counts): the old
      -- workers exit gracefully, the dict stays
      local old = worker_pids(srv)
      assert(sh.run("kill -HUP " .. srv.pid))
      local by = sh.now() + 10
      repeat
        sh.sleep(0.2)
        local now, same = worker_pids(srv), false
        for pid in pairs(now) do same = same or old[pid] ~= nil end
      until (next(now) and not same) or sh.now() > by
      local want = ('iceservers_requests_total{status="200"} %d'):format(N)
      local page
      by = sh.now() + 5
      repeat
        page = fetch(srv:url("/ice-servers/metrics")).body
        if page:find(want, 1, true) then break end
        sh.sleep(0.2)
      until sh.now() > by
      assert.truthy(page:find(want, 1, true), page)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the example nginx.conf with ICESERVERS_API_KEY", function()
    local srv

    lazy_setup(function()
      local env = { ICESERVERS_API_KEY = ENV_KEY }
      for k, v in pairs(COTURN_ENV) do env[k] = v end
      srv = example(env)
    end)
    lazy_teardown(function() if srv then srv:stop() end end)

    it("serves Janus with turn_rest_api_key: GET and POST, with and without a query",
      function()
        for _, configured in ipairs(janus_urls(srv:url("/ice-servers"))) do
          for _, method in ipairs { "GET", "POST" } do
            local req = janus(configured, method, ENV_KEY, JANUS_USER)
            local res = fetch(req.url, req)
            assert.are.equal(200, res.status, method .. " " .. configured .. ": " .. res.body)
            assert_coturn_rest(decode(res), nil, method .. " " .. configured)
          end
        end
      end)

    it("answers 401 to Janus without the key or with another one", function()
      for _, configured in ipairs(janus_urls(srv:url("/ice-servers"))) do
        for _, method in ipairs { "GET", "POST" } do
          for _, key in ipairs { false, "wrong", ENV_KEY .. "x" } do
            local req = janus(configured, method, key or nil, JANUS_USER)
            local res = fetch(req.url, req)
            assert.are.equal(401, res.status, method .. " " .. req.url)
            assert.are.same({ error = "unauthorized" }, decode(res))
          end
        end
      end
    end)

    it("takes the key from an X-Api-Key header, and warns of no open endpoint", function()
      local res = fetch(srv:url("/ice-servers"), { headers = { ["X-Api-Key"] = ENV_KEY } })
      assert.are.equal(200, res.status, res.body)
      assert_coturn_webrtc(decode(res), nil)
      assert.are.equal(401, fetch(srv:url("/ice-servers")).status)
      local log = srv:error_log()
      local _, total = open_warnings(log)
      assert.are.equal(0, total, log)
      assert.is_nil(log:find("%[error%]"), log)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the example nginx.conf with ICESERVERS_API_KEY set but empty", function()
    it("answers 503 to every request, and logs why once per worker", function()
      local env = { ICESERVERS_API_KEY = "" }
      for k, v in pairs(COTURN_ENV) do env[k] = v end
      local srv = example(env)
      finally(function() srv:stop() end)
      local t0 = nginx.now()
      for i = 1, 20 do
        local req = janus(srv:url("/ice-servers"), i % 2 == 0 and "POST" or "GET",
          i % 3 == 0 and "" or nil)
        local res = fetch(req.url, req)
        assert.are.equal(503, res.status, res.body)
        assert_json_headers(res)
        assert.are.equal(NOT_CONFIGURED, res.body)
      end
      local log = srv:error_log()
      assert_once_per_window(log, "ICESERVERS_API_KEY is set but empty", nginx.now() - t0)
      assert.matches("%[error%][^\n]*iceservers: ICESERVERS_API_KEY is set but empty", log)
      local _, warned = open_warnings(log)
      assert.are.equal(0, warned, log)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the example nginx.conf with health on", function()
    it("raises a bad health option in init_worker, naming its variable, and answers 503",
      function()
        local env = { ICESERVERS_HEALTH_INTERVAL = "soon" }
        for k, v in pairs(COTURN_ENV) do env[k] = v end
        local srv = example(env)
        finally(function() srv:stop() end)
        local res = fetch(srv:url("/ice-servers"))
        assert.are.equal(503, res.status, res.body)
        assert.are.equal(NOT_CONFIGURED, res.body)
        assert.matches("init_worker_by_lua error: iceservers: ICESERVERS_HEALTH_INTERVAL must "
          .. "be 0 %(off%) or at least 1 second", srv:error_log())
      end)

    it("leaves another option's error to serve(): health() raises nothing for it", function()
      local env = { ICESERVERS_HEALTH_INTERVAL = "30", ICESERVERS_API_KEY = "" }
      for k, v in pairs(COTURN_ENV) do env[k] = v end
      local srv = example(env)
      finally(function() srv:stop() end)
      assert.are.equal(503, fetch(srv:url("/ice-servers")).status)
      local log = srv:error_log()
      assert.is_nil(log:find("init_worker_by_lua error", 1, true), log)
      assert.matches("iceservers: ICESERVERS_API_KEY is set but empty", log)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the example nginx.conf with a failing provider", function()
    local SHOWN = "no ICE servers available"

    it("answers 503 with a short message under TURN_FALLBACK=none; details in the log",
      function()
        local srv = example(metered_env("none-e401", { TURN_FALLBACK = "none" }))
        finally(function() srv:stop() end)
        for _, query in ipairs { "", "?format=rest", "" } do
          local res = fetch(srv:url("/ice-servers" .. query))
          assert.are.equal(503, res.status, res.body)
          assert_json_headers(res)
          assert.are.equal('{"error":"' .. SHOWN .. '"}', res.body)
          assert_not_in(res.body, mockc.METERED_KEY, "the body")
        end
        assert.is_true(calls("none-e401") >= 1)
        local log = srv:error_log()
        assert.matches("%[error%][^\n]*iceservers: every provider failed: "
          .. "metered: 401 Invalid API Key", log)
        assert_not_in(log, mockc.METERED_KEY, "the error log")
        assert_not_in(log, "/metered/none", "the error log") -- no path either
      end)

    it("answers 200 with \"degraded\":true (STUN only) under the default fallback", function()
      local srv = example(metered_env("degraded-e500"))
      finally(function() srv:stop() end)
      local res = fetch(srv:url("/ice-servers"))
      assert.are.equal(200, res.status, res.body)
      assert_json_headers(res)
      local doc = decode(res)
      assert.are.same({ iceServers = { { urls = { STUN } } }, degraded = true }, doc)
      assert.is_nil(res.body:find("500", 1, true)) -- no error text for the client

      -- the REST draft format needs a TURN entry: 503, and why in the log
      res = fetch(srv:url("/ice-servers?format=rest&service=turn"))
      assert.are.equal(503, res.status)
      assert_json_headers(res)
      assert.are.equal('{"error":"no TURN servers available"}', res.body)
      local log = srv:error_log()
      assert.matches("every provider failed: metered: 500[^\n]*serving STUN only", log)
      assert.matches("%[error%][^\n]*iceservers: [^\n]*TURN", log)
      assert_not_in(log, mockc.METERED_KEY, "the error log")
      local m = metrics_when(srv, function(now) return (now.degraded or {}).stun == 2 end)
      assert.is_true(m.failure.metered >= 1)
      assert.are.equal(2, m.degraded.stun)
      assert.is_true(m.miss.metered >= 1)
      assert.is_nil(m.hit)
    end)

    it("answers 503 while the configuration is bad, and logs why (no secret)", function()
      local srv = example { TURN_PROVIDER = "coturn", TURN_SECRET = SECRET } -- no TURN_URLS
      finally(function() srv:stop() end)
      for _ = 1, 2 do
        local res = fetch(srv:url("/ice-servers"))
        assert.are.equal(503, res.status)
        assert_json_headers(res)
        assert.are.equal(NOT_CONFIGURED, res.body)
      end
      local log = srv:error_log()
      assert.matches("%[error%][^\n]*iceservers: [^\n]*TURN_URLS", log)
      assert_not_in(log, SECRET, "the error log")
    end)

    it("tries a bad configuration again at most every 5 s, after the key", function()
      local srv = example { TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
        ICESERVERS_API_KEY = ENV_KEY }
      finally(function() srv:stop() end)
      -- without the key: 401, and the configuration is not even built
      for _, method in ipairs { "GET", "POST" } do
        local req = janus(srv:url("/ice-servers"), method, "wrong")
        assert.are.equal(401, fetch(req.url, req).status)
      end
      assert.is_nil(srv:error_log():find("TURN_URLS", 1, true), srv:error_log())

      local t0 = nginx.now()
      for i = 1, 20 do
        local req = janus(srv:url("/ice-servers"), i % 2 == 0 and "POST" or "GET", ENV_KEY)
        local res = fetch(req.url, req)
        assert.are.equal(503, res.status, res.body)
        assert.are.equal(NOT_CONFIGURED, res.body)
      end
      local before = assert_once_per_window(srv:error_log(), "TURN_URLS", nginx.now() - t0)

      -- once the window has passed, the next request builds it again (and logs)
      nginx.sleep(RETRY + 0.5)
      local req = janus(srv:url("/ice-servers"), "GET", ENV_KEY)
      assert.are.equal(503, fetch(req.url, req).status)
      local log = srv:error_log()
      local _, after = lines_per_pid(log, "TURN_URLS")
      assert.are.equal(before + 1, after, log)
      assert.is_nil(log:find("iceservers: iceservers:", 1, true), log)
      -- (Janus' ?api= is in these lines' request: "...": nginx's, not ours)
      assert_not_in(log, SECRET, "the error log")
    end)

    it("answers 503 to format=rest when only STUN is configured", function()
      local srv = example { STUN_URLS = STUN }
      finally(function() srv:stop() end)
      local res = fetch(srv:url("/ice-servers"))
      assert.are.equal(200, res.status)
      assert.are.same({ iceServers = { { urls = { STUN } } } }, decode(res))
      res = fetch(srv:url("/ice-servers?format=rest"))
      assert.are.equal(503, res.status)
      assert.are.equal('{"error":"no TURN servers available"}', res.body)
      assert.matches("%[error%][^\n]*iceservers: ", srv:error_log())
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the example nginx.conf under 200 concurrent requests", function()
    it("calls a REST provider once for all of them across two workers", function()
      local tag = "pile-d300"
      local srv = example(metered_env(tag))
      finally(function() srv:stop() end)

      local res = fetch(mock:url("/drive"), { method = "POST", timeout = 60,
        body = cjson.encode { url = srv:url("/ice-servers"), n = 200 } })
      assert.are.equal(200, res.status, res.body)
      local got = decode(res)
      assert.are.same({}, got.errors)
      assert.are.same({ ["200"] = 200 }, got.statuses)
      assert.are.equal(200, got.turn) -- every answer carries the provider's TURN servers
      assert.are.equal(1, calls(tag))

      local m = metrics_when(srv, function(now)
        return ((now.hit or {}).metered or 0) + ((now.miss or {}).metered or 0) >= 200
      end)
      assert.are.equal(1, m.upstream.metered)
      local hit, miss = (m.hit or {}).metered or 0, (m.miss or {}).metered or 0
      assert.are.equal(200, hit + miss)
      assert.is_true(miss >= 2, "the requests did not pile up: " .. res.body)
      assert.is_true(m.upstream_ms.metered >= 290, "upstream_ms " .. m.upstream_ms.metered)
      assert.is_nil(m.failure)
      assert.is_nil(m.stale)
      assert.is_nil(m.degraded)

      -- warm now: served from the shared dict, still one call
      res = fetch(mock:url("/drive"), { method = "POST", timeout = 60,
        body = cjson.encode { url = srv:url("/ice-servers"), n = 20 } })
      got = decode(res)
      assert.are.same({ ["200"] = 20 }, got.statuses)
      assert.are.equal(20, got.turn)
      assert.are.equal(1, calls(tag))
      m = metrics_when(srv, function(now) return now.hit.metered >= hit + 20 end)
      assert.are.equal(hit + 20, m.hit.metered)
      assert.are.equal(miss, m.miss.metered)
      assert.are.equal(1, m.upstream.metered)

      -- both workers served (each warned once about the open endpoint)
      local per_pid, total = open_warnings(srv:error_log())
      local workers = worker_pids(srv)
      assert.are.equal(2, total, srv:error_log())
      for pid, n in pairs(per_pid) do
        assert.are.equal(1, n)
        assert.is_true(workers[pid], pid .. " is not a worker of this nginx")
      end
      assert.is_nil(srv:error_log():find("%[error%]"), srv:error_log())
    end)
  end)

  ---------------------------------------------------------------------------
  describe("serve() options (a generated config, one worker)", function()
    local srv

    lazy_setup(function()
      local tp = mock.tls_port
      srv = nginx.start{
        tls = false,
        main = "env TURN_PROVIDER; env TURN_SECRET; env TURN_URLS; env STUN_URLS;",
        env = COTURN_ENV,
        http = ([[
          lua_shared_dict iceservers 1m;
          lua_ssl_trusted_certificate %s;
          init_worker_by_lua_block {
            local ingx = require "iceservers.ngx"
            package.loaded["spec.ngx_brokers"] = {
              slow = ingx.new {
                providers = "metered", stun_urls = "", http_timeout = 10,
                ca_file = "%s", -- for libcurl: a blocking transport would then reach the mock
                metered = { api_url = "https://mock.test:%d/metered/slow-d2000",
                            api_key = "%s" },
                resolve = { ["mock.test:%d"] = "127.0.0.1" },
              },
            }
          }
        ]]):format(mock.ca_file, mock.ca_file, tp, mockc.METERED_KEY, tp),
        server = ([[
          location = /ice {
            content_by_lua_block {
              require("iceservers.ngx").serve(nil, { api_key = "%s", user_from_query = true,
                cors_origin = "%s" })
            }
          }
          location = /ice-user {
            content_by_lua_block {
              require("iceservers.ngx").serve(nil, { user_from_query = true,
                user = function(ngx) return ngx.var.http_x_user end })
            }
          }
          location = /ice-open {
            content_by_lua_block { require("iceservers.ngx").serve() }
          }
          location = /ice-bad {
            content_by_lua_block {
              local keys = { empty = "", number = 42, ["false"] = false, table = {} }
              local case = ngx.var.arg_case
              require("iceservers.ngx").serve(nil, case == "misspelt" and { apikey = "k" }
                or { api_key = keys[case] })
            }
          }
          location = /check {
            content_by_lua_block {
              local keys = { empty = "", number = 42, ["false"] = false, ok = "x" }
              local case = ngx.var.arg_case
              local opts = case and { api_key = keys[case] } or nil
              if case == "misspelt" then opts = { apikey = "k" } end
              local ok, err = pcall(require("iceservers.ngx").check, opts)
              ngx.print(require("cjson").encode { ok = ok, err = not ok and err or nil })
            }
          }
          location = /ice-slow {
            content_by_lua_block {
              require("iceservers.ngx").serve(require("spec.ngx_brokers").slow)
            }
          }
        ]]):format(API_KEY, CORS),
      }
    end)

    lazy_teardown(function() if srv then srv:stop() end end)

    -- as a browser of the allowed origin asks (cors_origin: only it may)
    local function ice(query, req)
      req = req or {}
      req.headers = req.headers or {}
      if req.headers.Origin == nil then req.headers.Origin = CORS end
      if req.headers.Origin == false then req.headers.Origin = nil end
      return fetch(srv:url("/ice" .. (query or "")), req)
    end

    local function assert_cors(res)
      assert.are.equal(CORS, res.headers["access-control-allow-origin"])
      assert.are.equal("Origin", res.headers.vary)
    end

    describe("api_key", function()
      it("answers 401 without a key or with a wrong one", function()
        local cases = {
          { "" }, { "?key=" }, { "?key" }, { "?key=k3" }, { "?key=k3yy" }, { "?api=K3Y" },
          { "", { headers = { ["X-Api-Key"] = "nope" } } },
          { "", { method = "POST", body = "key=wrong",
            headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } } },
          -- a key in a body that is not a form is not read
          { "", { method = "POST", body = "key=" .. API_KEY,
            headers = { ["Content-Type"] = "text/plain" } } },
        }
        for _, case in ipairs(cases) do
          local res = ice(case[1], case[2])
          assert.are.equal(401, res.status, case[1])
          assert_json_headers(res)
          assert_cors(res)
          assert.are.same({ error = "unauthorized" }, decode(res))
          assert_not_in(res.body, SECRET, "a 401 body")
        end
      end)

      it("accepts the key as ?key=, ?api=, a form field or an X-Api-Key header", function()
        local cases = {
          { "?key=" .. API_KEY }, { "?api=" .. API_KEY },
          { "", { headers = { ["X-Api-Key"] = API_KEY } } },
          { "", { method = "POST", body = "key=" .. API_KEY,
            headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } } },
          { "?format=rest", { method = "POST", body = "service=turn&api=" .. API_KEY,
            headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } } },
        }
        for i, case in ipairs(cases) do
          local res = ice(case[1], case[2])
          assert.are.equal(200, res.status, "case " .. i .. ": " .. res.body)
          assert_json_headers(res)
          assert_cors(res)
          local doc = decode(res)
          if case[1] == "?format=rest" then
            assert.are.equal(signed(doc.username), doc.password)
          else
            assert_coturn_webrtc(doc, nil)
          end
        end
      end)
    end)

    describe("a bad api_key or a misspelt option", function()
      local CASES = { empty = "opts.api_key is empty", number = "opts.api_key is a number",
        ["false"] = "opts.api_key is a boolean", table = "opts.api_key is a table",
        -- a misspelt api_key would otherwise leave the endpoint open
        misspelt = "opts.apikey is not an option of serve()" }

      it("is a configuration error: 503 to every request, one error line per worker",
        function()
          local t0 = nginx.now()
          for case in pairs(CASES) do
            for _, key in ipairs { false, "", "x", API_KEY } do
              for _, method in ipairs { "GET", "POST" } do
                local url = srv:url("/ice-bad?case=" .. case .. (key and "&key=" .. key or ""))
                local res = fetch(url, { method = method })
                assert.are.equal(503, res.status, case .. ": " .. res.body)
                assert_json_headers(res)
                assert.are.equal(NOT_CONFIGURED, res.body)
              end
            end
          end
          local log, elapsed = srv:error_log(), nginx.now() - t0
          for _, message in pairs(CASES) do
            assert_once_per_window(log, message, elapsed)
            assert.matches("%[error%][^\n]*iceservers: " .. message:gsub("%p", "%%%0"), log)
          end
        end)

      it("is raised by check(opts), for init_worker_by_lua", function()
        for case, message in pairs(CASES) do
          if case ~= "table" then
            local got = decode(fetch(srv:url("/check?case=" .. case)))
            assert.is_false(got.ok, case)
            assert.matches("^iceservers: " .. message:gsub("%p", "%%%0"), got.err)
            assert.is_nil(got.err:find("\n"), got.err)
          end
        end
        assert.are.same({ ok = true }, decode(fetch(srv:url("/check?case=ok"))))
        assert.are.same({ ok = true }, decode(fetch(srv:url("/check")))) -- no key: fine
      end)
    end)

    describe("cors_origin", function()
      it("answers an OPTIONS preflight with 204 and the CORS headers, no key needed", function()
        local res = ice(nil, { method = "OPTIONS", headers = {
          Origin = CORS, ["Access-Control-Request-Method"] = "GET",
          ["Access-Control-Request-Headers"] = "x-api-key" } })
        assert.are.equal(204, res.status)
        assert.are.equal("", res.body)
        assert_cors(res)
        assert.are.equal("GET, POST, OPTIONS", res.headers["access-control-allow-methods"])
        assert.matches("X%-Api%-Key", res.headers["access-control-allow-headers"])
        assert.matches("Content%-Type", res.headers["access-control-allow-headers"])
        assert.are.equal("600", res.headers["access-control-max-age"])
      end)

      it("refuses another origin with 403, and passes a request without one", function()
        local res = ice("?key=" .. API_KEY, { headers = { Origin = "https://evil.example" } })
        assert.are.equal(403, res.status)
        assert.are.same({ error = "origin not allowed" }, decode(res))
        assert_no_cors(res)
        res = ice(nil, { method = "OPTIONS", headers = { Origin = "https://evil.example" } })
        assert.are.equal(403, res.status)
        res = ice("?key=" .. API_KEY, { headers = { Origin = false } })
        assert.are.equal(200, res.status)
        assert_no_cors(res)
      end)

      it("puts Allow-Origin on every answer to it, and OPTIONS into Allow of a 405", function()
        local res = ice(nil, { method = "DELETE" })
        assert.are.equal(405, res.status)
        assert_cors(res)
        assert.are.equal("GET, POST, OPTIONS", res.headers.allow)
        res = ice("?key=" .. API_KEY .. "&format=bad")
        assert.are.equal(400, res.status)
        assert_cors(res)
      end)

      it("is absent where cors_origin is not set", function()
        local res = fetch(srv:url("/ice-open"))
        assert.are.equal(200, res.status)
        assert_no_cors(res)
        res = fetch(srv:url("/ice-open"), { method = "OPTIONS", headers = { Origin = CORS } })
        assert.are.equal(405, res.status)
        assert_no_cors(res)
      end)
    end)

    describe("the user", function()
      it("comes from ?username= (or ?user=) with user_from_query", function()
        local res = ice("?key=" .. API_KEY .. "&username=alice")
        assert.are.equal(200, res.status)
        assert_coturn_webrtc(decode(res), "alice")
        res = ice("?key=" .. API_KEY .. "&user=carol")
        assert_coturn_webrtc(decode(res), "carol")
        res = ice("?key=" .. API_KEY .. "&format=rest&service=turn&username=alice")
        local doc = decode(res)
        assert.matches("^%d+:alice$", doc.username)
        assert.are.equal(signed(doc.username), doc.password)
        -- an empty username is no user
        res = ice("?key=" .. API_KEY .. "&username=")
        assert_coturn_webrtc(decode(res), nil)
      end)

      it("is refused with 400 when the query's username is not a valid user id", function()
        for _, name in ipairs { string.rep("u", 257), "a%0Ab", "a%09b", "%7F" } do
          local res = ice("?key=" .. API_KEY .. "&username=" .. name)
          assert.are.equal(400, res.status, name)
          assert_json_headers(res)
          assert.are.same({ error = "invalid username" }, decode(res))
        end
        local res = ice("?key=" .. API_KEY .. "&username=" .. string.rep("u", 256))
        assert_coturn_webrtc(decode(res), string.rep("u", 256))
        assert.is_nil(srv:error_log():find("%[error%][^\n]*invalid user"), srv:error_log())
      end)

      it("is refused with 400 when the broker or coturn refuses it", function()
        -- invalid UTF-8 (the broker); a quote and a space (coturn's user names)
        for _, name in ipairs { "%C3%28", "%FF", "o%27brien", "a%20b", "a+b" } do
          local res = ice("?key=" .. API_KEY .. "&username=" .. name)
          assert.are.equal(400, res.status, name .. ": " .. res.body)
          assert_json_headers(res)
          assert.are.same({ error = "invalid username" }, decode(res))
        end
        -- UTF-8 is fine
        local res = ice("?key=" .. API_KEY .. "&username=" .. escape("zoë"))
        assert_coturn_webrtc(decode(res), "zoë")
      end)

      it("comes from Janus' username= with Janus' key, with and without a query", function()
        for _, configured in ipairs(janus_urls(srv:url("/ice"))) do
          for _, method in ipairs { "GET", "POST" } do
            local req = janus(configured, method, API_KEY, JANUS_USER)
            local res = fetch(req.url, req)
            assert.are.equal(200, res.status, method .. " " .. req.url .. ": " .. res.body)
            assert_coturn_rest(decode(res), JANUS_USER, req.url)
          end
        end
        -- the key in turn_rest_api's own query ("?key=K" then Janus' "?service=turn...")
        local req = janus(srv:url("/ice?key=" .. API_KEY), "GET", nil, "bob")
        local res = fetch(req.url, req)
        assert.are.equal(200, res.status, res.body)
        assert_coturn_rest(decode(res), "bob")
      end)

      it("comes from opts.user(ngx) when given, before the query", function()
        local res = fetch(srv:url("/ice-user?username=eve"), { headers = { ["X-User"] = "bob" } })
        assert.are.equal(200, res.status, res.body)
        assert_coturn_webrtc(decode(res), "bob")
        res = fetch(srv:url("/ice-user?format=rest"), { headers = { ["X-User"] = "bob" } })
        assert.matches("^%d+:bob$", decode(res).username)
        -- opts.user answered nil: no user, whatever the query says
        res = fetch(srv:url("/ice-user?username=eve"))
        assert.are.equal(200, res.status)
        assert_coturn_webrtc(decode(res), nil)
      end)
    end)

    describe("a slow provider", function()
      local LUA = rawget(_G, "jit") and "luajit" or "lua5.4"
      local ABI = rawget(_G, "jit") and "5.1" or "5.4"
      local CLIENT = [[
        local cpath, url, out = ...
        package.cpath = cpath
        local core = require "iceservers.core"
        local t0 = core.monotonic()
        local res, err = core.http_request { url = url, timeout = 30 }
        local f = assert(io.open(out .. ".tmp", "w"))
        f:write(("%.3f\n%s\n%s"):format(core.monotonic() - t0, res and res.status or "-",
          res and res.body or err))
        f:close()
        assert(os.rename(out .. ".tmp", out))
      ]]

      it("does not block the worker: another location answers meanwhile", function()
        local dir = sh.tmpdir("ngxspec")
        finally(function() sh.rmrf(dir) end)
        sh.write_file(dir .. "/client.lua", CLIENT)
        local out = dir .. "/slow.out"
        local cpath = srv.root .. "/build/" .. ABI .. "/?.so"
        local t_start = nginx.now()
        assert(sh.run_clean(("%s %s %s %s %s >%s 2>&1 &"):format(LUA,
          sh.quote(dir .. "/client.lua"), sh.quote(cpath), sh.quote(srv:url("/ice-slow")),
          sh.quote(out), sh.quote(dir .. "/client.log"))))

        -- the slow request is in the worker once the mock has seen its call
        local deadline = nginx.now() + 15
        while calls("slow-d2000") < 1 do
          assert(nginx.now() < deadline, "the slow request never reached the provider: "
            .. (sh.read_file(dir .. "/client.log") or ""))
          nginx.sleep(0.02)
        end

        local t0 = nginx.now()
        local res = fetch(srv:url("/ice-open"))
        local fast = nginx.now() - t0
        local slow_done = sh.read_file(out) ~= nil
        assert.are.equal(200, res.status)
        assert_coturn_webrtc(decode(res), nil)
        assert.is_true(fast < 1.5, ("the fast request took %.2f s"):format(fast))
        assert.is_false(slow_done, "the slow request finished before the fast one")

        deadline = nginx.now() + 20
        while not sh.read_file(out) do
          assert(nginx.now() < deadline, "the slow request did not finish: "
            .. (sh.read_file(dir .. "/client.log") or ""))
          nginx.sleep(0.05)
        end
        local slow, status, body = sh.read_file(out):match("^([%d.]+)\n(%S+)\n(.*)$")
        assert.are.equal("200", status, body)
        assert.is_true(tonumber(slow) >= 1.95, "the slow request took " .. slow .. " s")
        assert.is_true(nginx.now() - t_start >= 1.95)
        local doc = cjson.decode(body)
        assert.are.equal(mockc.TURN.username, doc.iceServers[2].username)
        assert.are.equal(1, calls("slow-d2000"))
      end)
    end)

    it("warned about the open endpoint once in this one-worker nginx", function()
      for _ = 1, 3 do fetch(srv:url("/ice-open")) end
      local log = srv:error_log()
      local _, total = open_warnings(log)
      assert.are.equal(1, total, log)
      assert_not_in(log, SECRET, "the error log")
      assert_not_in(log, mockc.METERED_KEY, "the error log")
    end)
  end)

  ---------------------------------------------------------------------------
  describe("ICESERVERS_API_KEY in a generated config", function()
    local function start(key)
      local env = { ICESERVERS_API_KEY = key }
      for k, v in pairs(COTURN_ENV) do env[k] = v end
      return nginx.start{
        tls = false, env = env,
        main = "env TURN_PROVIDER; env TURN_SECRET; env TURN_URLS; env STUN_URLS; "
          .. "env ICESERVERS_API_KEY;",
        http = [[
          lua_shared_dict iceservers 1m;
          init_worker_by_lua_block { require("iceservers.ngx").check() }
        ]],
        server = ([[
          location = /ice { content_by_lua_block { require("iceservers.ngx").serve() } }
          location = /ice-opt {
            content_by_lua_block { require("iceservers.ngx").serve(nil, { api_key = "%s" }) }
          }
        ]]):format(API_KEY),
      }
    end

    it("set but empty: check() raises in init_worker_by_lua, serve() answers 503", function()
      local srv = start("")
      finally(function() srv:stop() end)
      local res = fetch(srv:url("/ice?key="))
      assert.are.equal(503, res.status)
      assert.are.equal(NOT_CONFIGURED, res.body)
      assert.matches("init_worker_by_lua[^\n]*iceservers: ICESERVERS_API_KEY is set but empty",
        srv:error_log())
      -- opts.api_key wins over the variable
      assert.are.equal(401, fetch(srv:url("/ice-opt")).status)
      res = fetch(srv:url("/ice-opt?key=" .. API_KEY))
      assert.are.equal(200, res.status, res.body)
      assert_coturn_webrtc(decode(res), nil)
    end)

    it("set: opts.api_key still wins over it", function()
      local srv = start(ENV_KEY)
      finally(function() srv:stop() end)
      assert.are.equal(200, fetch(srv:url("/ice?key=" .. ENV_KEY)).status)
      assert.are.equal(401, fetch(srv:url("/ice")).status)
      assert.are.equal(401, fetch(srv:url("/ice-opt?key=" .. ENV_KEY)).status)
      assert.are.equal(200, fetch(srv:url("/ice-opt?key=" .. API_KEY)).status)
      assert.is_nil(srv:error_log():find("%[error%]"), srv:error_log())
    end)
  end)
end)
