-- The browser proof: the demo page of examples/nginx, served by a real nginx
-- from the example configuration, in a real (headless) Chromium.  The page
-- fetches /ice-servers and runs ICE gathering through what it got; with the
-- credentials of the endpoint a real coturn must hand the browser relay
-- candidates, and with credentials it refuses the browser must report an
-- icecandidateerror 401 and no relay.
--
-- Needs node, Debian's chromium and spec/browser/node_modules (playwright-core):
-- `make deps` installs them.  Without them every test here FAILS, on purpose.
-- Screenshots and the pages' text land in spec/artifacts/ (demo-*-<interp>.png).
--
-- What Chromium gathers depends on the machine's interfaces (host and srflx
-- candidates come and go; gather.js lets it use loopback, so a machine with
-- loopback only works too): only relay candidates and errors are asserted.
local coturn = require "support.coturn"
local nginx = require "support.nginx"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

local INTERP = jit and "luajit" or "lua5.4"
local GATHER = "spec/browser/gather.js"
local PLAYWRIGHT = "spec/browser/node_modules/playwright-core/package.json"
local CHROMIUM = os.getenv("CHROMIUM") or "/usr/bin/chromium"
local ARTIFACTS = "spec/artifacts"
-- gather.js bounds every step itself (its watchdog ends it after 85 s); this
-- is the last resort around it.  A good run takes about 2 s.
local RUN_TIMEOUT = 100

local quote, read_file = sh.quote, sh.read_file

local function token(n) return core.hex(core.random_bytes(n)) end

-- Fails (does not skip) with what is missing and how to get it.
local function preflight()
  local missing = {}
  local ok, out = sh.run_clean("node --version")
  local major = ok and tonumber(out:match("^v(%d+)%."))
  if not major then
    missing[#missing + 1] = "node is not on PATH"
  elseif major < 18 then
    missing[#missing + 1] = "node " .. out:gsub("%s+$", "") .. " is too old (18 or later)"
  end
  if not read_file(CHROMIUM) then
    missing[#missing + 1] = "no Chromium at " .. CHROMIUM .. " (Debian package chromium)"
  end
  if not read_file(PLAYWRIGHT) then
    missing[#missing + 1] = "playwright-core is not installed (npm ci --prefix spec/browser)"
  end
  if #missing > 0 then
    error("the browser test cannot run: " .. table.concat(missing, "; ")
      .. ". Run `make deps` (scripts/deps.sh) to install them.", 2)
  end
end

describe("the demo page in Chromium #integration", function()
  local secret = token(16)
  local turn, good, wrong, tmp, urls

  lazy_setup(function()
    tmp = sh.tmpdir("browser")
    assert(sh.run_clean("mkdir -p " .. quote(ARTIFACTS)))
    turn = coturn.start{ secrets = { secret }, tls = true }
    urls = {
      ("turn:127.0.0.1:%d?transport=udp"):format(turn.port),
      ("turn:127.0.0.1:%d?transport=tcp"):format(turn.port),
    }
    local function endpoint(turn_secret)
      return nginx.start{ template = "examples/nginx/nginx.conf", workers = 2, env = {
        TURN_PROVIDER = "coturn", TURN_SECRET = turn_secret,
        TURN_URLS = table.concat(urls, ","), STUN_URLS = "",
      } }
    end
    good = endpoint(secret)
    wrong = endpoint("wrong-" .. token(8)) -- coturn holds `secret` only
  end)

  lazy_teardown(function()
    if good then good:stop() end
    if wrong then wrong:stop() end
    if turn then turn:stop() end
    if tmp then sh.rmrf(tmp) end
  end)

  -- Chromium processes of ours still alive (their command lines name tmp:
  -- the profile, and the crash handler's database under the temp HOME).
  local function leftovers()
    -- "[/]tmp/..." matches the path but not this shell's own command line.
    local _, out = sh.run_clean("pgrep -f " .. quote("[/]" .. tmp:sub(2)) .. " || true")
    local pids = {}
    for pid in out:gmatch("%d+") do pids[#pids + 1] = pid end
    return pids
  end

  -- Runs gather.js on the page of `srv`; returns window.iceResults (decoded),
  -- the page's text and the screenshot's path.
  local function gather(srv, name)
    preflight()
    local shot = ("%s/demo-%s-%s.png"):format(ARTIFACTS, name, INTERP)
    local text_file = shot:gsub("%.png$", ".txt")
    os.remove(shot)
    os.remove(text_file)
    local err_file = tmp .. "/gather-" .. name .. ".err"
    local t0 = sh.now()
    local ok, out, code = sh.run_clean(("TMPDIR=%s exec timeout -k 5 %d node %s %s %s 2>%s")
      :format(quote(tmp), RUN_TIMEOUT, GATHER, quote(srv:url("/")), quote(shot),
        quote(err_file)))
    local seconds = sh.now() - t0
    local stderr = read_file(err_file) or ""

    -- Nothing of that browser may outlive gather.js (its crash handler takes
    -- a moment to notice); what does is killed by pid, and the test fails.
    local deadline = sh.now() + 3
    local left = leftovers()
    while #left > 0 and sh.now() < deadline do
      sh.sleep(0.1)
      left = leftovers()
    end
    if #left > 0 then
      sh.run_clean("kill -KILL " .. table.concat(left, " "))
      error("Chromium processes outlived gather.js: " .. table.concat(left, " "))
    end

    assert(ok, ("gather.js failed (exit %s after %.1f s): %s%s\n--- coturn log (end) ---\n%s")
      :format(tostring(code), seconds, stderr:sub(1, 2000), out:sub(1, 2000),
        turn:log():sub(-1000)))
    local decoded, results = pcall(cjson.decode, out)
    assert(decoded and type(results) == "table",
      "gather.js printed no JSON: " .. out .. "\n" .. stderr)
    local text = read_file(text_file)
    assert(text, "gather.js wrote no page text to " .. text_file)
    return results, text, shot
  end

  -- The one server of the answer: the TURN entry the endpoint handed out.
  local function turn_result(results)
    assert.is_table(results.answer, cjson.encode(results))
    local entries = results.answer.iceServers
    assert.are.equal(1, #entries, "STUN_URLS is empty: one TURN entry expected")
    assert.are.same(urls, entries[1].urls)
    assert.is_string(entries[1].username)
    assert.are.equal(1, #results.servers)
    local s = results.servers[1]
    assert.is_true(s.turn)
    return s, entries[1]
  end

  local function relays(s)
    local list = {}
    for _, c in ipairs(s.candidates) do
      if c.type == "relay" then list[#list + 1] = c end
    end
    return list
  end

  -- The relay count and the errors cell of the table's one row, as shown:
  -- "<urls>\t<host>\t<srflx>\t<relay>\t<errors>".
  local function row(text)
    local relay, errors = text:match("\t%d+\t%d+\t(%d+)\t([^\n]*)")
    assert(relay, "no result row in the page text:\n" .. text)
    return tonumber(relay), errors
  end

  it("gets relay candidates from coturn with the endpoint's credentials", function()
    local results, text = gather(good, "relay")
    local s, entry = turn_result(results)
    local summary = cjson.encode(s)
    assert.are.same({}, s.errors, "icecandidateerror events: " .. summary)
    assert(s.relay >= 1, "no relay candidate: " .. summary)
    local list = relays(s)
    assert.are.equal(s.relay, #list)
    -- Relays that coturn allocated: its relay address, its port window.
    local via_tcp, via_udp = 0, 0
    for _, c in ipairs(list) do
      assert.are.equal("127.0.0.1", c.address)
      assert(c.port >= turn.min_port and c.port <= turn.max_port,
        ("relay port %d outside coturn's %d-%d"):format(c.port, turn.min_port, turn.max_port))
      if c.relayProtocol == "tcp" then via_tcp = via_tcp + 1 else via_udp = via_udp + 1 end
    end
    -- Both URLs work: a relay through each transport to the server
    -- (Chromium tells "tcp", and no relayProtocol for UDP).
    assert(via_udp >= 1, "no relay through turn:...?transport=udp: " .. summary)
    assert(via_tcp >= 1, "no relay through turn:...?transport=tcp: " .. summary)
    assert(turn:accepted(entry.username), "coturn's log shows no ALLOCATE success for "
      .. entry.username)
    assert.is_false(turn:rejected(entry.username))
    -- What a person reads: the summary line, the relay count and no error.
    local n = tonumber(text:match("1 server%(s%) checked; (%d+) relay candidate"))
    assert(n and n >= 1, "page text:\n" .. text)
    local relay, errors = row(text)
    assert.are.equal(s.relay, relay, "page text:\n" .. text)
    assert.are.equal("none", errors, "page text:\n" .. text)
  end)

  it("shows a 401 and no relay when the endpoint signs with a wrong secret", function()
    local results, text = gather(wrong, "401")
    local s, entry = turn_result(results)
    local summary = cjson.encode(s)
    assert.are.equal(0, s.relay, "relay candidates with a wrong secret: " .. summary)
    assert.are.equal(0, #relays(s))
    local refused = 0
    for _, e in ipairs(s.errors) do
      if e.code == 401 then
        refused = refused + 1
        assert.is_truthy(e.url:find(tostring(turn.port), 1, true))
      end
    end
    assert(refused >= 1, "no icecandidateerror 401: " .. summary)
    assert(turn:rejected(entry.username), "coturn's log shows no refusal of "
      .. entry.username)
    assert.is_false(turn:accepted(entry.username))
    assert.is_truthy(text:find("1 server(s) checked; 0 relay candidate(s)", 1, true),
      "page text:\n" .. text)
    local relay, errors = row(text)
    assert.are.equal(0, relay, "page text:\n" .. text)
    assert.is_truthy(errors:find("401 Unauthorized", 1, true), "page text:\n" .. text)
  end)

  it("with health on and one of two TURN hosts dead, gets only the live one, and relays",
    function()
      local dead = coturn.start{ secrets = { secret } }
      local dead_urls = { ("turn:127.0.0.1:%d?transport=udp"):format(dead.port),
        ("turn:127.0.0.1:%d?transport=tcp"):format(dead.port) }
      dead:stop()
      local all = { urls[1], urls[2], dead_urls[1], dead_urls[2] }
      local srv = nginx.start{ template = "examples/nginx/nginx.conf", workers = 2, env = {
        TURN_PROVIDER = "coturn", TURN_SECRET = secret, TURN_URLS = table.concat(all, ","),
        STUN_URLS = "", ICESERVERS_HEALTH_INTERVAL = "1", ICESERVERS_HEALTH_TIMEOUT = "1" } }
      local finished, err = pcall(function()
        -- the prober takes the dead host's URLs out (fall 2 rounds of 1 s)
        local by = sh.now() + 15 * sh.slow(2)
        while true do
          local res = assert(core.http_request { url = srv:url("/ice-servers"), timeout = 5 })
          if not res.body:find(":" .. dead.port, 1, true) then break end
          assert(sh.now() < by, "the dead host's URLs are still in the answer: " .. res.body)
          sh.sleep(0.2)
        end
        local results = gather(srv, "health")
        local summary = cjson.encode(results)
        local entries = results.answer.iceServers
        assert.are.equal(1, #entries, summary)
        assert.are.same(urls, entries[1].urls) -- the live host's, none of the dead one's
        assert.is_nil(summary:find(":" .. dead.port, 1, true))
        local server = results.servers[1]
        assert.are.same({}, server.errors, "icecandidateerror events: " .. summary)
        assert(server.relay >= 1, "no relay candidate: " .. summary)
        for _, c in ipairs(relays(server)) do
          assert(c.port >= turn.min_port and c.port <= turn.max_port, summary)
        end
      end)
      srv:stop()
      assert(finished, err)
    end)

  -- Every built-in REST provider, its API mocked in its own shape (a real
  -- nginx over HTTPS with the test CA), with URLs of this spec's coturn
  -- only and credentials that coturn's secret signs: the endpoint shapes the
  -- answer with the default cap, and Chromium gets relays through it (over
  -- UDP and TCP: its turns: URL fails with 701, as Chromium does not trust
  -- the test CA, which is not asserted either way).
  describe("each REST provider's answer, shaped with the default cap", function()
    local S = require("support.mock_api").S
    local mock
    lazy_setup(function()
      mock = nginx.start{
        http = "lua_shared_dict mock_api 4m;",
        server = "location / { content_by_lua_file ${root}/spec/support/mock_api.lua; }",
      }
      local res = assert(core.http_request { url = mock:url(("/relay/set?plain=127.0.0.1:%d"
        .. "&tls=localhost:%d&secret=%s"):format(turn.port, turn.tls_port, secret)) })
      assert.are.equal(200, res.status)
    end)
    lazy_teardown(function() if mock then mock:stop() end end)

    local ENV = {
      metered = function(base) return { TURN_API_URL = base, TURN_API_KEY = S.metered_api_key } end,
      twilio = function(base) return { TWILIO_API_URL = base, TWILIO_ACCOUNT_SID = S.twilio_sid,
        TWILIO_AUTH_TOKEN = S.twilio_token } end,
      cloudflare = function(base) return { CLOUDFLARE_API_URL = base,
        CLOUDFLARE_TURN_KEY_ID = S.cloudflare_key_id,
        CLOUDFLARE_TURN_KEY_API_TOKEN = S.cloudflare_token } end,
      xirsys = function(base) return { XIRSYS_API_URL = base, XIRSYS_IDENT = S.xirsys_ident,
        XIRSYS_SECRET = S.xirsys_secret, XIRSYS_CHANNEL = S.xirsys_channel } end,
    }

    for _, name in ipairs { "metered", "twilio", "cloudflare", "xirsys" } do
      it(name, function()
        local env = ENV[name](("https://mock.test:%d/s/%s-relay"):format(mock.tls_port, name))
        env.TURN_PROVIDER, env.STUN_URLS = name, ""
        env.ICESERVERS_RESOLVE = ("mock.test:%d:127.0.0.1"):format(mock.tls_port)
        local srv = nginx.start{ template = "examples/nginx/nginx.conf", env = env,
          ca_file = mock.ca_file }
        local finished, err = pcall(function()
          local results = gather(srv, "provider-" .. name)
          local summary = cjson.encode(results)
          assert.is_table(results.answer, summary)
          local n = 0
          for _, e in ipairs(results.answer.iceServers) do
            for _, u in ipairs(e.urls) do
              n = n + 1
              -- this spec's coturn only, and never port 53
              assert.truthy(u:find(":" .. turn.port, 1, true) or u:find(":" .. turn.tls_port,
                1, true), u)
            end
          end
          assert.is_true(n >= 1 and n <= 4, summary)
          local relay = 0
          for _, server in ipairs(results.servers) do
            for _, e in ipairs(server.errors) do
              assert.are_not.equal(401, e.code, "credentials refused: " .. summary)
            end
            for _, c in ipairs(relays(server)) do
              relay = relay + 1
              assert(c.port >= turn.min_port and c.port <= turn.max_port, summary)
            end
          end
          assert(relay >= 1, "no relay candidate: " .. summary)
          assert.is_true(turn:accepted(results.answer.iceServers[#results.answer.iceServers]
            .username), "coturn's log shows no ALLOCATE success")
        end)
        srv:stop()
        assert(finished, err)
      end)
    end
  end)
end)
