-- What the benchmarks share: the secret, the loop of B1 (the same text runs
-- in lua5.4, luajit and inside nginx) and small helpers.
local M = {}

M.SECRET = "a-shared-secret-of-some-length-0123456789"
M.EXPIRY = 1800000000
M.TURN_URLS = { "turn:turn.example.com:3478?transport=udp",
  "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:5349?transport=tcp" }
M.STUN_URLS = { "stun:stun.example.com:3478" }
-- B3's pool: 3 hosts of 2 URLs each, TURN_PICK=1 for POOL_USER (the answer:
-- STUN and the user's host's two URLs)
M.POOL_URLS = {}
for i = 1, 3 do
  M.POOL_URLS[#M.POOL_URLS + 1] = ("turn:turn%d.example.com:3478?transport=udp"):format(i)
  M.POOL_URLS[#M.POOL_URLS + 1] = ("turns:turn%d.example.com:443?transport=tcp"):format(i)
end
M.POOL_USER = "alice"
-- B3's guarded endpoint: an HS256 key of the application's and the user of its token
M.JWT_KEY = "bench-jwt-hs256-key-0123456789abcdef!"
M.JWT_USER = "bench-user"

-- The guarded endpoint's token: the application's HS256 JWT for JWT_USER,
-- valid for a day (core: iceservers.core; cjson: an encoder).
function M.jwt_token(core, cjson)
  local head = core.b64url_encode('{"alg":"HS256","typ":"JWT"}')
  local body = core.b64url_encode(cjson.encode { sub = M.JWT_USER, exp = os.time() + 86400 })
  return head .. "." .. body .. "."
    .. core.b64url_encode(core.hmac("sha256", M.JWT_KEY, head .. "." .. body))
end

-- The REST provider of B3/B4 is Metered, answered by bench/upstream.lua.
M.METERED_KEY = "bench-metered-api-key-Hq3Zt8"
M.METERED_TURN = { username = "1800000000:metered-user-4f1a",
  credential = "bWV0ZXJlZC1jcmVkZW50aWFs" }
M.METERED_ANSWER = table.concat({
  '[{"urls":"stun:stun.relay.metered.ca:80"}',
  ',{"urls":"turn:global.relay.metered.ca:80","username":"%s","credential":"%s"}',
  ',{"urls":"turn:global.relay.metered.ca:80?transport=tcp","username":"%s","credential":"%s"}',
  ',{"urls":"turn:global.relay.metered.ca:443","username":"%s","credential":"%s"}',
  ',{"urls":"turns:global.relay.metered.ca:443?transport=tcp","username":"%s","credential":"%s"}]',
}):format(M.METERED_TURN.username, M.METERED_TURN.credential, M.METERED_TURN.username,
  M.METERED_TURN.credential, M.METERED_TURN.username, M.METERED_TURN.credential,
  M.METERED_TURN.username, M.METERED_TURN.credential)

-- Runs batches of the credential loop until `seconds` have passed on clock();
-- returns "rate=<credentials/s> n=<count>".
function M.rate_loop(sign, seconds, clock)
  local prefix = M.EXPIRY .. ":user-"
  local batch = 20000
  for i = 1, batch do sign(prefix .. i) end -- warm up (and let LuaJIT compile)
  local n, id = 0, 0
  local t0 = clock()
  local elapsed
  repeat
    for _ = 1, batch do
      id = id + 1
      local username = prefix .. id
      local password = sign(username)
      if password == nil then error("no password") end
    end
    n = n + batch
    elapsed = clock() - t0
  until elapsed >= seconds
  return ("rate=%.0f n=%d"):format(n / elapsed, n)
end

return M
