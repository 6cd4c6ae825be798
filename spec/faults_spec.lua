-- Faults between iceservers and a provider's API, with both transports: a
-- connection reset mid-body, a close mid-body, a TLS handshake that fails (a
-- plain-HTTP port spoken to with https, a certificate the client does not
-- trust), a name that does not resolve, a server that drips one byte a second
-- (the total timeout must hold), a 200 with a chunked body cut before its
-- 0-chunk, and a 429 with Retry-After (the backoff honours it).  Each must end
-- in bounded time with the STUN fallback (meta.degraded, one line naming the
-- provider) or nil, err (TURN_FALLBACK=none), and no secret may show in the
-- error or in any log line.
--
-- The brokers are configured as operators do, with iceservers.from_env, and
-- run (1) here, on the libcurl client, and (2) inside a second nginx (the
-- "client"), on the cosocket transport: its /broker location builds the
-- broker from the JSON env the request carries, keeps it per id, calls get at
-- the clock the request gives and answers {servers, meta, err, logs, elapsed}
-- (spec/support/fault_mock.lua).  The faults are served by one nginx (the
-- "server", spec/support/fault_mock.lua), which counts the calls.
local iceservers = require "iceservers"
local core = require "iceservers.core"
local cjson = require "cjson"
local nginx = require "support.nginx"
local sh = require "support.sh"
local fault = require "support.fault_mock"

-- Under valgrind or ASan (ICESERVERS_SLOW, set by scripts/test.sh) the busted
-- process, and so the libcurl transport, is many times slower: timeouts that
-- must not fire and every time bound scale with it.
local SLOW = sh.SLOW
local SCALE = SLOW and 2.5 or 1
local TIMEOUT = SLOW and 5 or 1.5 -- ICESERVERS_HTTP_TIMEOUT where the fault ends the call
local DRIP_TIMEOUT = 2            -- ICESERVERS_HTTP_TIMEOUT against a dripping server
local RESOLVER_TIMEOUT = 1        -- the client nginx's resolver_timeout
local T0 = 1800000000             -- the brokers' clock
local STUN = "stun:stun.fault.test:3478"

-- Distinctive secrets, configured as operators do; none may show anywhere.
local S = {
  metered_key = "MK-FAULT-SECRET-Qh7Tz3Vw",
  cf_key_id = "cffault0123456789abcdef",
  cf_token = "CF-FAULT-SECRET-Wd4Ln8Jp",
  twilio_sid = "AC0123456789abcdef0123456789abcdef",
  twilio_token = "TW-FAULT-SECRET-Pb2Ry6Kc",
}

-- The base64 of a Basic credential from its first group that encodes password
-- bytes only (what comes before encodes the account SID, no secret).
local function basic(user, password)
  local b64 = core.b64encode(user .. ":" .. password)
  return (b64:sub(4 * math.ceil((#user + 1) / 3) + 1):gsub("=+$", ""))
end

local SECRETS = { S.metered_key, S.cf_token, S.twilio_token, basic(S.twilio_sid, S.twilio_token) }

local _, assert_clean = require("support.leaks")(SECRETS)

local function assert_one_line(text, what)
  assert.is_string(text, what)
  assert(not text:find("[\r\n]"), what .. " is not one line: " .. text)
end

-- The providers, as an operator configures them; base is the API's base URL.
local PROVIDERS = {
  metered = function(base)
    return { TURN_PROVIDER = "metered", TURN_API_URL = base, TURN_API_KEY = S.metered_key }
  end,
  cloudflare = function(base)
    return { TURN_PROVIDER = "cloudflare", CLOUDFLARE_API_URL = base,
      CLOUDFLARE_TURN_KEY_ID = S.cf_key_id, CLOUDFLARE_TURN_KEY_API_TOKEN = S.cf_token }
  end,
  twilio = function(base)
    return { TURN_PROVIDER = "twilio", TWILIO_API_URL = base,
      TWILIO_ACCOUNT_SID = S.twilio_sid, TWILIO_AUTH_TOKEN = S.twilio_token }
  end,
}

local function merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do out[k] = v end
  end
  return out
end

local srv, client   -- the faults; the nginx whose /broker runs the cosocket transport
local other_dir     -- a CA that signed nothing the server shows
local pids = {}     -- every nginx process started here, checked at the end

local function record_pids(server)
  pids[#pids + 1] = server.pid
  local _, out = sh.run_clean("ps -o pid= --ppid " .. server.pid)
  for pid in out:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
end

describe("provider faults", function()
  local serial = 0
  local function next_id()
    serial = serial + 1
    return serial
  end

  lazy_setup(function()
    srv = nginx.start{
      http = [[ lua_shared_dict fault_mock 1m; ]],
      server = [[
        location /f/ {
          reset_timedout_connection on;
          content_by_lua_file ${root}/spec/support/fault_mock.lua;
        }
        location /fcount/ { content_by_lua_file ${root}/spec/support/fault_mock.lua; }
      ]],
    }
    record_pids(srv)
    other_dir = sh.tmpdir("otherca")
    nginx.make_ca(other_dir, "another CA")
    -- A resolver on a UDP port nobody serves: every lookup fails when
    -- resolver_timeout has passed (nginx's resolver ignores /etc/hosts;
    -- mock.test and localhost are pinned by ICESERVERS_RESOLVE).  Note that
    -- it is resolver_timeout (nginx's default: 30 s), not the cosocket's
    -- timeouts, that bounds a lookup: hence 1 s here.
    client = nginx.start{
      tls = false,
      http = ([[
        lua_ssl_trusted_certificate %s;
        lua_ssl_verify_depth 4;
        resolver 127.0.0.1:%d ipv6=off;
        resolver_timeout %ds;
      ]]):format(srv.ca_file, nginx.free_port(), RESOLVER_TIMEOUT),
      server = ([[
        location = /broker { content_by_lua_file ${root}/spec/support/fault_mock.lua; }
        location = /broker-untrusting {
          lua_ssl_trusted_certificate %s/ca.crt;
          content_by_lua_file ${root}/spec/support/fault_mock.lua;
        }
      ]]):format(other_dir),
    }
    record_pids(client)
  end)

  lazy_teardown(function()
    if client then client:stop() end
    if srv then srv:stop() end
    if other_dir then sh.rmrf(other_dir) end
  end)

  local function count(scenario)
    local res, err = core.http_request{ url = srv:url("/fcount/" .. scenario), timeout = 10 }
    assert(res, err)
    assert.are.equal(200, res.status)
    return tonumber(res.body)
  end

  -- The environment every broker gets, plus the provider's and overrides.
  local function env_for(provider, base, fallback, more)
    return merge({
      STUN_URLS = STUN, TURN_FALLBACK = fallback,
      ICESERVERS_CA_FILE = srv.ca_file,
      ICESERVERS_RESOLVE = ("mock.test:%d:127.0.0.1,mock.test:%d:127.0.0.1,localhost:%d:127.0.0.1")
        :format(srv.tls_port, srv.port, srv.tls_port),
      ICESERVERS_HTTP_TIMEOUT = tostring(TIMEOUT),
      ICESERVERS_CONNECT_TIMEOUT = tostring(math.max(2, TIMEOUT)),
    }, PROVIDERS[provider](base), more or {})
  end

  -- The two transports.  make(env[, location]) returns get(now) -> r =
  -- {servers =, meta =, err =, logs =, elapsed =} of one broker:get("alice").
  local TRANSPORTS = {
    {
      name = "libcurl",
      make = function(env)
        local logs, clock = {}, { t = T0 }
        local broker = iceservers.from_env(env, {
          log = function(level, msg) logs[#logs + 1] = level .. ": " .. msg end,
          now = function() return clock.t end,
        })
        return function(now)
          clock.t = now or T0
          logs = {} -- this get's lines only
          local t0 = nginx.now()
          local servers, meta = broker:get("alice")
          local r = { elapsed = nginx.now() - t0, logs = logs }
          if servers then r.servers, r.meta = servers, meta else r.err = meta end
          return r
        end
      end,
    },
    {
      name = "cosocket",
      make = function(env, location)
        local id = "broker-" .. next_id()
        return function(now)
          local t0 = nginx.now()
          local res, err = core.http_request{ method = "POST",
            url = client:url(location or "/broker"), timeout = 60,
            body = cjson.encode { id = id, env = env, now = now or T0, user = "alice" } }
          local outside = nginx.now() - t0
          assert(res, err)
          assert.are.equal(200, res.status, res.body)
          local r = cjson.decode(res.body)
          assert.is_true(r.cosocket, "the broker did not run in a cosocket phase")
          -- the handler's own time, and what it cost seen from here
          assert.is_true(outside < r.elapsed + 2 * SCALE,
            ("the handler took %.2f s, get %.2f s"):format(outside, r.elapsed))
          return r
        end
      end,
    },
  }

  -- A provider's failure, ended in bounded time: the STUN fallback, or nil,
  -- err with TURN_FALLBACK=none; one line naming the provider and holding
  -- `says`; no secret in the error or the logs, no path in the logs.  The
  -- fallback's warning is logged once a minute: `quiet` when none is due.
  local function assert_failed(r, provider, fallback, says, bound, quiet)
    assert.is_true(r.elapsed < bound, ("took %.2f s, bound %.1f s"):format(r.elapsed, bound))
    local line
    if fallback == "none" then
      assert.is_nil(r.servers)
      assert_one_line(r.err, "the error")
      local prefix = "every provider failed: " .. provider .. ": "
      assert.are.equal(prefix, r.err:sub(1, #prefix), r.err)
      line = r.err
    else
      assert.is_nil(r.err)
      assert.are.same({ { urls = { STUN } } }, r.servers)
      assert.are.equal("stun", r.meta.provider)
      assert.is_true(r.meta.degraded)
      assert.are.equal(1, #r.meta.errors)
      line = r.meta.errors[1]
      assert_one_line(line, "meta.errors[1]")
      assert.are.equal(provider .. ": ", line:sub(1, #provider + 2), line)
      local warned = false
      for _, l in ipairs(r.logs) do
        if l:match("^warn: every provider failed: " .. provider .. ": ") then warned = true end
      end
      assert.are.equal(not quiet, warned, "the warnings: " .. table.concat(r.logs, " | "))
    end
    if type(says) == "string" then says = { says } end
    local found
    for _, s in ipairs(says) do found = found or line:find(s) end
    assert.is_truthy(found, ("%q says none of %s"):format(line, table.concat(says, ", ")))
    assert_clean(line, "the error")
    for _, l in ipairs(r.logs) do
      assert_one_line(l, "a log line")
      assert_clean(l, "a log line")
      assert.is_nil(l:find("/f/", 1, true), "a log line shows a path: " .. l)
    end
    return line
  end

  local function tls_base(scenario, host)
    return ("https://%s:%d/f/%s"):format(host or "mock.test", srv.tls_port, scenario)
  end

  local function plain_base(scenario)
    return ("http://mock.test:%d/f/%s"):format(srv.port, scenario)
  end
  -- what a broker needs to take plain_base's URLs (http:// is for tests only)
  local PLAIN = { ICESERVERS_ALLOW_HTTP = "1" }

  --[[ The faults.  base(scenario) is the provider's base URL; says[transport]
  the patterns (any of them) its error must hold; providers the ones it is
  tried with, alternating the STUN fallback and TURN_FALLBACK=none; bound the
  time the call must end in; calls how many calls the server must have seen
  (nil: not counted, the request never reached a handler). ]]
  local FAULTS = {
    {
      what = "a connection reset (RST) mid-body, over https", fault = "reset",
      base = tls_base, calls = 1,
      -- nginx's SSL layer reports a reset during SSL_read as "closed"
      says = { libcurl = "Connection reset by peer", cosocket = ": closed$" },
    },
    {
      what = "a connection reset (RST) mid-body, over http", fault = "reset",
      base = plain_base, calls = 1, more = PLAIN,
      says = { libcurl = "Connection reset by peer", cosocket = "connection reset by peer" },
    },
    {
      what = "a connection closed mid-body (Content-Length not reached)", fault = "close",
      base = tls_base, calls = 1,
      says = { libcurl = "transfer closed with 64 bytes remaining", cosocket = ": closed$" },
    },
    {
      what = "a 200 with a chunked body cut before its 0-chunk", fault = "chunkcut",
      base = tls_base, calls = 1,
      says = { libcurl = "transfer closed with outstanding read data", cosocket = ": closed$" },
    },
    {
      what = "https spoken to a plain-HTTP port", fault = "ok",
      base = function(scenario)
        return ("https://mock.test:%d/f/%s"):format(srv.port, scenario)
      end,
      says = { libcurl = { "SSL", "TLS" }, cosocket = "TLS handshake failed" },
    },
    {
      what = "a TLS server whose certificate the client does not trust", fault = "ok",
      -- localhost, a name no other test uses from the client nginx: its
      -- cosocket pool must hold no connection verified by the trusting location
      base = function(scenario) return tls_base(scenario, "localhost") end,
      untrusting = true,
      says = { libcurl = "certificate", cosocket = "TLS handshake failed: .*certificate" },
    },
    {
      what = "a name that does not resolve", fault = "ok",
      base = function(scenario)
        return ("https://no-such-host.invalid:%d/f/%s"):format(srv.tls_port, scenario)
      end,
      -- libcurl asks the system resolver: "Could not resolve host", or, on a
      -- host whose DNS does not answer, a timeout
      says = { libcurl = { "resolve host: no%-such%-host%.invalid", "timed out after" },
        cosocket = "no%-such%-host%.invalid could not be resolved" },
    },
    {
      what = "a header block over 64 KiB, sent at once", fault = "bighead",
      base = tls_base, calls = 1, providers = { "metered", "cloudflare" },
      says = { libcurl = "response headers over 65536 bytes$",
        cosocket = "response headers over 65536 bytes$" },
    },
    {
      what = "a 200 whose body drips one byte a second (Content-Length)", fault = "drip",
      base = tls_base, calls = 1, drip = true, providers = { "metered", "twilio" },
    },
    {
      what = "a 200 whose chunked body drips one byte a second", fault = "dripchunk",
      base = tls_base, calls = 1, drip = true, providers = { "cloudflare" },
    },
    {
      what = "a status line, then a header that drips one byte a second", fault = "driphead",
      base = tls_base, calls = 1, drip = true, providers = { "twilio", "metered" },
    },
  }

  for _, transport in ipairs(TRANSPORTS) do
    describe("on the " .. transport.name .. " transport", function()
      for _, f in ipairs(FAULTS) do
        local providers = f.providers or { "metered", "cloudflare", "twilio" }
        for i, provider in ipairs(providers) do
          local fallback = i % 2 == 1 and "stun" or "none"
          it(("%s: %s, TURN_FALLBACK=%s"):format(f.what, provider, fallback), function()
            local scenario = f.fault .. "." .. next_id()
            local more, says, bound = f.more
            if f.drip then
              more = { ICESERVERS_HTTP_TIMEOUT = tostring(DRIP_TIMEOUT) }
              says = ("timed out after %d ms$"):format(DRIP_TIMEOUT * 1000)
              bound = 3 * DRIP_TIMEOUT * SCALE
            else
              says = f.says[transport.name]
              bound = 3 * TIMEOUT
            end
            if f.untrusting and transport.name == "libcurl" then
              more = { ICESERVERS_CA_FILE = other_dir .. "/ca.crt" }
            end
            local get = transport.make(env_for(provider, f.base(scenario), fallback, more),
              f.untrusting and "/broker-untrusting" or nil)
            local r = get(T0)
            assert_failed(r, provider, fallback, says, bound)
            if f.drip then -- the total timeout fired, not some other limit
              assert.is_true(r.elapsed > 0.9 * DRIP_TIMEOUT, ("took %.2f s"):format(r.elapsed))
            end
            assert.are.equal(f.calls or 0, count(scenario))
          end)
        end
      end

      -----------------------------------------------------------------------
      describe("a 429 with Retry-After: 30", function()
        -- Runs get at T0 + each offset; checks the calls the 429 provider
        -- has seen after each; returns the results.
        local function timeline(get, scenario, steps)
          local out = {}
          for i, step in ipairs(steps) do
            out[i] = get(T0 + step[1])
            assert.are.equal(step[2], count(scenario),
              ("calls after the get at T0+%d"):format(step[1]))
          end
          return out
        end

        it("is not called again for 30 s; the next provider serves meanwhile", function()
          local throttled, ok = "429." .. next_id(), "ok." .. next_id()
          local env = merge(env_for("metered", tls_base(throttled), "none"),
            PROVIDERS.cloudflare(tls_base(ok)), { TURN_PROVIDER = "metered,cloudflare" })
          local out = timeline(transport.make(env), throttled, {
            { 0, 1 }, { 1, 1 }, { 2, 1 }, { 29, 1 }, { 30, 2 }, { 31, 2 }, { 59, 2 }, { 60, 3 },
          })
          for i, r in ipairs(out) do
            assert.is_nil(r.err, r.err)
            assert.are.equal("cloudflare", r.meta.provider, "get " .. i)
            assert.are.same({ { urls = { STUN } }, { urls = { "turn:turn.fault.test:3478" },
              username = fault.TURN.username, credential = fault.TURN.credential } }, r.servers)
            for _, l in ipairs(r.logs) do assert_clean(l, "a log line") end
          end
          assert.are.equal(1, count(ok)) -- cached, asked once
        end)

        it("the STUN fallback serves meanwhile, its error saying when it is retried", function()
          local throttled = "429." .. next_id()
          local out = timeline(transport.make(env_for("metered", tls_base(throttled), "stun")),
            throttled, { { 0, 1 }, { 10, 1 }, { 29, 1 }, { 30, 2 } })
          local bound = 3 * TIMEOUT
          assert_failed(out[1], "metered", "stun", "^metered: 429 Too many requests$", bound)
          assert_failed(out[2], "metered", "stun",
            "429 Too many requests %(not retried for 20 s%)$", bound, true)
          assert_failed(out[3], "metered", "stun", "%(not retried for 1 s%)$", bound, true)
          -- the retry failed again: the same error, no new warning within the minute
          assert_failed(out[4], "metered", "stun", "^metered: 429 Too many requests$", bound, true)
        end)

        it("with TURN_FALLBACK=none, nil, err until it is retried", function()
          local throttled = "429." .. next_id()
          local out = timeline(transport.make(env_for("twilio", tls_base(throttled), "none")),
            throttled, { { 0, 1 }, { 15, 1 }, { 30, 2 }, { 45, 2 }, { 60, 3 } })
          local bound = 3 * TIMEOUT
          local says = "^every provider failed: twilio: 429 Too many requests %(code 20429%)"
          assert_failed(out[1], "twilio", "none", says .. "$", bound)
          assert_failed(out[2], "twilio", "none", says .. " %(not retried for 15 s%)$", bound)
          assert_failed(out[3], "twilio", "none", says .. "$", bound)
          assert_failed(out[4], "twilio", "none", says .. " %(not retried for 15 s%)$", bound)
          assert_failed(out[5], "twilio", "none", says .. "$", bound)
        end)
      end)
    end)
  end

  it("the client nginx's error log names no secret", function()
    local log = client:error_log()
    assert.is_truthy(log:find("[error]", 1, true), "expected the faults in the error log")
    assert_clean(log, "the client nginx's error log")
  end)
end)

it("leaves no nginx process running", function()
  assert.is_true(#pids >= 4, "expected two masters and their workers")
  for _, pid in ipairs(pids) do
    assert.is_true(sh.wait_gone(pid, 5), "nginx process " .. pid .. " is still running")
  end
end)
