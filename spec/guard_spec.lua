-- iceservers.ngx.guard's plain parts: the rate syntax and the per-IP key
-- (IPv6 by its /64), and serve()'s options that use them.
local guard = require "iceservers.ngx.guard"
local serve = require "iceservers.ngx.settings"

describe("guard.rate", function()
  it("reads requests per window", function()
    for text, want in pairs { ["20/minute"] = { 20, 60 }, ["60/hour"] = { 60, 3600 },
        ["5/10s"] = { 5, 10 }, ["1/d"] = { 1, 86400 }, [" 7 / 2 m "] = { 7, 120 } } do
      local r = assert(guard.rate(text))
      assert.are.same(want, { r.n, r.window }, text)
    end
  end)

  it("refuses anything else with one line", function()
    for _, bad in ipairs { "20", "0/minute", "20/fortnight", "x/s", "5/0s", "-1/s", "" } do
      local r, err = guard.rate(bad)
      assert.is_nil(r, bad)
      assert.matches("^must be requests per window", err)
    end
  end)
end)

describe("guard.client", function()
  it("keeps IPv4 and takes IPv6 by its /64", function()
    assert.are.equal("192.0.2.7", guard.client("192.0.2.7"))
    assert.are.equal("2001:db8:1:2::/64", guard.client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))
    assert.are.equal("2001:db8:1:2::/64", guard.client("2001:db8:1:2::9"))
    assert.are.equal("2001:db8:0:0::/64", guard.client("2001:db8::1"))
    assert.are.equal("0:0:0:0::/64", guard.client("::1"))
    assert.are.equal(guard.client("2001:DB8:0:0:1::1"), guard.client("2001:db8::2"))
  end)
end)

describe("serve()'s guard options", function()
  local function env(t) return function(k) return t[k] end end

  it("come from their variables, and a bad one names it", function()
    local o = assert(serve.resolve(nil, env { ICESERVERS_LIMIT_PER_IP = "20/minute",
      ICESERVERS_ORIGINS = "https://a.example,https://b.example" }))
    assert.are.equal(20, o.limit_per_ip.n)
    assert.are.same({ "https://a.example", "https://b.example" }, o.origins)
    local _, err = serve.resolve(nil, env { ICESERVERS_LIMIT_PER_USER = "lots" })
    assert.matches("^ICESERVERS_LIMIT_PER_USER must be requests per window", err)
  end)

  it("take cors_origin as origins of one, and refuse both at once", function()
    assert.are.same({ "https://a.example" },
      assert(serve.resolve({ cors_origin = "https://a.example" })).origins)
    local _, err = serve.resolve({ cors_origin = "https://a.example", origins = { "x" } })
    assert.matches("not both", err)
  end)

  it("refuse user_from_query with a JWT key", function()
    local _, err = serve.resolve({ user_from_query = true, jwt_key = ("k"):rep(32) })
    assert.matches("user_from_query with a JWT key", err)
  end)
end)
