-- Shaped answers through the broker: the cap, dedupe and port 53 for every
-- provider, the rest format's own shaping, meta.dropped and its log line,
-- the per-user pick of coturn's and static's pools (with health), regional
-- pools (config and variables), and the req.region a provider sees.
local iceservers = require "iceservers"
local core = require "iceservers.core"
local cjson = require "cjson"
local fx = require "support.fixtures"

local function error_of(fn, ...)
  local args = table.pack(...)
  return fx.error_of(function() return fn(table.unpack(args, 1, args.n)) end)
end
local SECRET = "s3cret-value"

local function quiet(logs)
  return function(level, msg) if logs then logs[#logs + 1] = level .. ": " .. msg end end
end

local urls_of = require("support.fixtures").urls_of

local function coturn(urls, extra, logs)
  local c = { providers = "coturn", log = quiet(logs), stun_urls = "stun:s.example:3478",
    coturn = { secret = SECRET, urls = urls } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return iceservers.new(c)
end

-- Providers of the spec's own, answering what _G.shape_answer(req) returns
-- (a list, or a function of req): "mine" asked per request, "mine_shared"
-- shared (cached, per region).
local tmp
setup(function()
  tmp = fx.tmp()
  local body = [[get = function(_, _, _, req)
      local a = _G.shape_answer
      if type(a) == "function" then return a(req) end
      return a, 600
    end }]]
  tmp.file("mine.lua", "return { " .. body)
  tmp.file("mine_shared.lua", "return { shared = true, " .. body)
end)
teardown(function()
  tmp.cleanup()
  _G.shape_answer = nil
end)

local function mine(answer, extra, name)
  _G.shape_answer = answer
  local c = { providers = name or "mine", log = quiet(), stun_urls = "stun:s.example:3478",
    providers_dir = tmp.dir }
  for k, v in pairs(extra or {}) do c[k] = v end
  return iceservers.new(c)
end

local SIX = { "turn:a.example:3478?transport=udp", "turn:a.example:3478?transport=tcp",
  "turns:a.example:5349?transport=tcp", "turns:a.example:443?transport=tcp",
  "turn:b.example:3478?transport=udp", "turn:b.example:3478?transport=tcp" }

describe("the default cap of 4 URLs", function()
  it("keeps STUN, TURN/UDP, TLS on 443, TURN/TCP of a longer coturn answer", function()
    local logs = {}
    local b = coturn(SIX, nil, logs)
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ "stun:s.example:3478", "turn:a.example:3478?transport=udp",
      "turn:a.example:3478?transport=tcp", "turns:a.example:443?transport=tcp" },
      urls_of(servers))
    assert.are.same({ cap = 3 }, meta.dropped)
    -- one info line for the reason, not one per answer
    for _ = 1, 5 do assert(b:get("bob")) end
    local said = 0
    for _, l in ipairs(logs) do
      if l:find("over the cap of 4", 1, true) then said = said + 1 end
    end
    assert.are.equal(1, said, table.concat(logs, "\n"))
    assert.is_nil(table.concat(logs, "\n"):find(SECRET, 1, true))
  end)

  it("is ICESERVERS_MAX_URLS (0: no cap), and a bad value is a configuration error", function()
    local b = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
      TURN_URLS = table.concat(SIX, ","), STUN_URLS = "", ICESERVERS_MAX_URLS = "2" },
      { log = quiet() })
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ SIX[1], SIX[4] }, urls_of(servers))
    assert.are.same({ cap = 4 }, meta.dropped)
    b = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
      TURN_URLS = table.concat(SIX, ","), ICESERVERS_MAX_URLS = "0" }, { log = quiet() })
    servers, meta = assert(b:get("alice"))
    assert.are.equal(7, #urls_of(servers))
    assert.is_nil(meta.dropped)
    for _, bad in ipairs { "-1", "2.5", "many", "1001" } do
      local err = error_of(iceservers.from_env, { ICESERVERS_MAX_URLS = bad })
      assert.matches("max_urls %(ICESERVERS_MAX_URLS%) must be a whole number", err)
    end
  end)

  it("with a cap of 1 keeps the TURN URL, not the STUN one", function()
    local servers = assert(coturn(SIX, { max_urls = 1 }):get("alice"))
    assert.are.same({ SIX[1] }, urls_of(servers))
  end)

  it("leaves an answer under the cap as it was, and json is what encode writes", function()
    local b = coturn({ SIX[1], SIX[4] })
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ "stun:s.example:3478", SIX[1], SIX[4] }, urls_of(servers))
    assert.is_nil(meta.dropped)
    local big = coturn(SIX)
    for _, format in ipairs { "webrtc", "rest" } do
      for _, who in ipairs { "alice", "bob" } do
        assert.are.equal(iceservers.encode(select(1, big:get(who, nil, format)),
          select(2, big:get(who, nil, format)), format), big:json(who, format))
      end
    end
  end)
end)

describe("dedupe and port 53, for every provider", function()
  local STUN = { urls = { "stun:s.example:3478" } }

  it("drops URLs seen earlier (STUN_URLS included) and those on port 53", function()
    local b = mine({ STUN, { urls = { "turn:a.example:3478", "turn:a.example:53",
      "stun:s.example:3478" }, username = "u", credential = "c" },
      { urls = { "turn:a.example:3478", "turn:b.example:3478" }, username = "u", credential = "c" },
    }, { max_urls = 0 })
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ { urls = { "stun:s.example:3478" } },
      { urls = { "turn:a.example:3478" }, username = "u", credential = "c" },
      { urls = { "turn:b.example:3478" }, username = "u", credential = "c" } }, servers)
    -- (the provider's own repeats normalization drops, and logs, before shaping)
    assert.are.same({ duplicate = 1, port_53 = 1 }, meta.dropped)
  end)

  it("fails a provider whose TURN URLs are all on port 53, so the chain goes on", function()
    local b = mine({ { urls = { "turn:a.example:53" }, username = "u", credential = "c" } })
    local servers, meta = assert(b:get("alice"))
    assert.are.same({ { urls = { "stun:s.example:3478" } } }, servers)
    assert.is_true(meta.degraded)
    assert.matches("mine: no TURN URL left once shaped %(dropped: 1 port_53%)", meta.errors[1])
  end)

  it("is a configuration error in the operator's own TURN_URLS or STUN_URLS", function()
    local err = error_of(iceservers.from_env, { TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
      TURN_URLS = "turn:a.example:3478,turn:a.example:53" })
    assert.matches("TURN_URLS: turn:a.example:53 is on port 53, which browsers block", err)
    err = error_of(iceservers.from_env, { STUN_URLS = "stun:s.example:53" })
    assert.matches("STUN_URLS", err)
    assert.matches("port 53", err)
  end)
end)

describe("the rest format's shaping", function()
  it("caps TURN URIs only and leaves IPv6 literals out unless ICESERVERS_REST_IPV6", function()
    local urls = { "turn:[2001:db8::1]:3478?transport=udp", SIX[1], SIX[2], SIX[3], SIX[4],
      SIX[5] }
    local b = coturn(urls)
    local text = assert(b:json("alice", "rest"))
    local doc = cjson.decode(text)
    assert.are.same({ SIX[1], SIX[2], SIX[4], SIX[5] }, doc.uris)
    local _, meta = b:get("alice", nil, "rest")
    assert.are.same({ ipv6 = 1, cap = 1 }, meta.dropped)
    -- webrtc keeps the IPv6 one (it is the first TURN URL over UDP)
    local servers = assert(b:get("alice"))
    assert.are.same(urls[1], servers[2].urls[1])
    local kept = coturn(urls, { rest_ipv6 = true, max_urls = 0 })
    text = assert(kept:json("alice", "rest"))
    assert.are.same(urls, cjson.decode(text).uris)
  end)

  it("refuses an unknown format as json does", function()
    local b = coturn(SIX)
    assert.matches("unknown format \"xml\"", error_of(b.get, b, "alice", nil, "xml"))
  end)
end)

describe("pick: each user gets n hosts of a pool", function()
  local HOSTS = { "turn:t1.example:3478", "turn:t2.example:3478", "turn:t3.example:3478" }
  local function host_of(servers)
    local turn = servers[#servers]
    assert.are.equal(1, #turn.urls)
    return turn.urls[1]
  end

  it("spreads u1..u10000 over 3 hosts within 5 % of a third, the same host each time",
    function()
      local b = iceservers.new { providers = "coturn", stun_urls = "", log = quiet(),
        coturn = { secret = SECRET, urls = HOSTS, pick = 1 } }
      local n, first = {}, {}
      for i = 1, 10000 do
        local h = host_of(assert(b:get("u" .. i)))
        n[h] = (n[h] or 0) + 1
        first[i] = h
      end
      for _, h in ipairs(HOSTS) do
        assert.is_true(math.abs(n[h] - 10000 / 3) <= 0.05 * 10000 / 3, h .. ": " .. n[h])
      end
      for i = 1, 10000, 7 do assert.are.equal(first[i], host_of(assert(b:get("u" .. i)))) end
      -- another broker (another node, or after a restart) gives the same hosts
      local other = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
        TURN_URLS = table.concat(HOSTS, ","), TURN_PICK = "1", STUN_URLS = "" },
        { log = quiet() })
      for i = 1, 10000, 13 do
        assert.are.equal(first[i], host_of(assert(other:get("u" .. i))))
      end
      -- without t2: the users of t1 and t3 keep theirs
      local two = iceservers.new { providers = "coturn", stun_urls = "", log = quiet(),
        coturn = { secret = SECRET, urls = { HOSTS[1], HOSTS[3] }, pick = 1 } }
      for i = 1, 10000, 3 do
        if first[i] ~= HOSTS[2] then
          assert.are.equal(first[i], host_of(assert(two:get("u" .. i))))
        end
      end
    end)

  it("keeps a host's URLs together, and pick 2 gives two hosts", function()
    local pool = { "turn:t1.example:3478?transport=udp", "turn:t1.example:3478?transport=tcp",
      "turn:t2.example:3478?transport=udp", "turn:t2.example:3478?transport=tcp",
      "turn:t3.example:3478?transport=udp", "turn:t3.example:3478?transport=tcp" }
    local b = iceservers.new { providers = "static", stun_urls = "", log = quiet(),
      max_urls = 0, static = { username = "u", password = "p", urls = pool, pick = 2 } }
    for i = 1, 30 do
      local urls = assert(b:get("u" .. i))[1].urls
      assert.are.equal(4, #urls)
      local hosts = {}
      for _, u in ipairs(urls) do hosts[u:match("^turn:([^:]+)")] = true end
      local n = 0
      for _ in pairs(hosts) do n = n + 1 end
      assert.are.equal(2, n)
      assert.are.same(urls, assert(b:get("u" .. i))[1].urls)
    end
  end)

  it("without a user, picks at random: every host gets some", function()
    local b = iceservers.new { providers = "coturn", stun_urls = "", log = quiet(),
      coturn = { secret = SECRET, urls = HOSTS, pick = 1 } }
    local seen = {}
    for _ = 1, 200 do seen[host_of(assert(b:get()))] = true end
    for _, h in ipairs(HOSTS) do assert.is_true(seen[h], h) end
  end)

  it("takes only healthy hosts; with none healthy, health's rules apply", function()
    local down = {}
    local b = iceservers.new { providers = "coturn", stun_urls = "", log = quiet(),
      health = function(url) return not down[url] end,
      coturn = { secret = SECRET, urls = HOSTS, pick = 1 } }
    local moved = 0
    for i = 1, 300 do
      local before = host_of(assert(b:get("u" .. i)))
      down[HOSTS[2]] = true
      local after = host_of(assert(b:get("u" .. i)))
      assert.are_not.equal(HOSTS[2], after)
      if before ~= HOSTS[2] then assert.are.equal(before, after) else moved = moved + 1 end
      down[HOSTS[2]] = nil
    end
    assert.is_true(moved > 50)
    for _, h in ipairs(HOSTS) do down[h] = true end
    local servers, meta = assert(b:get("u1")) -- fail open: the first answer, unverified
    assert.is_true(meta.unverified)
    assert.are.equal(1, #servers[1].urls)
  end)

  it("must be a whole number of 1 or more", function()
    for _, bad in ipairs { "0", "1.5", "-2", "x" } do
      local err = error_of(iceservers.from_env, { TURN_PROVIDER = "coturn",
        TURN_SECRET = SECRET, TURN_URLS = HOSTS[1], TURN_PICK = bad })
      assert.matches("TURN_PICK", err)
    end
  end)
end)

describe("regional pools", function()
  local EU = { "turn:eu1.example:3478", "turn:eu2.example:3478" }
  local US = { "turn:us1.example:3478" }

  local function regional(extra)
    local c = { secret = SECRET, regions = { eu = { urls = EU }, us = { urls = US,
      secret = "us-secret" } }, default_region = "eu" }
    for k, v in pairs(extra or {}) do c[k] = v end
    return iceservers.new { providers = "coturn", stun_urls = "", log = quiet(), coturn = c }
  end

  local function check(servers, secret)
    local e = servers[1]
    local sig = core.b64encode(core.hmac("sha1", secret, e.username))
    assert.are.equal(sig, e.credential)
    return e.urls
  end

  it("serves req.region's pool, signed with that region's secret", function()
    local b = regional()
    assert.are.same(EU, check(assert(b:get("alice", { region = "eu" })), SECRET))
    assert.are.same(US, check(assert(b:get("alice", { region = "us" })), "us-secret"))
    -- no region, or an unknown one: default_region's
    assert.are.same(EU, check(assert(b:get("alice")), SECRET))
    assert.are.same(EU, check(assert(b:get("alice", { region = "mars" })), SECRET))
    local text = assert(b:json("alice", "webrtc", { region = "us" }))
    assert.truthy(text:find("us1.example", 1, true))
  end)

  it("comes from TURN_REGIONS, TURN_URLS_<REGION>, TURN_SECRET_<REGION>, TURN_PICK_<REGION>",
    function()
      local b = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
        TURN_REGIONS = "eu,us-east", TURN_URLS_EU = table.concat(EU, ","), TURN_PICK_EU = "1",
        TURN_URLS_US_EAST = US[1], TURN_SECRET_US_EAST = "us-secret",
        TURN_DEFAULT_REGION = "us-east", STUN_URLS = "" }, { log = quiet() })
      assert.are.same(US, check(assert(b:get("alice")), "us-secret"))
      local eu = check(assert(b:get("alice", { region = "eu" })), SECRET)
      assert.are.equal(1, #eu)
      assert.are.same(eu, check(assert(b:get("alice", { region = "eu" })), SECRET))
    end)

  it("takes the provider's own urls as the default pool when default_region is unset",
    function()
      local b = iceservers.new { providers = "static", stun_urls = "", log = quiet(),
        static = { username = "u", password = "p", urls = { "turn:home.example:3478" },
          regions = { eu = { urls = EU, username = "eu-user" } } } }
      local servers = assert(b:get(nil, { region = "eu" }))
      assert.are.same(EU, servers[1].urls)
      assert.are.equal("eu-user", servers[1].username)
      assert.are.equal("p", servers[1].credential)
      assert.are.same({ "turn:home.example:3478" }, assert(b:get())[1].urls)
    end)

  it("makes every mistake a one-line configuration error", function()
    local cases = {
      { { regions = { EU = { urls = EU } }, default_region = "EU" }, "region name 'EU'" },
      { { regions = { eu = { urls = EU, colour = "x" } }, default_region = "eu" },
        "no option 'colour' per region" },
      { { regions = { eu = { urls = EU } } }, "set default_region" },
      { { regions = { eu = { urls = EU } }, default_region = "us" }, "'us' is not one of" },
      { { regions = { eu = { urls = EU } }, default_region = "eu", urls = US }, "not both" },
      { { regions = { eu = {} }, default_region = "eu" }, "regions.eu.urls" },
      { { regions = { eu = { urls = { "turn:x:53" } } }, default_region = "eu" }, "port 53" },
      { { default_region = "eu", urls = US }, "regions" },
    }
    for _, case in ipairs(cases) do
      local c = { secret = SECRET }
      for k, v in pairs(case[1]) do c[k] = v end
      local err = error_of(iceservers.new, { providers = "coturn", log = quiet(), coturn = c })
      assert.matches(case[2], err, 1, true)
      assert.is_nil(err:find("\n"))
    end
    local err = error_of(iceservers.from_env, { TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
      TURN_REGIONS = "eu", TURN_DEFAULT_REGION = "eu" })
    assert.matches("TURN_URLS_EU", err, 1, true)
  end)

  it("reads a region's secret file as TURN_SECRET_FILE is read", function()
    local path = tmp.file("eu-secrets", "eu-file-secret\nold\n", "600")
    local b = iceservers.new { providers = "coturn", stun_urls = "", log = quiet(),
      coturn = { regions = { eu = { urls = EU, secret_file = path } },
        default_region = "eu", secret = "top" } }
    assert.are.same(EU, check(assert(b:get("alice")), "eu-file-secret"))
  end)

  local function by_region(asked)
    return function(req)
      asked[#asked + 1] = req.region or "-"
      return { { urls = { "turn:" .. (req.region or "any") .. ".example:3478" },
        username = "u", credential = "c" } }, 600
    end
  end

  it("hands a provider req.region", function()
    local asked = {}
    local b = mine(by_region(asked))
    assert.are.same({ "turn:eu.example:3478" },
      assert(b:get("alice", { region = "eu" }))[2].urls)
    assert.are.same({ "eu" }, asked)
  end)

  it("caches a shared provider's answer per region (its req holds the region only)",
    function()
      local asked = {}
      local b = mine(by_region(asked), nil, "mine_shared")
      for _ = 1, 3 do
        assert.are.same({ "turn:eu.example:3478" },
          assert(b:get("alice", { region = "eu", secret = "x" }))[2].urls)
        assert.are.same({ "turn:us.example:3478" },
          assert(b:get("bob", { region = "us" }))[2].urls)
        assert.are.same({ "turn:any.example:3478" }, assert(b:get("carol"))[2].urls)
        -- not a region name: the answer without one
        assert.are.same({ "turn:any.example:3478" },
          assert(b:get("dave", { region = "Not A Region" }))[2].urls)
      end
      table.sort(asked)
      assert.are.same({ "-", "eu", "us" }, asked)
    end)
end)
