-- bin/iceservers: output, exit status and stderr, run as operators run it.
local sh = require "support.sh"
local cjson = require "cjson"
local core = require "iceservers.core"

local INTERP = jit and "luajit" or "lua5.4"
local TURN = "turn:turn.example.com:3478?transport=udp"

-- Runs the CLI with a clean environment plus env; returns code, stdout, stderr.
local function cli(env, args)
  local tmp = sh.tmpdir()
  local parts = { "env -i PATH=/usr/bin:/bin" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. sh.quote(v) end
  local build = os.getenv("ICESERVERS_BUILD")
  if build then parts[#parts + 1] = "ICESERVERS_BUILD=" .. sh.quote(build) end
  parts[#parts + 1] = INTERP .. " bin/iceservers " .. (args or "")
  local _, _, code = sh.run(table.concat(parts, " ") .. " >" .. tmp .. "/out 2>" .. tmp .. "/err")
  local function slurp(name) return assert(sh.read_file(tmp .. "/" .. name)) end
  local out, err = slurp("out"), slurp("err")
  sh.rmrf(tmp)
  return code, out, err
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("bin/iceservers", function()
  it("prints the STUN-only list with no configuration (the main job)", function()
    local code, out, err = cli()
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.are.same({ iceServers = { { urls = { "stun:stun.l.google.com:19302" } } } },
      cjson.decode(out))
  end)

  it("prints coturn credentials for --user, verifiable with the secret", function()
    local code, out = cli({ TURN_PROVIDER = "coturn", TURN_SECRET = "cli-secret",
      TURN_URLS = TURN, STUN_URLS = "", TURN_TTL = "1h" }, "--user alice")
    assert.are.equal(0, code)
    local doc = cjson.decode(out)
    local s = doc.iceServers[1]
    assert.matches("^%d+:alice$", s.username)
    assert.are.equal(core.b64encode(core.hmac("sha1", "cli-secret", s.username)), s.credential)
    assert.are.equal(3600, doc.ttl)
    assert.are.equal(tonumber(s.username:match("^%d+")), doc.expires)
  end)

  it("writes the rest format, and --provider overrides TURN_PROVIDER", function()
    local code, out = cli({ TURN_PROVIDER = "nonexistent", TURN_SECRET = "k",
      TURN_URLS = TURN }, "--provider coturn --format=rest --user bob")
    assert.are.equal(0, code)
    local doc = cjson.decode(out)
    assert.are.same({ TURN }, doc.uris)
    assert.matches(":bob$", doc.username)
    assert.are.equal(86400, doc.ttl)
  end)

  -- the README's example of regional pools, as printed there
  it("serves --region's pool (TURN_REGIONS), and the default region without it", function()
    local env = { TURN_PROVIDER = "coturn", TURN_SECRET = "s3cret", TURN_REGIONS = "eu,us",
      TURN_DEFAULT_REGION = "eu",
      TURN_URLS_EU = "turn:eu1.example.com:3478,turn:eu2.example.com:3478",
      TURN_PICK = "1", TURN_URLS_US = "turn:us1.example.com:3478" }
    local readme = assert(sh.read_file("README.md"))
    assert.truthy(readme:find("TURN_URLS_US=turn:us1.example.com:3478 bin/iceservers --user alice "
      .. "--region us", 1, true))
    local code, out = cli(env, "--user alice --region us")
    assert.are.equal(0, code)
    assert.are.same({ "turn:us1.example.com:3478" }, cjson.decode(out).iceServers[2].urls)
    code, out = cli(env, "--user alice")
    assert.are.equal(0, code)
    local urls = cjson.decode(out).iceServers[2].urls
    assert.are.equal(1, #urls) -- TURN_PICK=1: one of eu's two hosts
    assert.matches("^turn:eu[12]%.example%.com:3478$", urls[1])
  end)

  it("indents with --pretty, to the same document", function()
    local _, compact = cli({ TURN_PROVIDER = "coturn", TURN_SECRET = "k", TURN_URLS = TURN,
      STUN_URLS = "stun:a.example,stun:b.example" })
    local code, out = cli({ TURN_PROVIDER = "coturn", TURN_SECRET = "k", TURN_URLS = TURN,
      STUN_URLS = "stun:a.example,stun:b.example" }, "--pretty")
    assert.are.equal(0, code)
    assert.truthy(#lines(out) > 5)
    local a, b = cjson.decode(compact), cjson.decode(out)
    a.expires, b.expires = nil, nil
    a.iceServers[2].username, b.iceServers[2].username = nil, nil
    a.iceServers[2].credential, b.iceServers[2].credential = nil, nil
    assert.are.same(a, b)
  end)

  it("exits 0 with one warning line when the fallback serves", function()
    local code, out, err = cli({ TURN_PROVIDER = "coturn", TURN_SECRET_FILE = "/dev/null/x",
      TURN_URLS = TURN })
    -- a missing secrets file is a config error: exit 1
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal(1, #lines(err))
    local tmp = sh.tmpdir()
    sh.write_file(tmp .. "/down.lua", 'return { get = function() return nil, "HTTP 503" end }')
    code, out, err = cli({ TURN_PROVIDER = "down", ICESERVERS_PROVIDERS_DIR = tmp })
    sh.rmrf(tmp)
    assert.are.equal(0, code)
    assert.is_true(cjson.decode(out).degraded)
    assert.are.equal(1, #lines(err))
    assert.matches("warning: every provider failed: down: HTTP 503", err, 1, true)
  end)

  it("exits 1 with one line when there is no answer", function()
    local code, out, err = cli({ TURN_FALLBACK = "none", TURN_PROVIDER = "nope" })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.same({ "iceservers: unknown provider 'nope' (no nope.lua in the providers "
      .. "directories, and no built-in)" }, lines(err))
    code, out, err = cli({}, "--format rest")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("no TURN server", err)
    local _
    code, _, err = cli({}, "--user ''")
    assert.are.equal(1, code)
    assert.matches("invalid user", err)
  end)

  it("never prints the secret in an error", function()
    local code, out, err = cli({ TURN_PROVIDER = "coturn", TURN_SECRET = "TOPSECRET-9",
      TURN_URLS = "turn:bad host" })
    assert.are.equal(1, code)
    assert.is_nil((out .. err):find("TOPSECRET", 1, true))
  end)

  it("exits 2 on a usage error", function()
    for _, args in ipairs { "--bogus", "--user", "--format xml", "extra" } do
      local code, out, err = cli({}, args)
      assert.are.equal(2, code, args)
      assert.are.equal("", out)
      assert.are.equal(1, #lines(err))
    end
  end)

  it("has --help and --version", function()
    local code, out = cli({}, "--help")
    assert.are.equal(0, code)
    assert.matches("usage: iceservers", out)
    code, out = cli({}, "--version")
    assert.are.equal(0, code)
    assert.matches("^iceservers " .. core.version.module:gsub("%.", "%%.") .. " %(.*OpenSSL", out)
  end)

  -- make run builds only what nginx loads unless it builds both; a checkout
  -- whose core for this interpreter is missing says which command builds it.
  it("names the make command when this checkout's core is not built", function()
    local tmp = sh.tmpdir("cli")
    assert(sh.run("mkdir -p " .. tmp .. "/bin && cp -r lua " .. tmp .. "/ && cp bin/iceservers "
      .. tmp .. "/bin/"))
    local abi = jit and "5.1" or _VERSION:match("%d+%.%d+")
    local ok, out, code = sh.run_clean("env -i PATH=/usr/bin:/bin " .. INTERP .. " " .. tmp
      .. "/bin/iceservers")
    sh.rmrf(tmp)
    assert.is_false(ok)
    assert.are.equal(1, code)
    assert.matches("the C core is not built for .* run `make %-C " .. tmp:gsub("%p", "%%%0")
      .. " LUA_VERSION=" .. abi:gsub("%.", "%%.") .. "`", out)
    assert.are.equal(1, #lines(out))
  end)

  it("works in this checkout after make run, which builds both cores", function()
    local ok, out = sh.run("make -n run PORT=1")
    assert(ok, out)
    assert.matches("LUA_VERSION=5%.1 all", out)
    assert.matches("LUA_VERSION=5%.4 all", out)
  end)
end)
