-- The user id in coturn's username: the ids coturn refuses (its
-- is_secure_string check) are refused here, before a credential the server
-- would drop is handed out; TURN_USER_ID=opaque puts a keyed hash of the id
-- there instead, so any id works and none shows.  Against a real coturn in
-- spec/coturn_spec.lua.
local iceservers = require "iceservers"
local coturn = require "iceservers.providers.coturn"
local core = require "iceservers.core"
local cjson = require "cjson"
local fx = require "support.fixtures"

local TURN = { "turn:turn.example.com:3478?transport=udp" }
local SECRET = "s3cret-value"
local T0 = 1800000000

-- What coturn 4.6.1 refuses in a username (ns_turn_utils.c is_secure_string).
local REFUSED = {
  { "a b", "a space" },
  { "o'brien", "'" },
  { 'say"hi"', '"' },
  { "a\\b", "\\" },
  { "reunion-selector", '"union" and "select"' },
  { "UNION-SeLeCt", '"union" and "select"' },
}
local PLAIN = { "ålice", "a:b", "bob@example.com", "union-only", "select-only", "O-Brien" }

local function broker(extra, clock)
  local opts = { secret = SECRET, urls = TURN, ttl = 3600 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return iceservers.new { providers = "coturn", stun_urls = {}, log = function() end,
    now = (clock or fx.clock(T0)).now, coturn = opts }
end

local function b64url(raw)
  return (core.b64encode(raw):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end

-- The opaque id by the documented recipe, computed here independently.
local function opaque(id, secret, key)
  key = key or core.hmac("sha256", secret, "iceservers user id")
  return b64url(core.hmac("sha256", key, id))
end

local function json_username(b, user)
  local text = assert(b:json(user))
  return cjson.decode(text).iceServers[1].username
end

local error_of = fx.error_of

describe("coturn's check_user", function()
  local opts = { user_id = "plain", opaque = false }

  it("refuses each id coturn refuses, naming what coturn refuses", function()
    for _, case in ipairs(REFUSED) do
      local ok, why = coturn.check_user(case[1], opts)
      assert.is_nil(ok, case[1])
      assert.are.equal("string", type(why))
      assert.is_truthy(why:find(case[2], 1, true), why)
      assert.matches("^coturn refuses user ids with ", why)
      assert.matches("TURN_USER_ID=opaque", why)
      assert.is_nil(why:find("\n", 1, true))
    end
  end)


  it("accepts the ids coturn accepts", function()
    for _, id in ipairs(PLAIN) do
      assert.are.equal(true, coturn.check_user(id, opts), id)
    end
  end)

  -- The check is plain finds (LuaJIT compiles no pattern): here it meets
  -- coturn's rule written as patterns, on ids made to hit the edges (the
  -- refused bytes, both words in mixed case, one of them only; no control
  -- characters, which the broker refuses before).
  it("agrees with coturn's rule, written as patterns, on 20 000 generated ids", function()
    local parts = { "a", "Z", "0", "-", ":", "@", " ", "'", '"', "\\", "\200",
      "\195\165", "union", "UnIoN", "select", "SELECT", "uni", "sel", "on", "ect" }
    local seed, refused, accepted = 12345, 0, 0
    local function rand(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    for _ = 1, 20000 do
      local t = {}
      for j = 1, rand(6) do t[j] = parts[rand(#parts)] end
      local id = table.concat(t)
      local want = not (id:find("[%c '\"\\]")
        or (id:find("[uU][nN][iI][oO][nN]") and id:find("[sS][eE][lL][eE][cC][tT]")))
      local ok = coturn.check_user(id, opts)
      assert.are.equal(want, ok == true, ("%q"):format(id))
      if ok then accepted = accepted + 1 else refused = refused + 1 end
    end
    assert.is_true(refused > 1000 and accepted > 1000, refused .. " refused, " .. accepted)
  end)

  it("accepts any id with user_id = opaque", function()
    for _, case in ipairs(REFUSED) do
      assert.are.equal(true, coturn.check_user(case[1], { user_id = "opaque", opaque = true }))
    end
  end)
end)

describe("the coturn provider with plain user ids (the default)", function()
  it("never sees control characters: the broker refuses them (coturn refuses tab, CR, LF)",
    function()
      local b = broker()
      for _, id in ipairs { "a\tb", "a\rb", "a\nb", "a\0b", "a\127b" } do
        local servers, err = b:get(id)
        assert.is_nil(servers)
        assert.are.equal("invalid user: control characters are not allowed", err)
      end
    end)

  it("refuses those ids in get and json as invalid users, not a failure", function()
    local b = broker()
    for _, case in ipairs(REFUSED) do
      local servers, err = b:get(case[1])
      assert.is_nil(servers)
      assert.matches("^invalid user: coturn refuses user ids with ", err)
      local json, jerr = b:json(case[1])
      assert.is_nil(json)
      assert.are.equal(err, jerr)
    end
    assert.truthy(b:get("alice")) -- no backoff, no fallback
  end)

  it("signs the other ids as they are", function()
    local b = broker()
    for _, id in ipairs(PLAIN) do
      local servers = assert(b:get(id))
      assert.are.equal((T0 + 3600) .. ":" .. id, servers[1].username)
      assert.are.equal(servers[1].username, json_username(b, id))
    end
  end)

  it("refuses another TURN_USER_ID value as a config error naming it", function()
    local err = error_of(function() broker { user_id = "hashed" } end)
    assert.matches("TURN_USER_ID must be plain or opaque", err, 1, true)
    err = error_of(function()
      iceservers.from_env { TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
        TURN_URLS = TURN[1], TURN_USER_ID = "Opaque\n" }
    end)
    assert.matches("TURN_USER_ID must be plain or opaque, not 'Opaque?'", err, 1, true)
    assert.is_nil(err:find("\n", 1, true))
  end)

  it("refuses TURN_USER_ID_KEY without TURN_USER_ID=opaque, and an empty key", function()
    local key = "k3y-that-must-not-show"
    local err = error_of(function() broker { user_id_key = key } end)
    assert.matches("TURN_USER_ID_KEY is used only with TURN_USER_ID=opaque", err, 1, true)
    assert.is_nil(err:find(key, 1, true))
    err = error_of(function() broker { user_id = "opaque", user_id_key = "" } end)
    assert.matches("TURN_USER_ID_KEY is empty", err, 1, true)
  end)
end)

describe("the coturn provider with TURN_USER_ID=opaque", function()
  local ID = "^(%d+):([%w_%-]+)$"

  it("puts base64url(HMAC-SHA256(HMAC-SHA256(secret, ...), id)) in the username", function()
    local b = broker { user_id = "opaque" }
    local ids = {}
    for _, id in ipairs { "o'brien", "a b", "a\\b", "reunion-selector", "alice", "ålice" } do
      local servers = assert(b:get(id))
      local expiry, oid = servers[1].username:match(ID)
      assert.are.equal(tostring(T0 + 3600), expiry, servers[1].username)
      assert.are.equal(43, #oid) -- 32 bytes, no padding
      assert.are.equal(opaque(id, SECRET), oid)
      assert.are.equal(core.b64encode(core.hmac("sha1", SECRET, servers[1].username)),
        servers[1].credential)
      assert.are.equal(servers[1].username, json_username(b, id))
      assert.is_nil(ids[oid])
      ids[oid] = id
    end
  end)

  it("is stable: the same id gives the same username from another broker", function()
    local a = assert(broker({ user_id = "opaque" }):get("carol"))
    local b = assert(broker({ user_id = "opaque" }):get("carol"))
    assert.are.equal(a[1].username, b[1].username)
  end)

  it("leaves the bare expiry for no user", function()
    local b = broker { user_id = "opaque" }
    assert.are.equal(tostring(T0 + 3600), assert(b:get())[1].username)
    assert.are.equal(tostring(T0 + 3600), json_username(b, nil))
  end)

  it("changes with the signing secret, unless TURN_USER_ID_KEY is set", function()
    local tmp = fx.tmp()
    local path = tmp.file("secrets", "first-secret\n")
    local clock = fx.clock(T0)
    local function from_file(extra)
      local opts = { urls = TURN, secret_file = path, user_id = "opaque" }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return iceservers.new { providers = "coturn", stun_urls = {}, log = function() end,
        now = clock.now, coturn = opts }
    end
    local derived, keyed = from_file(), from_file { user_id_key = "id-key" }
    local function oid(b) return select(2, assert(b:get("dave"))[1].username:match(ID)) end
    assert.are.equal(opaque("dave", "first-secret"), oid(derived))
    assert.are.equal(opaque("dave", nil, "id-key"), oid(keyed))
    -- rotated (the file's mtime is real time, long before T0: not a fresh file)
    fx.write(path, "second-secret\nfirst-secret\n")
    clock.t = T0 + 10
    assert.are.equal(opaque("dave", "second-secret"), oid(derived))
    assert.are.equal(opaque("dave", nil, "id-key"), oid(keyed))
    local _, json_oid = json_username(keyed, "dave"):match(ID)
    assert.are.equal(opaque("dave", nil, "id-key"), json_oid)
    tmp.cleanup()
  end)

  it("reads TURN_USER_ID and TURN_USER_ID_KEY from the environment", function()
    local b = iceservers.from_env({ TURN_PROVIDER = "coturn", TURN_SECRET = SECRET,
      TURN_URLS = TURN[1], STUN_URLS = "", TURN_USER_ID = "opaque",
      TURN_USER_ID_KEY = "env-key" }, { now = fx.clock(T0).now })
    local servers = assert(b:get("o'brien"))
    assert.are.equal((T0 + 86400) .. ":" .. opaque("o'brien", nil, "env-key"),
      servers[1].username)
  end)
end)
