-- iceservers.jwt and the core's primitives under it (b64url_*, pkey_load):
-- tokens made at run time by Debian's PyJWT (spec/support/jwt_tokens.py,
-- keys by python3-cryptography) for a fixed clock, and the example tokens of
-- RFC 7515 A.1 (HS256) and A.3 (ES256), whose keys that script converts from
-- JWK, verified with an injected clock.
local core = require "iceservers.core"
local jwt = require "iceservers.jwt"
local sh = require "support.sh"
local cjson = require "cjson"

local T = 1800000000
local PYTHON = "/usr/bin/python3" -- Debian's, with python3-jwt (another one may be first on PATH)

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local K
setup(function()
  local ok, out = sh.run_clean(PYTHON .. " spec/support/jwt_tokens.py " .. T)
  assert(ok, "spec/support/jwt_tokens.py failed (python3-jwt, python3-cryptography: make deps): "
    .. out)
  K = cjson.decode(out)
end)

local function verifier(o)
  local c = { algs = { "HS256", "RS256", "ES256" }, secret = K.secret,
    keys = { K.rsa }, audience = "app", issuer = "https://auth.example",
    now = function() return T end }
  for k, v in pairs(o or {}) do c[k] = v end
  if c.secret == false then c.secret = nil end -- false: no secret
  return jwt.new(c)
end

describe("core.b64url_encode / b64url_decode", function()
  it("round-trips every length, without padding, in the URL alphabet", function()
    assert.are.equal("", core.b64url_encode(""))
    assert.are.equal("", core.b64url_decode(""))
    for n = 1, 40 do
      local s = core.random_bytes(n)
      local e = core.b64url_encode(s)
      assert.is_nil(e:find("[^%w_-]"))
      assert.are.equal(#core.b64encode(s):gsub("=", ""), #e)
      assert.are.equal(s, core.b64url_decode(e))
      assert.are.equal(core.b64encode(s):gsub("=", ""):gsub("+", "-"):gsub("/", "_"), e)
    end
  end)

  it("refuses padding, other characters, a length of 1 mod 4 and stray bits", function()
    for _, bad in ipairs { "Zg==", "Zm9v+", "Zm9v/", "Z", "Zh", "Zm9", "Zm 9v", "Zm9v\0" } do
      local v, err = core.b64url_decode(bad)
      assert.is_nil(v, bad)
      assert.matches("^b64url_decode: ", err)
    end
    assert.are.equal("fo", core.b64url_decode("Zm8"))
  end)
end)

describe("core.pkey_load", function()
  it("loads RSA (2048+) and P-256 public keys, and refuses others", function()
    local r = assert(core.pkey_load(K.rsa))
    assert.are.equal("rsa", r:kind())
    assert.are.equal(2048, r:bits())
    assert.are.equal("ec", assert(core.pkey_load(K.ec)):kind())
    local _, err = core.pkey_load(K.rsa_small)
    assert.matches("2048 bits or more", err)
    _, err = core.pkey_load(K.ec_p384)
    assert.matches("P%-256", err)
    _, err = core.pkey_load("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert.matches("not a PEM public key", err)
    _, err = core.pkey_load(("x"):rep(70000))
    assert.matches("over 64 KiB", err)
  end)

  it("verifies only the signature of its own kind, and is safe once closed", function()
    local k = assert(core.pkey_load(K.ec))
    local h, p, s = K.tokens.es_ok:match("^(.-)%.(.-)%.(.*)$")
    assert.is_true(k:verify("ES256", h .. "." .. p, core.b64url_decode(s)))
    assert.is_false(k:verify("ES256", h .. "." .. p .. "x", core.b64url_decode(s)))
    local v, err = k:verify("RS256", h .. "." .. p, core.b64url_decode(s))
    assert.is_nil(v)
    assert.matches("does not go with", err)
    assert.matches("RS256 or ES256", error_of(k.verify, k, "HS256", "", ""))
    getmetatable(k).__gc(k)
    assert.matches("closed", error_of(k.verify, k, "ES256", "", ""))
    getmetatable(k).__gc(k) -- twice is fine
    assert.are.equal("iceservers.pkey(closed)", tostring(k))
  end)
end)

describe("iceservers.jwt with PyJWT's tokens", function()
  local CASES = {
    { "hs_ok", "alice" }, { "rs_ok", "alice" }, { "es_ok", "alice" },
    { "expired_in_leeway", "alice" }, { "nbf_in_leeway", "alice" }, { "aud_list", "alice" },
    { "expired", nil, "expired" }, { "not_yet", nil, "not yet valid" },
    { "no_exp", nil, "no exp" }, { "wrong_aud", nil, "wrong audience" },
    { "wrong_iss", nil, "wrong issuer" }, { "rs_wrong_key", nil, "bad signature" },
    { "es_wrong_key", nil, "bad signature" }, { "hs_wrong_key", nil, "bad signature" },
    { "none", nil, "not a compact JWS" }, { "crit", nil, "crit header" },
    { "big", nil, "over 8 KiB" }, { "confusion", nil, "bad signature" },
    { "tampered", nil, "bad signature" }, { "es_der", nil, "bad signature" },
  }
  for _, case in ipairs(CASES) do
    it(case[1] .. (case[2] and " verifies" or " is refused: " .. case[3]), function()
      -- one public key: the token's alg says which (with more, a kid is required)
      local ec = case[1]:find("^es_") ~= nil
      local user, why = verifier { keys = { ec and K.ec or K.rsa } }:verify(K.tokens[case[1]])
      assert.are.equal(case[2], user, why)
      if case[3] then
        assert.matches(case[3], why, 1, true)
        assert.is_nil(why:find(K.tokens[case[1]]:sub(1, 20), 1, true)) -- never the token
      end
    end)
  end

  it("refuses HS256 where only RS256 is configured (no HS/RS confusion)", function()
    local v = verifier { algs = { "RS256" }, secret = false, keys = { rsa = K.rsa } }
    local user, why = v:verify(K.tokens.confusion)
    assert.is_nil(user)
    assert.matches("alg is not one of those accepted", why)
    assert.are.equal("alice", v:verify(K.tokens.rs_ok))
  end)

  it("takes the user id from the configured claim", function()
    assert.are.equal("u-42", verifier { claim = "uid" }:verify(K.tokens.other_claim))
    local _, why = verifier { claim = "uid" }:verify(K.tokens.hs_ok)
    assert.matches("no uid claim", why)
  end)

  it("with several keys, needs the token's kid and uses that key", function()
    local keys = { a = K.ec, b = K.ec_other }
    local v = verifier { algs = { "ES256" }, secret = false, keys = keys }
    assert.are.equal("alice", v:verify(K.tokens.kid_a))
    assert.are.equal("alice", v:verify(K.tokens.kid_b))
    local _, why = v:verify(K.tokens.es_ok)
    assert.matches("no kid", why)
    _, why = v:verify(K.tokens.kid_unknown)
    assert.matches("unknown kid", why)
  end)

  it("reads a key file of PEM keys named by kid lines", function()
    local keys, n = jwt.read_keys("kid: a\n" .. K.ec .. "\nkid: b\n" .. K.ec_other)
    assert.are.equal(2, n)
    local v = verifier { algs = { "ES256" }, secret = false, keys = keys }
    assert.are.equal("alice", v:verify(K.tokens.kid_b))
    local one = jwt.read_keys(K.rsa)
    assert.is_string(one[1])
  end)

  it("makes every configuration mistake a one-line error", function()
    local cases = {
      { { algs = {} }, "algs is required" },
      { { algs = { "none" } }, "unknown alg 'none'" },
      { { algs = { "HS256" }, secret = "short", keys = {} }, "32 bytes or more" },
      { { algs = { "ES256" }, secret = "x" .. ("y"):rep(40), keys = { K.ec } },
        "HS256 is not in algs" },
      { { algs = { "RS256" }, secret = false, keys = { K.ec } }, "ES256 is not in algs" },
      { { algs = { "RS256" }, secret = false, keys = {} }, "need a public key" },
      { { algs = { "RS256" }, secret = false, keys = { K.rsa_small } }, "2048 bits" },
    }
    for _, case in ipairs(cases) do
      local o = case[1]
      if o.secret == false then o.secret = nil end
      local err = error_of(jwt.new, o)
      assert.matches(case[2], err, 1, true)
      assert.is_nil(err:find("\n"))
    end
  end)
end)

describe("iceservers.jwt with the examples of RFC 7515", function()
  it("A.1 (HS256) verifies with its key and a clock before its exp", function()
    local token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      .. ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
      .. "c19yb290Ijp0cnVlfQ"
      .. ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    local v = jwt.new { algs = { "HS256" }, secret = core.b64url_decode(K.a1_secret_b64u),
      claim = "iss", now = function() return 1300819380 end }
    local user, claims = v:verify(token)
    assert.are.equal("joe", user)
    assert.is_true(claims["http://example.com/is_root"])
    -- and now, long after its exp
    assert.are.equal("expired", select(2, jwt.new { algs = { "HS256" },
      secret = core.b64url_decode(K.a1_secret_b64u), claim = "iss" }:verify(token)))
  end)

  it("A.3 (ES256) verifies with its key (converted from JWK)", function()
    local token = "eyJhbGciOiJFUzI1NiJ9"
      .. ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
      .. "c19yb290Ijp0cnVlfQ"
      .. ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    local v = jwt.new { algs = { "ES256" }, keys = { K.a3_pem }, claim = "iss",
      now = function() return 1300819000 end }
    assert.are.equal("joe", v:verify(token))
    local tampered = token:gsub("%.DtE", ".DtF")
    assert.are.equal("bad signature", select(2, v:verify(tampered)))
  end)
end)

-- The verifier is a parser of attacker text: under generated tokens (each
-- valid token mutated, and headers/payloads of generated JSON) it never
-- raises, answers one line, and accepts nothing but the tokens it was given.
describe("iceservers.jwt under generated tokens", function()
  local SEED = 20261202
  local function lcg(seed)
    local x = seed % 2147483646 + 1
    return function(lo, hi)
      x = x * 16807 % 2147483647
      return lo + x % (hi - lo + 1)
    end
  end
  local CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0\255"
  local HEADERS = { '{"alg":"HS256"}', '{"alg":"none"}', '{"alg":"RS256"}', '{"alg":"ES256"}',
    '{"alg":"HS256","crit":[]}', '{"alg":["HS256"]}', '{"alg":"HS256","kid":7}', '[]', '{}',
    '"HS256"', 'null', '{"alg":"HS256"', '{"alg":"hs256"}', '{"alg":"HS256","kid":"zz"}' }
  local PAYLOADS = { '{"sub":"x","exp":1e400}', '{"sub":"x","exp":"soon"}', '{"sub":7,"exp":1}',
    '{"exp":1900000000}', '{"sub":"","exp":1900000000}', '[1,2]', '{"sub":"x","exp":-1}',
    '{"sub":"x","exp":1900000000,"nbf":"x"}', '{"sub":"x","exp":1900000000,"aud":{"a":1}}' }

  it("never raises, says one line, and accepts only the tokens it was given", function()
    local r = lcg(SEED)
    local rs = verifier { keys = { K.rsa } }
    local es = verifier { keys = { K.ec } }
    local valid = { [K.tokens.hs_ok] = true, [K.tokens.rs_ok] = true, [K.tokens.es_ok] = true,
      [K.tokens.aud_list] = true, [K.tokens.expired_in_leeway] = true,
      [K.tokens.nbf_in_leeway] = true }
    local bases = {}
    for t in pairs(valid) do bases[#bases + 1] = t end
    table.sort(bases)
    for case = 1, 3000 do
      local token
      local kind = r(1, 3)
      if kind == 1 then -- a valid token with a byte changed, dropped or added
        local t = bases[r(1, #bases)]
        local at, c = r(1, #t), r(1, #CHARS)
        local op = r(1, 3)
        if op == 1 then
          token = t:sub(1, at - 1) .. CHARS:sub(c, c) .. t:sub(at + 1)
        elseif op == 2 then
          token = t:sub(1, at - 1) .. t:sub(at + 1)
        else
          token = t:sub(1, at) .. CHARS:sub(c, c) .. t:sub(at + 1)
        end
      elseif kind == 2 then -- generated header and payload, a signature of the secret
        local h = core.b64url_encode(HEADERS[r(1, #HEADERS)])
        local p = core.b64url_encode(PAYLOADS[r(1, #PAYLOADS)])
        token = h .. "." .. p .. "." .. core.b64url_encode(core.hmac("sha256", K.secret,
          h .. "." .. p))
      else -- pieces of tokens
        local parts = {}
        for i = 1, r(0, 5) do
          parts[i] = core.b64url_encode(core.random_bytes(r(1, 60)))
        end
        token = table.concat(parts, ".")
      end
      for _, v in ipairs { rs, es } do
        local ok, user, why = pcall(v.verify, v, token)
        local where = ("seed %d, case %d, token %q"):format(SEED, case, token:sub(1, 120))
        assert(ok, "raised: " .. tostring(user) .. " at " .. where)
        if user then
          local header = core.b64url_decode(token:match("^[^.]*"))
          assert(valid[token] or (header and header:find('"HS256"') and kind == 2),
            "accepted a token it was not given: " .. where)
        else
          assert(type(why) == "string" and not why:find("[\r\n]"), "no one-line reason: " .. where)
        end
      end
    end
  end)
end)
