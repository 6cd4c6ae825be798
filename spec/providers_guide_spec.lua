-- docs/providers.md cannot rot: its example provider (acme.lua) is loaded and
-- run here against a mock of the API it describes, and the guide's own spec
-- (acme_spec.lua) is run with busted, both as the guide prints them.
local iceservers = require "iceservers"
local sh = require "support.sh"
local fx = require "support.fixtures"

local GUIDE = assert(sh.read_file("docs/providers.md"))
local T = 1800000000
local TOKEN = "acme-token-Zq81xW"

-- The code block after `<!-- example: name -->`.
local function example(name)
  local code = GUIDE:match("<!%-%- example: " .. name:gsub("%p", "%%%0")
    .. " %-%->%s*```lua\n(.-)\n```")
  return (assert(code, "no example " .. name .. " in docs/providers.md"))
end

describe("the guide's example provider", function()
  local tmp
  setup(function()
    tmp = fx.tmp()
    tmp.file("acme.lua", example("acme.lua"))
  end)
  teardown(function() tmp.cleanup() end)

  -- A mock of ACME's API: answers what `reply` says, records the requests.
  local function build(reply, extra)
    local calls, lines = {}, {}
    local clock = fx.clock(T)
    local config = {
      providers = "acme", providers_dir = tmp.dir, stun_urls = {}, fallback = "none",
      now = clock.now, log = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end,
      acme = { api_token = TOKEN },
      http = function(req)
        calls[#calls + 1] = req
        local r = type(reply) == "function" and reply(#calls) or reply
        r.headers = r.headers or {}
        return r
      end,
    }
    for k, v in pairs(extra or {}) do config[k] = v end
    return iceservers.new(config), calls, lines, clock
  end

  local OK = { status = 201, body = [[{"expires_at": 1800007200, "ice_servers": [
    {"urls": ["stun:eu.acme.example:3478", "turn:eu.acme.example:3478?transport=udp"],
     "username": "acme-u", "password": "acme-p"},
    {"url": "turns:eu.acme.example:5349?transport=tcp", "username": "acme-u",
     "password": "acme-p"}]}]] }

  it("asks the API as documented, and serves its answer cached and normalized", function()
    local b, calls = build(OK)
    local servers, meta = assert(b:get("alice"))
    assert.are.same({
      { urls = { "stun:eu.acme.example:3478" } },
      { urls = { "turn:eu.acme.example:3478?transport=udp" }, username = "acme-u",
        credential = "acme-p" },
      { urls = { "turns:eu.acme.example:5349?transport=tcp" }, username = "acme-u",
        credential = "acme-p" },
    }, servers)
    -- expires_at is 2 h ahead, the asked ttl (TURN_TTL) 1 h: cut to 1 h
    assert.are.same({ provider = "acme", ttl = 3600, expires = T + 3600 }, meta)
    assert.truthy(b:json("bob"))
    assert.are.equal(1, #calls)
    local req = calls[1]
    assert.are.equal("POST", req.method)
    assert.are.equal("https://api.acme.example/v1/regions/eu/credentials", req.url)
    assert.are.equal("Bearer " .. TOKEN, req.headers.Authorization)
    assert.are.same({ ttl = 3600 }, require("cjson").decode(req.body))
  end)

  it("fails in one line without its token, backs off for a Retry-After", function()
    local b, calls, lines, clock = build(function(n)
      if n == 1 then
        return { status = 429, headers = { ["retry-after"] = "30" },
          body = '{"message": "slow down, ' .. TOKEN .. '"}' }
      end
      return OK
    end)
    local servers, err = b:get()
    assert.is_nil(servers)
    assert.are.equal("every provider failed: acme: 429 slow down, [redacted]", err)
    clock.t = T + 20
    assert.matches("not retried for 10 s", select(2, b:get()))
    clock.t = T + 31
    assert(b:get())
    assert.are.equal(2, #calls)
    for _, line in ipairs(lines) do assert.is_nil(line:find(TOKEN, 1, true), line) end
  end)

  it("refuses a bad configuration when the broker is built", function()
    local ok, err = pcall(build, OK, { acme = { api_token = TOKEN, region = "europe" } })
    assert.is_false(ok)
    assert.matches("provider 'acme': ACME_REGION must be a two%-letter region", err)
    ok, err = pcall(build, OK, { acme = { api_token = TOKEN,
      api_url = "http://api.acme.example" } })
    assert.is_false(ok)
    assert.matches("ACME_API_URL must be an https:// URL", err)
    ok, err = pcall(build, OK, { acme = {} })
    assert.is_false(ok)
    assert.matches("needs option 'api_token' (ACME_API_TOKEN)", err, 1, true)
  end)

  it("passes its own spec, as the guide prints it", function()
    local dir = sh.tmpdir("guide")
    finally(function() sh.rmrf(dir) end)
    assert(sh.run_clean("mkdir " .. sh.quote(dir .. "/providers")))
    fx.write(dir .. "/providers/acme.lua", example("acme.lua"))
    fx.write(dir .. "/acme_spec.lua", example("acme_spec.lua"))
    local _, pwd = sh.run_clean("pwd")
    local root = pwd:gsub("%s+$", "")
    local build_dir = os.getenv("ICESERVERS_BUILD") or ("build/" .. _VERSION:match("%d+%.%d+"))
    if build_dir:sub(1, 1) ~= "/" then build_dir = root .. "/" .. build_dir end
    local interp = rawget(_G, "jit") and "luajit" or "lua5.4"
    local _, busted = sh.run_clean("command -v busted")
    local ok, out = sh.run(("cd %s && LUA_PATH=%s LUA_CPATH=%s %s %s acme_spec.lua"):format(
      sh.quote(dir), sh.quote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"),
      sh.quote(build_dir .. "/?.so;;"), interp, (busted:gsub("%s+$", ""))))
    assert(ok, out)
    assert.matches("2 successes / 0 failures / 0 errors", out, 1, true)
  end)
end)
