-- The REST providers (metered, twilio, cloudflare, xirsys) through the broker,
-- configured as operators do (iceservers.from_env), against a mock of their
-- APIs (spec/support/mock_api.lua) in a real nginx on loopback: the answers
-- they normalize, the requests they send, every failure as one line in
-- bounded time, the chain and fallback, the cache, and that no configured
-- secret reaches an error or a log line.
local iceservers = require "iceservers"
local core = require "iceservers.core"
local cjson = require "cjson"
local nginx = require "support.nginx"
local mock = require "support.mock_api"

local S, TURN = mock.S, mock.TURN
local T0 = 1800000000 -- the broker's clock in these specs
local GOOGLE = "stun:stun.l.google.com:19302"
local WRONG = "WRONG-SECRET-0-Kf9Qz2" -- a configured but wrong secret
local COTURN_SECRET = "COTURN-SECRET-7-Lw3Xe5"
local COTURN_URL = "turn:turn.example.com:3478"
local METERED_401 = "401 Invalid API Key (TURN_API_KEY must be a credential's API key, "
  .. "not the account secret key)"

-- The base64 Basic credentials, from the first base64 group that encodes
-- password bytes only (what comes before it encodes the user id, no secret).
local function basic(user, password)
  local b64 = core.b64encode(user .. ":" .. password)
  return (b64:sub(4 * math.ceil((#user + 1) / 3) + 1):gsub("=+$", ""))
end

-- Everything that must never appear in an error or a log line.
local SECRETS = {
  S.metered_api_key, S.metered_secret_key, S.twilio_token, S.twilio_key_secret,
  S.cloudflare_token, S.xirsys_secret, WRONG, COTURN_SECRET,
  basic(S.twilio_sid, S.twilio_token), basic(S.twilio_key_sid, S.twilio_key_secret),
  basic(S.twilio_sid, WRONG), basic(S.xirsys_ident, S.xirsys_secret),
}

local _, assert_clean = require("support.leaks")(SECRETS)

-- Log lines also never show a request's path or query (where keys travel):
-- every mock URL has /s/ in its path.
local function assert_clean_logs(logs)
  for _, line in ipairs(logs) do
    assert_clean(line, "a log line")
    assert.is_nil(line:find("/s/", 1, true), "a log line shows a path: " .. line)
  end
end

local function assert_one_line(err)
  assert.is_string(err)
  assert.is_nil(err:find("[\r\n]"), "error is not one line: " .. err)
end

-- Under valgrind (ICESERVERS_SLOW, set by scripts/test.sh) TLS alone can take
-- seconds: every timeout and time bound here scales with it.
local TIMEOUT = os.getenv("ICESERVERS_SLOW") and 5 or 1

-- A real CA that did not sign the mock's certificate; one file, not the whole
-- system bundle, which takes longer to load under valgrind than the 2 s
-- connect timeout allows.
local UNRELATED_CA = "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt"

describe("REST providers against a mock API", function()
  local srv
  local serial = 0

  lazy_setup(function()
    srv = nginx.start{
      http = [[ lua_shared_dict mock_api 8m; ]],
      server = [[
        location / { content_by_lua_file ${root}/spec/support/mock_api.lua; }
      ]],
    }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
  end)

  -- A scenario name of its own for each use, so its call counter is fresh.
  local function scenario(name)
    serial = serial + 1
    return name .. "." .. serial
  end

  local function base(name, host)
    return ("https://%s:%d/s/%s"):format(host or "mock.test", srv.tls_port, name)
  end

  local function mock_get(path)
    local res, err = core.http_request{ url = srv:url(path) }
    assert(res, err)
    assert.are.equal(200, res.status)
    return res.body
  end

  local function count(name) return tonumber(mock_get("/count/" .. name)) end
  local function calls(name) return cjson.decode(mock_get("/log/" .. name)) end

  -- A broker from environment variables; vars override the defaults below
  -- (false removes one).  Returns the broker, its log lines and its clock.
  local function make(vars, extra)
    local env = {
      STUN_URLS = "", TURN_FALLBACK = "none", ICESERVERS_CA_FILE = srv.ca_file,
      ICESERVERS_RESOLVE = "mock.test:" .. srv.tls_port .. ":127.0.0.1",
      ICESERVERS_HTTP_TIMEOUT = tostring(TIMEOUT),
      ICESERVERS_CONNECT_TIMEOUT = tostring(math.max(2, TIMEOUT)),
      -- the providers' answers whole; the default cap has its case below
      ICESERVERS_MAX_URLS = "0",
    }
    for k, v in pairs(vars) do env[k] = v or nil end
    local logs, clock = {}, { t = T0 }
    local opts = {
      log = function(level, msg) logs[#logs + 1] = level .. ": " .. msg end,
      now = function() return clock.t end,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return iceservers.from_env(env, opts), logs, clock
  end

  -- The provider configurations, as an operator writes them.
  local V = {
    metered = {
      name = "metered", mock = "metered",
      env = function(url) return { TURN_PROVIDER = "metered", TURN_API_URL = url,
        TURN_API_KEY = S.metered_api_key } end,
    },
    metered_sk = {
      name = "metered", mock = "metered", label = "metered with METERED_SECRET_KEY",
      env = function(url) return { TURN_PROVIDER = "metered", TURN_API_URL = url,
        METERED_SECRET_KEY = S.metered_secret_key } end,
    },
    twilio = {
      name = "twilio", mock = "twilio", label = "twilio with TWILIO_AUTH_TOKEN",
      env = function(url) return { TURN_PROVIDER = "twilio", TWILIO_API_URL = url,
        TWILIO_ACCOUNT_SID = S.twilio_sid, TWILIO_AUTH_TOKEN = S.twilio_token } end,
    },
    twilio_key = {
      name = "twilio", mock = "twilio", label = "twilio with an API key",
      env = function(url) return { TURN_PROVIDER = "twilio", TWILIO_API_URL = url,
        TWILIO_ACCOUNT_SID = S.twilio_sid, TWILIO_API_KEY_SID = S.twilio_key_sid,
        TWILIO_API_KEY_SECRET = S.twilio_key_secret } end,
    },
    cloudflare = {
      name = "cloudflare", mock = "cloudflare",
      env = function(url) return { TURN_PROVIDER = "cloudflare", CLOUDFLARE_API_URL = url,
        CLOUDFLARE_TURN_KEY_ID = S.cloudflare_key_id,
        CLOUDFLARE_TURN_KEY_API_TOKEN = S.cloudflare_token } end,
    },
    xirsys = {
      name = "xirsys", mock = "xirsys",
      env = function(url) return { TURN_PROVIDER = "xirsys", XIRSYS_API_URL = url,
        XIRSYS_IDENT = S.xirsys_ident, XIRSYS_SECRET = S.xirsys_secret,
        XIRSYS_CHANNEL = S.xirsys_channel } end,
    },
  }
  local ORDER = { "metered", "metered_sk", "twilio", "twilio_key", "cloudflare", "xirsys" }

  local function with(t, more)
    local out = {}
    for k, v in pairs(t) do out[k] = v end
    for k, v in pairs(more or {}) do out[k] = v end
    return out
  end

  -- Runs a success scenario: servers, meta, logs, the mock's recorded calls.
  local function serve(v, case, vars, extra)
    local name = scenario(v.mock .. "-" .. case)
    local broker, logs = make(with(v.env(base(name)), vars), extra)
    local servers, meta = broker:get("alice")
    assert(servers, meta)
    assert_clean_logs(logs)
    for _, line in ipairs(logs) do -- nor the TURN credential handed out
      assert.is_nil(line:find(TURN[v.mock].credential, 1, true), line)
    end
    return servers, meta, calls(name), logs
  end

  local function turn_entry(t, urls)
    return { urls = urls, username = t.username, credential = t.credential }
  end

  local function assert_w3c(servers)
    for _, s in ipairs(servers) do
      assert.is_table(s.urls)
      for k in pairs(s) do
        assert.is_true(k == "urls" or k == "username" or k == "credential",
          "unexpected key " .. tostring(k))
      end
    end
  end

  ---------------------------------------------------------------------------
  describe("metered", function()
    local M_HOST = "global.relay.metered.ca"
    local function metered_turn()
      local t = TURN.metered
      return {
        turn_entry(t, { "turn:" .. M_HOST .. ":80" }),
        turn_entry(t, { "turn:" .. M_HOST .. ":80?transport=tcp" }),
        turn_entry(t, { "turn:" .. M_HOST .. ":443" }),
        turn_entry(t, { "turns:" .. M_HOST .. ":443?transport=tcp" }),
      }
    end
    local function expected(stun)
      local out = { { urls = { stun } } }
      for _, e in ipairs(metered_turn()) do out[#out + 1] = e end
      return out
    end

    it("normalizes the bare array; ICESERVERS_CACHE_TTL (default 3600) is its ttl", function()
      local servers, meta, log = serve(V.metered, "ok")
      assert.are.same(expected("stun:stun.relay.metered.ca:80"), servers)
      assert_w3c(servers)
      assert.are.same({ provider = "metered", ttl = 3600, expires = T0 + 3600 }, meta)
      assert.are.equal(1, #log)
      assert.are.equal("GET", log[1].method)
      assert.are.equal("/api/v1/turn/credentials", log[1].path)
      assert.are.same({ apiKey = S.metered_api_key }, log[1].args)
      assert.is_nil(log[1].headers.authorization)
      assert.are.equal("", log[1].body)
    end)

    it("honours ICESERVERS_CACHE_TTL and METERED_REGION", function()
      local _, meta, log = serve(V.metered, "ok",
        { ICESERVERS_CACHE_TTL = "1800", METERED_REGION = "europe" })
      assert.are.same({ provider = "metered", ttl = 1800, expires = T0 + 1800 }, meta)
      assert.are.same({ apiKey = S.metered_api_key, region = "europe" }, log[1].args)
    end)

    it("puts STUN_URLS first and drops the provider's copy of them", function()
      local servers = serve(V.metered, "ok", { STUN_URLS = "stun:stun.relay.metered.ca:80" })
      assert.are.same(expected("stun:stun.relay.metered.ca:80"), servers)
      servers = serve(V.metered, "ok", { STUN_URLS = false }) -- the default
      local want = expected(GOOGLE)
      table.insert(want, 2, { urls = { "stun:stun.relay.metered.ca:80" } })
      assert.are.same(want, servers)
    end)

    it("with METERED_SECRET_KEY creates a credential for TURN_TTL, then uses its apiKey",
      function()
        local servers, meta, log = serve(V.metered_sk, "ok", { TURN_TTL = "2h" })
        assert.are.same(expected("stun:stun.relay.metered.ca:80"), servers)
        assert.are.same({ provider = "metered", ttl = 7200, expires = T0 + 7200 }, meta)
        assert.are.equal(2, #log)
        assert.are.equal("POST", log[1].method)
        assert.are.equal("/api/v1/turn/credential", log[1].path)
        assert.are.same({ secretKey = S.metered_secret_key }, log[1].args)
        assert.are.equal("application/json", log[1].headers["content-type"])
        local body = cjson.decode(log[1].body)
        assert.are.equal(7200, body.expiryInSeconds)
        assert.are.equal("GET", log[2].method)
        assert.are.equal("/api/v1/turn/credentials", log[2].path)
        assert.are.same({ apiKey = S.metered_created_key }, log[2].args)
      end)
  end)

  ---------------------------------------------------------------------------
  describe("twilio", function()
    local function twilio_list(stun)
      local t, out = TURN.twilio, {}
      if stun then out[1] = { urls = { stun } } end
      out[#out + 1] = { urls = { "stun:global.stun.twilio.com:3478" } }
      for _, u in ipairs { "turn:global.turn.twilio.com:3478?transport=udp",
        "turn:global.turn.twilio.com:3478?transport=tcp",
        "turn:global.turn.twilio.com:443?transport=tcp" } do
        out[#out + 1] = turn_entry(t, { u })
      end
      return out
    end

    it("normalizes ice_servers (url and urls, ttl a string) and POSTs Ttl with Basic auth",
      function()
        local servers, meta, log = serve(V.twilio, "ok")
        assert.are.same(twilio_list(), servers)
        assert_w3c(servers)
        assert.are.same({ provider = "twilio", ttl = 86400, expires = T0 + 86400 }, meta)
        assert.are.equal(1, #log)
        assert.are.equal("POST", log[1].method)
        assert.are.equal("/2010-04-01/Accounts/" .. S.twilio_sid .. "/Tokens.json", log[1].path)
        assert.are.equal("Basic " .. core.b64encode(S.twilio_sid .. ":" .. S.twilio_token),
          log[1].headers.authorization)
        assert.are.equal("application/x-www-form-urlencoded", log[1].headers["content-type"])
        assert.are.equal("Ttl=86400", log[1].body)
        assert.are.same({}, log[1].args)
      end)

    it("signs with an API key when one is configured", function()
      local servers, _, log = serve(V.twilio_key, "ok")
      assert.are.same(twilio_list(), servers)
      assert.are.equal("Basic " .. core.b64encode(S.twilio_key_sid .. ":" .. S.twilio_key_secret),
        log[1].headers.authorization)
    end)

    it("asks TURN_TTL (at most 24 h) and reports the ttl Twilio answers", function()
      local _, meta, log = serve(V.twilio, "ok", { TURN_TTL = "1h" })
      assert.are.equal("Ttl=3600", log[1].body)
      assert.are.same({ provider = "twilio", ttl = 3600, expires = T0 + 3600 }, meta)
      _, meta, log = serve(V.twilio, "ok", { TURN_TTL = "7d" })
      assert.are.equal("Ttl=86400", log[1].body)
      assert.are.equal(86400, meta.ttl)
      _, meta = serve(V.twilio, "ttl") -- the service decided 600 s
      assert.are.same({ provider = "twilio", ttl = 600, expires = T0 + 600 }, meta)
    end)

    it("puts STUN_URLS first and drops the provider's copy of them", function()
      local servers = serve(V.twilio, "ok", { STUN_URLS = "stun:global.stun.twilio.com:3478" })
      local want = twilio_list()
      assert.are.same(want, servers)
      servers = serve(V.twilio, "ok", { STUN_URLS = false })
      assert.are.same(twilio_list(GOOGLE), servers)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("cloudflare", function()
    local CF_TURN = {
      "turn:turn.cloudflare.com:3478?transport=udp", "turn:turn.cloudflare.com:443?transport=udp",
      "turn:turn.cloudflare.com:3478?transport=tcp", "turn:turn.cloudflare.com:80?transport=tcp",
      "turns:turn.cloudflare.com:5349?transport=tcp", "turns:turn.cloudflare.com:443?transport=tcp",
    }
    local CF_STUN = { urls = { "stun:stun.cloudflare.com:3478" } }

    it("normalizes the iceServers array and POSTs {ttl} with the Bearer token", function()
      local servers, meta, log = serve(V.cloudflare, "ok")
      assert.are.same({ CF_STUN, turn_entry(TURN.cloudflare, CF_TURN) }, servers)
      assert_w3c(servers)
      assert.are.same({ provider = "cloudflare", ttl = 86400, expires = T0 + 86400 }, meta)
      assert.are.equal(1, #log)
      assert.are.equal("POST", log[1].method)
      assert.are.equal("/v1/turn/keys/" .. S.cloudflare_key_id
        .. "/credentials/generate-ice-servers", log[1].path)
      assert.are.equal("Bearer " .. S.cloudflare_token, log[1].headers.authorization)
      assert.are.equal("application/json", log[1].headers["content-type"])
      assert.are.same({ ttl = 86400 }, cjson.decode(log[1].body))
    end)

    it("asks TURN_TTL clamped to 48 h and reports the ttl it asked", function()
      local _, meta, log = serve(V.cloudflare, "ok", { TURN_TTL = "7d" })
      assert.are.same({ ttl = 172800 }, cjson.decode(log[1].body))
      assert.are.same({ provider = "cloudflare", ttl = 172800, expires = T0 + 172800 }, meta)
      _, meta, log = serve(V.cloudflare, "ok", { TURN_TTL = "90m" })
      assert.are.same({ ttl = 5400 }, cjson.decode(log[1].body))
      assert.are.equal(5400, meta.ttl)
    end)

    it("takes the legacy single iceServers object", function()
      local servers, meta = serve(V.cloudflare, "legacy")
      assert.are.same({ CF_STUN, turn_entry(TURN.cloudflare, {
        "turn:turn.cloudflare.com:3478?transport=udp",
        "turn:turn.cloudflare.com:3478?transport=tcp",
        "turns:turn.cloudflare.com:5349?transport=tcp" }) }, servers)
      assert.are.equal("cloudflare", meta.provider)
    end)

    it("drops the port-53 URLs browsers block", function()
      local servers, meta = serve(V.cloudflare, "port53")
      assert.are.same({ CF_STUN, turn_entry(TURN.cloudflare, {
        "turn:turn.cloudflare.com:3478?transport=udp", "turn:turn.cloudflare.com:80?transport=tcp",
        "turns:turn.cloudflare.com:443?transport=tcp" }) }, servers)
      assert.are.same({ port_53 = 2 }, meta.dropped)
    end)

    it("puts STUN_URLS first and drops the provider's copy of them", function()
      local servers = serve(V.cloudflare, "ok", { STUN_URLS = "stun:stun.cloudflare.com:3478" })
      assert.are.same({ CF_STUN, turn_entry(TURN.cloudflare, CF_TURN) }, servers)
      servers = serve(V.cloudflare, "ok", { STUN_URLS = false })
      assert.are.same({ { urls = { GOOGLE } }, CF_STUN, turn_entry(TURN.cloudflare, CF_TURN) },
        servers)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("xirsys", function()
    local X_STUN = { urls = { "stun:bturn2.xirsys.com" } }
    local X_TURN = {
      "turn:bturn2.xirsys.com:80?transport=udp", "turn:bturn2.xirsys.com:3478?transport=udp",
      "turn:bturn2.xirsys.com:80?transport=tcp", "turn:bturn2.xirsys.com:3478?transport=tcp",
      "turns:bturn2.xirsys.com:443?transport=tcp", "turns:bturn2.xirsys.com:5349?transport=tcp",
    }

    it("normalizes the one v.iceServers object; PUTs {format:urls} with Basic auth", function()
      local servers, meta, log = serve(V.xirsys, "ok")
      assert.are.same({ X_STUN, turn_entry(TURN.xirsys, X_TURN) }, servers)
      assert_w3c(servers)
      assert.are.same({ provider = "xirsys", ttl = 3600, expires = T0 + 3600 }, meta)
      assert.are.equal(1, #log)
      assert.are.equal("PUT", log[1].method)
      assert.are.equal("/_turn/" .. S.xirsys_channel, log[1].path)
      assert.are.equal("Basic " .. core.b64encode(S.xirsys_ident .. ":" .. S.xirsys_secret),
        log[1].headers.authorization)
      assert.are.equal("application/json", log[1].headers["content-type"])
      assert.are.same({ format = "urls" }, cjson.decode(log[1].body))
    end)

    it("takes an array of entries with url keys; honours ICESERVERS_CACHE_TTL", function()
      local servers, meta = serve(V.xirsys, "array", { ICESERVERS_CACHE_TTL = "1800" })
      assert.are.same({ X_STUN,
        turn_entry(TURN.xirsys, { "turn:bturn2.xirsys.com:80?transport=udp" }),
        turn_entry(TURN.xirsys, { "turns:bturn2.xirsys.com:443?transport=tcp" }) }, servers)
      assert_w3c(servers)
      assert.are.same({ provider = "xirsys", ttl = 1800, expires = T0 + 1800 }, meta)
    end)

    it("puts STUN_URLS first and drops the provider's copy of them", function()
      local servers = serve(V.xirsys, "ok", { STUN_URLS = "stun:bturn2.xirsys.com" })
      assert.are.same({ X_STUN, turn_entry(TURN.xirsys, X_TURN) }, servers)
      servers = serve(V.xirsys, "ok", { STUN_URLS = false, XIRSYS_CHANNEL = "/myapp/room-1/" })
      assert.are.same({ { urls = { GOOGLE } }, X_STUN, turn_entry(TURN.xirsys, X_TURN) }, servers)
    end)
  end)

  ---------------------------------------------------------------------------
  -- Failures: nil and one line naming the provider, in bounded time, with no
  -- secret in the error or in any log line.
  describe("with the default cap (ICESERVERS_MAX_URLS unset: 4)", function()
    local shape = require "iceservers.shape"
    for _, key in ipairs(ORDER) do
      it(key .. "'s answer holds at most 4 URLs, one of each class first", function()
        local servers, meta = serve(V[key], "ok", { ICESERVERS_MAX_URLS = false })
        local whole = serve(V[key], "ok")
        local n, classes, all = 0, {}, {}
        for _, e in ipairs(servers) do
          assert.is_true(#e.urls > 0)
          for _, u in ipairs(e.urls) do
            n = n + 1
            classes[shape.class(u)] = true
          end
        end
        for _, e in ipairs(whole) do
          for _, u in ipairs(e.urls) do all[shape.class(u)] = true end
        end
        assert.is_true(n <= 4, key .. ": " .. n .. " URLs")
        assert.is_true(classes.turn_udp or classes.turns or classes.turn_tcp or false)
        local total = 0
        for _, e in ipairs(whole) do total = total + #e.urls end
        if total > 4 then
          assert.are.equal(4, n)
          assert.are.equal(total - 4, meta.dropped.cap)
          for c in pairs(all) do assert.is_true(classes[c], key .. " lost class " .. c) end
        else
          assert.is_nil(meta.dropped)
        end
      end)
    end
  end)

  describe("failures", function()
    local NOT_JSON = "with a body that is not a JSON object or array"
    local NO_TURN = "no valid TURN server in the answer"
    local CERT = "certificate"

    -- case -> what the error must contain, per configuration.
    local CASES = {
      metered = {
        e401 = METERED_401,
        e400 = "400 Please specify API Key",
        echo = "401 Invalid API Key", echocut = "401 request rejected",
        ["500"] = "500 Internal server error occurred", ["429"] = "429 Too many requests",
        garbage = "HTTP 200 " .. NOT_JSON, empty = NO_TURN, stunonly = NO_TURN,
        big = "max_body",
      },
      metered_sk = {
        e401 = "creating a credential: 401 Invalid secret key",
        e400 = "creating a credential: 400 Please specify secret key",
        gete401 = "401 Invalid API Key", get500 = "500 Internal server error occurred",
        getbig = "max_body", getempty = NO_TURN,
        echo = "creating a credential: 401 Invalid secret key",
        echocut = "creating a credential: 401 request rejected",
        ["500"] = "creating a credential: 500 Internal server error occurred",
        ["429"] = "creating a credential: 429 Too many requests",
        garbage = "creating a credential: HTTP 200 " .. NOT_JSON,
        empty = "creating a credential: the answer has no apiKey", big = "max_body",
      },
      twilio = {
        e401 = "401 Authenticate (code 20003)", echo = "401 Authenticate",
        echocut = "401 request rejected", ["500"] = "HTTP 500",
        ["429"] = "429 Too many requests (code 20429)",
        garbage = "HTTP 201 " .. NOT_JSON, empty = NO_TURN, big = "max_body",
      },
      cloudflare = {
        e401 = "401 Authentication error", echo = "401 Authentication error",
        echocut = "401 request rejected", ["500"] = "HTTP 500", ["429"] = "HTTP 429",
        garbage = "HTTP 201 " .. NOT_JSON, empty = NO_TURN, big = "max_body",
      },
      xirsys = {
        error200 = "error: unauthorized", e401 = "401 unauthorized",
        echo = "error: unauthorized", echocut = "error: request rejected",
        ["500"] = "HTTP 500", ["429"] = "HTTP 429",
        garbage = "HTTP 200 " .. NOT_JSON, empty = NO_TURN, big = "max_body",
      },
    }
    CASES.twilio_key = CASES.twilio

    -- The configured secret replaced by a wrong one: the mock refuses it.
    local WRONG_VARS = {
      metered = { TURN_API_KEY = WRONG }, metered_sk = { METERED_SECRET_KEY = WRONG },
      twilio = { TWILIO_AUTH_TOKEN = WRONG }, twilio_key = { TWILIO_API_KEY_SECRET = WRONG },
      cloudflare = { CLOUDFLARE_TURN_KEY_API_TOKEN = WRONG }, xirsys = { XIRSYS_SECRET = WRONG },
    }
    local WRONG_SAYS = {
      metered = CASES.metered.e401, metered_sk = CASES.metered_sk.e401,
      twilio = CASES.twilio.e401, twilio_key = CASES.twilio.e401,
      cloudflare = CASES.cloudflare.e401, xirsys = "401 unauthorized",
    }

    local function fails(v, url, vars, says)
      local broker, logs = make(with(v.env(url), vars))
      local t0 = nginx.now()
      local servers, err = broker:get("alice")
      local took = nginx.now() - t0
      assert.is_nil(servers)
      assert_one_line(err)
      local prefix = "every provider failed: " .. v.name .. ": "
      assert.are.equal(prefix, err:sub(1, #prefix), err)
      assert.is_truthy(err:find(says, #prefix, true), ("%q lacks %q"):format(err, says))
      assert.is_true(took < 3 * TIMEOUT, ("took %.2f s"):format(took))
      assert_clean(err, "the error")
      assert_clean_logs(logs)
      return err, logs
    end

    for _, key in ipairs(ORDER) do
      local v = V[key]
      describe(v.label or v.name, function()
        local names = {}
        for case in pairs(CASES[key]) do names[#names + 1] = case end
        table.sort(names)
        for _, case in ipairs(names) do
          it(case, function()
            local name = scenario(v.mock .. "-" .. case)
            local err = fails(v, base(name), nil, CASES[key][case])
            -- one call (two when Metered's create succeeded), no retry
            local want = (key == "metered_sk" and case:match("^get")) and 2 or 1
            assert.are.equal(want, count(name))
            if case == "gete401" then -- the key came from creating: not the operator's fault
              assert.is_nil(err:find("TURN_API_KEY", 1, true), err)
            end
          end)
        end

        it("a wrong secret, refused by the provider", function()
          fails(v, base(scenario(v.mock .. "-ok")), WRONG_VARS[key], WRONG_SAYS[key])
        end)

        -- plain http:// to loopback ports: only with the test flag
        local PLAIN = { ICESERVERS_ALLOW_HTTP = "1" }

        it("a server that never answers", function()
          fails(v, ("http://127.0.0.1:%d/s/x"):format(srv.silent_port), PLAIN,
            ("timed out after %d ms"):format(TIMEOUT * 1000))
        end)

        it("a refused connection", function()
          fails(v, ("http://127.0.0.1:%d/s/x"):format(nginx.free_port()), PLAIN, "connect")
        end)

        it("a certificate the configured CA did not sign", function()
          fails(v, base(scenario(v.mock .. "-ok")),
            { ICESERVERS_CA_FILE = UNRELATED_CA }, CERT)
        end)

        it("a certificate for another name", function()
          fails(v, base(scenario(v.mock .. "-ok"), "wrong.test"),
            { ICESERVERS_RESOLVE = ("wrong.test:%d:127.0.0.1"):format(srv.tls_port) },
            "wrong.test")
        end)
      end)
    end
  end)

  ---------------------------------------------------------------------------
  describe("configuration", function()
    for _, key in ipairs { "metered", "twilio", "cloudflare", "xirsys" } do
      local v = V[key]
      it(v.name .. ": a base URL holding user:password@ is refused, not echoed", function()
        local url = ("https://%s:%s@mock.test:%d/s/x"):format(S.xirsys_ident, WRONG,
          srv.tls_port)
        local ok, err = pcall(make, v.env(url))
        assert.is_false(ok)
        err = tostring(err)
        assert_one_line(err)
        assert.matches("_API_URL must not hold credentials", err, 1, true)
        assert_clean(err, "the error")
      end)
    end
  end)

  ---------------------------------------------------------------------------
  describe("the chain", function()
    local function coturn_vars(first_url, more)
      return with({ TURN_PROVIDER = "metered,coturn", TURN_API_URL = first_url,
        TURN_API_KEY = S.metered_api_key, TURN_URLS = COTURN_URL,
        TURN_SECRET = COTURN_SECRET, TURN_TTL = "1h" }, more)
    end

    it("serves from coturn when Metered answers 500", function()
      local name = scenario("metered-500")
      local broker, logs = make(coturn_vars(base(name)))
      local servers, meta = broker:get("alice")
      assert(servers, meta)
      local username = (T0 + 3600) .. ":alice"
      local credential = core.b64encode(core.hmac("sha1", COTURN_SECRET, username))
      assert.are.same({ { urls = { COTURN_URL }, username = username,
        credential = credential } }, servers)
      assert.are.same({ provider = "coturn", ttl = 3600, expires = T0 + 3600,
        errors = { "metered: 500 Internal server error occurred. Please try again" } }, meta)
      assert.are.equal(1, count(name))
      assert_clean_logs(logs)
    end)

    it("serves from Metered, the first, when it answers", function()
      local name = scenario("metered-ok")
      local broker = make(coturn_vars(base(name)))
      local servers, meta = assert(broker:get("alice"))
      assert.are.equal("metered", meta.provider)
      assert.are.equal(TURN.metered.username, servers[2].username)
    end)

    it("falls back to STUN when every provider fails, with meta.degraded and errors",
      function()
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        f:write(COTURN_SECRET, "\n")
        f:close()
        assert(os.execute("chmod 600 " .. path))
        local m, c = scenario("metered-500"), scenario("cloudflare-e401")
        local broker, logs, clock = make(coturn_vars(base(m), {
          TURN_PROVIDER = "metered,cloudflare,coturn", TURN_SECRET = false,
          TURN_SECRET_FILE = path, TURN_FALLBACK = false, STUN_URLS = false,
          CLOUDFLARE_API_URL = base(c), CLOUDFLARE_TURN_KEY_ID = S.cloudflare_key_id,
          CLOUDFLARE_TURN_KEY_API_TOKEN = S.cloudflare_token,
        }))
        os.remove(path) -- coturn can no longer read its secret
        clock.t = T0 + 5
        local servers, meta = broker:get("alice")
        assert.are.same({ { urls = { GOOGLE } } }, servers)
        assert.are.equal("stun", meta.provider)
        assert.is_true(meta.degraded)
        assert.is_nil(meta.ttl)
        assert.are.equal(3, #meta.errors)
        assert.matches("^metered: 500 ", meta.errors[1])
        assert.matches("^cloudflare: 401 Authentication error", meta.errors[2])
        assert.matches("^coturn: ", meta.errors[3])
        local warned = 0
        for _, line in ipairs(logs) do
          if line:match("^warn: ") then warned = warned + 1 end
        end
        assert.are.equal(1, warned)
        for _, e in ipairs(meta.errors) do
          assert_one_line(e)
          assert_clean(e, "meta.errors")
        end
        assert_clean_logs(logs)
        assert.is_nil(iceservers.encode(servers, meta, "webrtc"):find("error", 1, true))
      end)

    it("returns nil, err naming every provider with TURN_FALLBACK=none", function()
      local m, x = scenario("metered-e401"), scenario("xirsys-error200")
      local broker, logs = make({
        TURN_PROVIDER = "metered,xirsys", TURN_API_URL = base(m),
        TURN_API_KEY = S.metered_api_key, XIRSYS_API_URL = base(x),
        XIRSYS_IDENT = S.xirsys_ident, XIRSYS_SECRET = S.xirsys_secret,
        XIRSYS_CHANNEL = S.xirsys_channel,
      })
      local servers, err = broker:get("alice")
      assert.is_nil(servers)
      assert_one_line(err)
      assert.are.equal("every provider failed: metered: " .. METERED_401
        .. "; xirsys: error: unauthorized", err)
      assert_clean(err, "the error")
      assert_clean_logs(logs)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the cache", function()
    for _, key in ipairs { "metered", "twilio", "cloudflare", "xirsys" } do
      local v = V[key]
      it(v.name .. ": a second get within the window makes no upstream call", function()
        local name = scenario(v.mock .. "-ok")
        local broker, _, clock = make(v.env(base(name)))
        local s1, m1 = assert(broker:get("alice"))
        clock.t = T0 + 60
        local s2, m2 = assert(broker:get("bob"))
        assert.are.equal(1, count(name))
        assert.are.same(s1, s2)
        assert.are_not.equal(s1, s2) -- fresh tables each time
        assert.are.equal(m1.expires, m2.expires)
        assert.are.equal(m1.ttl - 60, m2.ttl)
      end)
    end

    it("refreshes after half the lifetime; serves the cached answer while it fails", function()
      local name = scenario("metered-flaky")
      local broker, logs, clock = make(V.metered.env(base(name)))
      local s1 = assert(broker:get("alice"))
      clock.t = T0 + 1799
      assert(broker:get("alice"))
      assert.are.equal(1, count(name))
      clock.t = T0 + 1801 -- due: the mock now answers 500
      local s2, meta = broker:get("alice")
      assert.are.equal(2, count(name))
      assert.are.same(s1, s2)
      assert.is_true(meta.stale)
      assert.are.equal(3600 - 1801, meta.ttl)
      broker:get("alice") -- backed off: not asked again at once
      assert.are.equal(2, count(name))
      local warned = {}
      for _, line in ipairs(logs) do
        if line:match("^warn: ") then warned[#warned + 1] = line end
      end
      assert.are.equal(1, #warned)
      assert.matches("refresh failed", warned[1])
      assert_clean_logs(logs)
    end)

    it("does not call a provider again within its Retry-After", function()
      local name = scenario("twilio-429")
      local broker, logs, clock = make(V.twilio.env(base(name)))
      assert.is_nil((broker:get("alice")))
      clock.t = T0 + 10
      local servers, err = broker:get("alice")
      assert.is_nil(servers)
      assert.are.equal(1, count(name))
      assert.matches("not retried for 20 s", err, 1, true)
      assert_clean(err, "the error")
      assert_clean_logs(logs)
    end)
  end)
end)
