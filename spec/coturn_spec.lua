-- TURN REST credentials against a real coturn: what the broker and the CLI
-- hand out must get an allocation (and relayed traffic) from turnserver, and
-- what they must not hand out must be refused by it.  Few successful
-- allocations (each takes 1-6 s of uclient's own jitter); refusals are instant.
local coturn = require "support.coturn"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"
local iceservers = require "iceservers"

local INTERP = jit and "luajit" or "lua5.4"
local TTL = 3600
local UCLIENT_TIMEOUT = 15 -- seconds per allocation attempt; successes take 1-6 s

-- Fresh random names per run: nothing here depends on fixed secrets or users.
local function token(n) return core.hex(core.random_bytes(n)) end
local S1, S2, S3 = token(16), token(16), token(16) -- old, new, not yet on the server
local RUN = token(4)
local function user(name) return name .. "-" .. RUN end

-- Ids coturn 4.6 refuses in a username (is_secure_string), and ids it takes.
local UNSAFE_IDS = { "o'brien", "a b", "a\\b", 'say"hi"', "reunion-selector" }
local PLAIN_IDS = { "ålice", "a:b", "bob@example.com" }

local function sign(secret, username)
  return core.hmac_key("sha1", secret):b64digest(username)
end

local function b64url(raw)
  return (core.b64encode(raw):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end

local function expiry_of(username)
  return tonumber(username:match("^(%d+):"))
end

-- The entry of a server list that carries the TURN credential.
local function turn_entry(servers)
  for _, s in ipairs(servers) do
    if s.username then return s end
  end
  error("no TURN entry in " .. cjson.encode(servers))
end

-- host, port of the entry's URL for that transport (taken from the answer,
-- so the URLs handed out are the ones that get tested).
local function endpoint(entry, transport)
  local urls = type(entry.urls) == "table" and entry.urls or { entry.urls }
  for _, url in ipairs(urls) do
    local host, port, t = url:match("^turn:([%d%.]+):(%d+)%?transport=(%a+)$")
    if t == transport then return host, tonumber(port) end
  end
  error("no turn: URL with transport=" .. transport .. " in " .. cjson.encode(urls))
end

describe("credentials against a real coturn", function()
  local turn, tmp, urls

  local function broker(opts)
    local config = {
      providers = { "coturn" },
      stun_urls = {},
      coturn = { secret = opts.secret, secret_file = opts.secret_file, urls = urls, ttl = TTL,
        user_id = opts.user_id, user_id_key = opts.user_id_key },
      now = opts.now,
    }
    return iceservers.new(config)
  end

  -- Broker credentials for `name`; checks the answer's shape on the way (the
  -- username's user part is `shown`, by default the name itself).
  local function credentials(b, name, shown)
    local servers, meta = b:get(name)
    assert(servers, meta)
    assert.are.equal("coturn", meta.provider)
    local entry = turn_entry(servers)
    assert.are.equal(shown or name, entry.username:match("^%d+:(.*)$"))
    assert.are.equal(expiry_of(entry.username), meta.expires)
    assert.are.equal(TTL, meta.ttl)
    return entry
  end

  -- Credentials for `name` from a broker made with `opts`, checked to be
  -- signed with `secret`.
  local function signed(opts, name, secret)
    local entry = credentials(broker(opts), user(name))
    assert.are.equal(sign(secret, entry.username), entry.credential)
    return entry
  end

  -- The same from a secrets file (tmp/<file>) listing `secrets` in order: the
  -- first one signs.
  local function from_secrets_file(file, secrets, name)
    local path = tmp .. "/" .. file
    sh.write_file(path, table.concat(secrets, "\n") .. "\n")
    assert(sh.run("chmod 600 " .. sh.quote(path))) -- iceservers refuses a readable one
    return signed({ secret_file = path }, name, secrets[1])
  end

  local function allocate(entry, transport)
    local host, port = endpoint(entry, transport)
    return coturn.allocate{ host = host, port = port, tcp = transport == "tcp",
      user = entry.username, password = entry.credential, timeout = UCLIENT_TIMEOUT }
  end

  -- An allocation that must succeed: traffic went both ways, and coturn's own
  -- log shows the ALLOCATE of exactly this username succeeding.
  local function assert_accepted(entry, transport)
    local ok, out, info = allocate(entry, transport)
    assert(ok, ("allocation over %s failed (exit %s):\n%s\n--- coturn log ---\n%s")
      :format(transport, tostring(info.code), out, turn:log():sub(-3000)))
    assert.is_true(info.received >= 1)
    assert(turn:accepted(entry.username), "coturn's log shows no ALLOCATE success for "
      .. entry.username)
    assert.is_false(turn:rejected(entry.username))
  end

  -- Allocations at once that must all succeed, as assert_accepted.
  local function assert_all_accepted(entries, transport)
    local runs = {}
    for i, entry in ipairs(entries) do
      local host, port = endpoint(entry, transport)
      runs[i] = { host = host, port = port, tcp = transport == "tcp", user = entry.username,
        password = entry.credential, timeout = UCLIENT_TIMEOUT }
    end
    for i, res in ipairs(coturn.allocate_all(runs)) do
      local ok, out, info = res[1], res[2], res[3]
      local username = entries[i].username
      assert(ok, ("allocation for %s failed (exit %s):\n%s\n--- coturn log ---\n%s")
        :format(username, tostring(info.code), out, turn:log():sub(-3000)))
      assert.is_true(info.received >= 1)
      assert(turn:accepted(username), "coturn's log shows no ALLOCATE success for " .. username)
      assert.is_false(turn:rejected(username))
      assert.is_false(turn:bad_username(username))
    end
  end

  -- An allocation that must fail, and fail because coturn refused the
  -- credential (not because nothing answered).
  local function assert_refused(entry, transport)
    local ok, out = allocate(entry, transport)
    assert(not ok, "coturn accepted " .. entry.username .. ":\n" .. out)
    assert.matches("Cannot complete Allocation", out, 1, true)
    assert(turn:rejected(entry.username), "coturn's log shows no refusal of "
      .. entry.username .. ":\n" .. turn:log():sub(-2000))
    assert.is_false(turn:accepted(entry.username))
  end

  setup(function()
    -- coturn mid-rotation: it holds the old secret S1 and the new one S2.
    turn = coturn.start{ secrets = { S1, S2 }, realm = "iceservers.test" }
    tmp = sh.tmpdir()
    urls = {
      ("turn:127.0.0.1:%d?transport=udp"):format(turn.port),
      ("turn:127.0.0.1:%d?transport=tcp"):format(turn.port),
    }
  end)

  teardown(function()
    if turn then turn:stop() end
    if tmp then sh.rmrf(tmp) end
  end)

  it("accepts the broker's credentials over UDP", function()
    assert_accepted(signed({ secret = S1 }, "alice", S1), "udp")
  end)

  it("accepts the broker's credentials over TCP", function()
    local entry = credentials(broker{ secret = S1 }, user("bob"))
    assert_accepted(entry, "tcp")
  end)

  it("accepts the credentials bin/iceservers prints", function()
    local outfile = tmp .. "/cli.out"
    local env = {
      "env -i PATH=/usr/bin:/bin",
      "TURN_PROVIDER=coturn",
      "TURN_SECRET=" .. sh.quote(S1),
      "TURN_URLS=" .. sh.quote(table.concat(urls, ",")),
      "TURN_TTL=" .. TTL,
      "STUN_URLS=",
    }
    local build = os.getenv("ICESERVERS_BUILD")
    if build then env[#env + 1] = "ICESERVERS_BUILD=" .. sh.quote(build) end
    local name = user("carol")
    local ok, err = sh.run(("%s %s bin/iceservers --user %s --format webrtc >%s")
      :format(table.concat(env, " "), INTERP, sh.quote(name), sh.quote(outfile)))
    local out = assert(sh.read_file(outfile))
    assert(ok, "bin/iceservers failed:\n" .. err .. out)
    local doc = cjson.decode(out)
    assert.are.equal(1, #doc.iceServers) -- STUN_URLS= : no STUN entry
    local entry = turn_entry(doc.iceServers)
    assert.are.equal(name, entry.username:match("^%d+:(.*)$"))
    assert.are.equal(TTL, doc.ttl)
    assert.are.equal(expiry_of(entry.username), doc.expires)
    assert_accepted(entry, "udp")
  end)

  it("refuses credentials signed with a secret it does not hold", function()
    assert_refused(signed({ secret = S3 }, "mallory", S3), "udp")
  end)

  it("refuses an expired credential (the broker on a clock two hours back)", function()
    -- Signed with a secret coturn holds: only the expiry can make it fail.
    local entry = signed({ secret = S1, now = function() return os.time() - 7200 end }, "dave", S1)
    assert.is_true(expiry_of(entry.username) < os.time() - 60)
    assert_refused(entry, "udp")
  end)

  it("refuses once the broker signs with a secret coturn does not hold yet", function()
    -- Rotated too early: the new S3 first (it signs), the S2 coturn knows after it.
    assert_refused(from_secrets_file("secrets-early", { S3, S2 }, "erin"), "udp")
  end)

  it("accepts the new secret while coturn holds the old and the new one", function()
    -- Rotated in order: coturn got S2 beside S1 first, then the broker's file
    -- put S2 first (it signs) and kept S1 after it.
    assert_accepted(from_secrets_file("secrets-rotated", { S2, S1 }, "frank"), "udp")
  end)

  it("refuses the user ids it would refuse, and hands out nothing for them", function()
    local b = broker{ secret = S1 }
    for _, id in ipairs(UNSAFE_IDS) do
      local servers, err = b:get(user(id))
      assert.is_nil(servers)
      assert.matches("^invalid user: coturn refuses user ids with ", err)
      local json, jerr = b:json(user(id))
      assert.is_nil(json)
      assert.are.equal(err, jerr)
    end
  end)

  it("refuses those ids itself when they are signed by hand (the premise)", function()
    local expiry = os.time() + TTL
    for _, id in ipairs(UNSAFE_IDS) do
      local username = expiry .. ":" .. user(id)
      local entry = { urls = urls, username = username, credential = sign(S1, username) }
      -- a wrong username is answered at once (400), so no long timeout is needed
      local ok, out, info = allocate(entry, "udp")
      assert(not ok, "coturn accepted " .. username .. ":\n" .. out)
      assert.is_true(info.seconds < UCLIENT_TIMEOUT)
      assert.matches("error 400 (Bad Request)", out, 1, true)
      assert(turn:bad_username(username), "coturn's log shows no wrong username " .. username
        .. ":\n" .. turn:log():sub(-2000))
      assert.is_false(turn:accepted(username))
    end
  end)

  it("accepts any of those ids with TURN_USER_ID=opaque, which none of them shows", function()
    local b = broker{ secret = S1, user_id = "opaque" }
    local entries = {}
    for i, id in ipairs(UNSAFE_IDS) do
      local servers = assert(b:get(user(id)))
      entries[i] = turn_entry(servers)
      local oid = entries[i].username:match("^%d+:([%w_%-]+)$")
      assert.are.equal(43, #oid)
      assert.is_nil(entries[i].username:find(user(id), 1, true))
    end
    assert_all_accepted(entries, "udp")
  end)

  it("accepts an opaque id keyed by TURN_USER_ID_KEY over TCP", function()
    local entry = credentials(broker{ secret = S2, user_id = "opaque", user_id_key = S3 },
      user("o'brien"), b64url(core.hmac("sha256", S3, user("o'brien"))))
    assert.are.equal(sign(S2, entry.username), entry.credential)
    assert_all_accepted({ entry }, "tcp")
  end)

  it("accepts the plain ids it takes, signed as they are", function()
    local b = broker{ secret = S1 }
    local entries = {}
    for i, id in ipairs(PLAIN_IDS) do
      entries[i] = credentials(b, user(id))
    end
    assert_all_accepted(entries, "udp")
  end)
end)
