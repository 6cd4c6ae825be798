-- The endpoint with the application's JWT: the example nginx.conf with
-- ICESERVERS_JWT_* set (an HS256 secret, and a key file of an RSA and an EC
-- key by kid), coturn behind it.  Tokens are made now by Debian's PyJWT
-- (spec/support/jwt_tokens.py); each case gets the 200 or the 401 it should,
-- the TURN username carries the token's claim, and a real coturn accepts
-- the credentials handed out.
local coturn = require "support.coturn"
local nginx = require "support.nginx"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

describe("the endpoint with ICESERVERS_JWT_* #integration", function()
  local turn, srv, tmp, K
  local SECRET = "turn-" .. core.hex(core.random_bytes(8))

  lazy_setup(function()
    tmp = sh.tmpdir("jwt")
    local ok, out = sh.run_clean("/usr/bin/python3 spec/support/jwt_tokens.py "
      .. os.time() .. " 60") -- the time cases hold for a minute
    assert(ok, out)
    K = cjson.decode(out)
    local keys = tmp .. "/jwt-keys.pem"
    sh.write_file(keys, "kid: r1\n" .. K.rsa .. "kid: e1\n" .. K.ec)
    turn = coturn.start{ secrets = { SECRET } }
    srv = nginx.start{ template = "examples/nginx/nginx.conf", env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = SECRET, STUN_URLS = "",
      TURN_URLS = ("turn:127.0.0.1:%d?transport=udp"):format(turn.port),
      ICESERVERS_JWT_KEY = K.secret, ICESERVERS_JWT_KEY_FILE = keys,
      ICESERVERS_JWT_ALGS = "HS256,RS256,ES256", ICESERVERS_JWT_AUDIENCE = "app",
      ICESERVERS_JWT_ISSUER = "https://auth.example" } }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if turn then turn:stop() end
    if tmp then sh.rmrf(tmp) end
  end)

  local function ask(token, headers)
    headers = headers or {}
    if token then headers.Authorization = "Bearer " .. token end
    return assert(core.http_request { url = srv:url("/ice-servers"), headers = headers,
      timeout = 10 })
  end

  local OK = { "hs_ok", "rs_kid", "es_kid", "expired_in_leeway", "nbf_in_leeway", "aud_list" }
  local REFUSED = { "expired", "not_yet", "no_exp", "wrong_aud", "wrong_iss", "rs_wrong_key",
    "es_wrong_key", "hs_wrong_key", "none", "crit", "big", "confusion", "tampered", "es_der",
    "rs_ok", "kid_unknown" } -- rs_ok: no kid, with two keys in the file

  it("answers each valid token with credentials for its claim, which coturn accepts",
    function()
      local entries = {}
      for _, name in ipairs(OK) do
        local res = ask(K.tokens[name])
        assert.are.equal(200, res.status, name .. ": " .. res.body)
        local e = cjson.decode(res.body).iceServers[1]
        assert.matches("^%d+:alice$", e.username, name)
        entries[#entries + 1] = e
      end
      local done = coturn.allocate { port = turn.port, user = entries[1].username,
        password = entries[1].credential }
      assert(done, "coturn refused the credentials of a JWT-authenticated request")
      assert.is_true(turn:accepted(entries[1].username))
    end)

  it("refuses each bad token with 401 and WWW-Authenticate: Bearer error=invalid_token",
    function()
      for _, name in ipairs(REFUSED) do
        local res = ask(K.tokens[name])
        assert.are.equal(401, res.status, name .. ": " .. res.body)
        assert.are.equal('Bearer error="invalid_token"', res.headers["www-authenticate"], name)
        assert.are.same({ error = "unauthorized" }, cjson.decode(res.body))
      end
      assert.is_nil(srv:error_log():find(K.tokens.tampered:sub(1, 40), 1, true))
    end)

  it("asks for a token with 401 and a bare WWW-Authenticate: Bearer", function()
    for _, headers in ipairs { {}, { Authorization = "Basic dXNlcjpwYXNz" } } do
      local res = ask(nil, headers)
      assert.are.equal(401, res.status)
      assert.are.equal("Bearer", res.headers["www-authenticate"])
    end
    -- a user in the query is not read: the token's claim is the user
    local res = assert(core.http_request { url = srv:url("/ice-servers?username=mallory"),
      headers = { Authorization = "Bearer " .. K.tokens.hs_ok } })
    assert.matches(":alice$", cjson.decode(res.body).iceServers[1].username)
  end)
end)
