-- examples/providers/draft_endpoint.lua against the example nginx.conf
-- serving coturn: a broker in this process asks another iceservers endpoint
-- (over loopback http, with the endpoint's key), and the TURN credential it
-- hands out is coturn's, signed with the coturn secret.
local core = require "iceservers.core"
local iceservers = require "iceservers"
local nginx = require "support.nginx"

local SECRET = "COTURN-SECRET-Dq8Lm3Xe"
local KEY = "ENDPOINT-KEY-Wp5Ns9Tc"
local TURN_URLS = { "turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp" }

local function signed(username)
  return core.b64encode(core.hmac("sha1", SECRET, username))
end

describe("examples/providers/draft_endpoint.lua against the example nginx", function()
  local srv

  lazy_setup(function()
    srv = nginx.start{ template = "examples/nginx/nginx.conf", workers = 1, env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = SECRET, TURN_URLS = table.concat(TURN_URLS, ","),
      STUN_URLS = "stun:stun.example.org:3478", ICESERVERS_API_KEY = KEY,
    } }
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  local logged
  local function broker(env)
    logged = {}
    local e = { TURN_PROVIDER = "draft_endpoint", ICESERVERS_PROVIDERS_DIR = "examples/providers",
      DRAFT_ENDPOINT_URL = srv:url("/ice-servers"), STUN_URLS = "", TURN_FALLBACK = "none" }
    for k, v in pairs(env or {}) do e[k] = v end
    return iceservers.from_env(e, { log = function(_, msg) logged[#logged + 1] = msg end })
  end

  it("hands out coturn's credential, signed with its secret", function()
    for _, user in ipairs { false, "alice" } do
      local servers, meta = broker({ DRAFT_ENDPOINT_KEY = KEY }):get(user or nil)
      assert.is_table(servers, meta)
      assert.are.equal(1, #servers)
      local turn = servers[1]
      assert.are.same(TURN_URLS, turn.urls)
      -- the example endpoint does not take the user from the query
      local expiry = assert(tonumber(turn.username:match("^(%d+)$")), turn.username)
      assert.is_true(math.abs(expiry - (os.time() + 86400)) < 120)
      assert.are.equal(signed(turn.username), turn.credential)
      assert.are.equal(86400, meta.ttl)
    end
  end)

  it("fails without the endpoint's key (401), naming no key", function()
    for _, key in ipairs { false, "wrong" } do
      local servers, err = broker({ DRAFT_ENDPOINT_KEY = key or nil }):get()
      assert.is_nil(servers)
      assert.matches("HTTP 401", err)
      assert.is_nil(err:find(KEY, 1, true), err)
      for _, line in ipairs(logged) do assert.is_nil(line:find(KEY, 1, true), line) end
    end
  end)
end)

describe("examples/providers/draft_endpoint.lua's request", function()
  local function url_for(base, user)
    local seen
    local broker = iceservers.from_env({
      TURN_PROVIDER = "draft_endpoint", ICESERVERS_PROVIDERS_DIR = "examples/providers",
      DRAFT_ENDPOINT_URL = base, DRAFT_ENDPOINT_KEY = "k&y", STUN_URLS = "",
    }, { log = function() end, http = function(req)
      seen = req.url
      return { status = 200, headers = {}, body = '{"username":"u","password":"p",'
        .. '"ttl":600,"uris":["turn:t.example:3478"]}' }
    end })
    assert(broker:get(user))
    return seen
  end

  it("sends no username= without a user", function()
    assert.are.equal("https://auth.example/turn?service=turn&key=k%26y",
      url_for("https://auth.example/turn"))
  end)

  it("extends a query of the URL with &, not a second ?", function()
    assert.are.equal("https://auth.example/turn?format=rest&service=turn&username=z%20o&key=k%26y",
      url_for("https://auth.example/turn?format=rest", "z o"))
  end)
end)
