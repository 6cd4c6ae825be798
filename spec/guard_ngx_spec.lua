-- Origins, rate limits and revocation in nginx: the example nginx.conf (two
-- workers sharing the dict) with ICESERVERS_ORIGINS, ICESERVERS_LIMIT_PER_*,
-- ICESERVERS_DENYLIST_FILE and users from HS256 tokens (made here with the
-- core's HMAC: the JWT checks themselves are jwt_spec's and jwt_ngx_spec's).
local nginx = require "support.nginx"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

local ORIGIN = "https://app.example"
local KEY = "guard-spec-hs256-secret-0123456789abcdef"

local function token(user) return require("support.fixtures").hs256(KEY, user) end

describe("origins, limits and revocation in nginx #integration", function()
  local srv, tmp, denyfile

  lazy_setup(function()
    tmp = sh.tmpdir("guard")
    denyfile = tmp .. "/denied"
    sh.write_file(denyfile, "# none yet\n")
    srv = nginx.start{ template = "examples/nginx/nginx.conf", workers = 2, env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = "s", TURN_URLS = "turn:127.0.0.1:3478",
      STUN_URLS = "", ICESERVERS_JWT_KEY = KEY, ICESERVERS_JWT_ALGS = "HS256",
      ICESERVERS_ORIGINS = ORIGIN .. ",https://other.example",
      ICESERVERS_LIMIT_PER_USER = "3/4s", ICESERVERS_LIMIT_PER_IP = "30/5s",
      ICESERVERS_DENYLIST_FILE = denyfile } }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if tmp then sh.rmrf(tmp) end
  end)

  local function ask(user, headers, method)
    headers = headers or {}
    if user then headers.Authorization = "Bearer " .. token(user) end
    return assert(core.http_request { url = srv:url("/ice-servers"), headers = headers,
      method = method, timeout = 10 })
  end

  it("names an allowed origin, refuses another, passes none, and answers preflights first",
    function()
      local res = ask("o1", { Origin = ORIGIN })
      assert.are.equal(200, res.status)
      assert.are.equal(ORIGIN, res.headers["access-control-allow-origin"])
      assert.are.equal("Origin", res.headers.vary)
      res = ask("o2", { Origin = "https://evil.example" })
      assert.are.equal(403, res.status)
      assert.is_nil(res.headers["access-control-allow-origin"])
      res = ask("o3")
      assert.are.equal(200, res.status)
      assert.is_nil(res.headers["access-control-allow-origin"])
      -- a preflight carries no token: it is answered before authentication
      res = ask(nil, { Origin = "https://other.example", ["Access-Control-Request-Method"] = "GET",
        ["Access-Control-Request-Headers"] = "authorization" }, "OPTIONS")
      assert.are.equal(204, res.status)
      assert.are.equal("https://other.example", res.headers["access-control-allow-origin"])
      assert.matches("Authorization", res.headers["access-control-allow-headers"])
    end)

  it("allows exactly N answers per user and window across both workers, then 429", function()
    -- each request on a new connection: both workers take some
    local codes, retry = {}, {}
    for i = 1, 10 do
      local res = ask("limited")
      codes[#codes + 1] = res.status
      if res.status == 429 then retry[#retry + 1] = tonumber(res.headers["retry-after"]) end
      assert.is_true(res.status == 200 or res.status == 429, "request " .. i)
    end
    local ok = 0
    for _, c in ipairs(codes) do if c == 200 then ok = ok + 1 end end
    assert.are.equal(3, ok, table.concat(codes, " "))
    for _, r in ipairs(retry) do assert.is_true(r >= 1 and r <= 4, tostring(r)) end
    -- another user has its own count
    assert.are.equal(200, ask("unlimited-yet").status)
    -- and after the window, the user is served again
    sh.sleep(retry[#retry] + 0.5)
    assert.are.equal(200, ask("limited").status)
  end)

  it("limits per client address (each loopback address its own)", function()
    local script = {}
    for _ = 1, 31 do
      script[#script + 1] = ("curl -s -o /dev/null -w '%%{http_code}\\n' --interface 127.0.0.4 "
        .. "-H %s %s"):format(sh.quote("Authorization: Bearer " .. token("ip-" .. _)),
        sh.quote(srv:url("/ice-servers")))
    end
    local ok, out = sh.run_clean(table.concat(script, "; "))
    assert(ok, out)
    local _, n200 = out:gsub("200\n", "")
    local _, n429 = out:gsub("429\n", "")
    assert.are.equal(30, n200, out)
    assert.are.equal(1, n429, out)
  end)

  it("refuses a revoked user with 403, by the admin location and by the denylist file",
    function()
      assert.are.equal(200, ask("bob").status)
      local admin = srv:url("/ice-servers/admin")
      local res = assert(core.http_request { url = admin, method = "POST",
        body = "user=bob&seconds=60",
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.are.equal(200, res.status, res.body)
      for _ = 1, 4 do assert.are.equal(403, ask("bob").status) end -- every worker
      local list = cjson.decode(assert(core.http_request { url = admin }).body).revoked
      assert.are.equal("bob", list[1].user)
      assert(core.http_request { url = admin .. "?user=bob", method = "DELETE" })
      assert.are.equal(200, ask("bob").status)
      -- the file: read again once it changes
      assert.are.equal(200, ask("carol").status)
      sh.write_file(denyfile .. ".new", "carol\nold-user 1000000000\n")
      assert(sh.run("mv " .. sh.quote(denyfile .. ".new") .. " " .. sh.quote(denyfile)))
      local by = sh.now() + 5
      while ask("carol").status ~= 403 do
        assert(sh.now() < by, "the denylist file's change did not take")
        sh.sleep(0.2)
      end
      assert.are.equal(200, ask("old-user").status) -- its entry has expired
    end)
end)
