--[[
JSON Web Token verification (RFC 7519; the JWS compact form of RFC 7515),
for the endpoint's own authentication.  The cryptography is the core's:
HS256 through a keyed signer and a constant-time comparison, RS256 and
ES256 through core.pkey_load's keys.  Everything else is plain Lua, with an
injectable clock, so that fixed vectors with old `exp` values verify.

  local jwt = require "iceservers.jwt"
  local v = jwt.new {
    algs = { "HS256", "ES256" },  -- required: the only ones a token may name
    secret = "...",               -- HS256's key, 32 bytes or more
    keys = { ["kid-1"] = pem },   -- RS256/ES256 public keys (PEM text), by kid
    audience = "...", issuer = "...",   -- checked when set
    claim = "sub",                -- the claim that is the user id
    leeway = 30,                  -- seconds of clock skew on exp and nbf
    now = os.time,
  }
  v:verify(token) -> user, claims; or nil, why

`why` is one line for the info log: it never holds the token nor a claim's
value.  jwt.new raises a one-line error for a bad configuration.
jwt.read_keys(text) reads a key file: PEM public keys, each after a line
`kid: <name>` when there are several.
]]
local core = require "iceservers.core"
local cjson = require("cjson.safe").new()

local M = {}

M.MAX_BYTES = 8192
M.ALGS = { HS256 = true, RS256 = true, ES256 = true }
local HS_MIN = 32

local Verifier = {}
Verifier.__index = Verifier

local function fail(fmt, ...)
  error("iceservers: jwt: " .. fmt:format(...), 0)
end

-- kid -> PEM text; a key without a kid line before it is keyed 1.
function M.read_keys(text)
  local keys, n, kid = {}, 0, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local named = line:match("^%s*kid:%s*(%S+)%s*$")
    if named then
      kid = named
    elseif line:find("-----BEGIN ", 1, true) then
      local block = { line }
      keys[kid or (n + 1)] = block
      n, kid = n + 1, nil
      keys.last = block
    elseif keys.last then
      local block = keys.last
      block[#block + 1] = line
      if line:find("-----END ", 1, true) then keys.last = nil end
    end
  end
  keys.last = nil
  local out = {}
  for k, block in pairs(keys) do out[k] = table.concat(block, "\n") .. "\n" end
  return out, n
end

function M.new(o)
  if type(o) ~= "table" then fail("new needs a table of options") end
  local self = setmetatable({ algs = {}, keys = {}, nkeys = 0 }, Verifier)
  if type(o.algs) ~= "table" or #o.algs == 0 then
    fail("algs is required: a list of HS256, RS256, ES256")
  end
  for _, alg in ipairs(o.algs) do
    if not M.ALGS[alg] then
      fail("unknown alg '%s' (HS256, RS256 or ES256; none is never accepted)",
        tostring(alg):gsub("%c", "?"))
    end
    self.algs[alg] = true
  end
  if self.algs.HS256 then
    if type(o.secret) ~= "string" or #o.secret < HS_MIN then
      fail("HS256 needs a secret of %d bytes or more", HS_MIN)
    end
    self.signer = core.hmac_key("sha256", o.secret)
  elseif o.secret ~= nil then
    fail("a secret is set but HS256 is not in algs")
  end
  for kid, pem in pairs(o.keys or {}) do
    local key, err = core.pkey_load(pem)
    if not key then fail("key %s: %s", tostring(kid), err:gsub("^pkey_load: ", "")) end
    local alg = key:kind() == "rsa" and "RS256" or "ES256"
    if not self.algs[alg] then
      fail("key %s is an %s key but %s is not in algs", tostring(kid), key:kind(), alg)
    end
    self.keys[kid] = { key = key, alg = alg }
    self.nkeys = self.nkeys + 1
  end
  if (self.algs.RS256 or self.algs.ES256) and self.nkeys == 0 then
    fail("RS256 and ES256 need a public key")
  end
  self.audience, self.issuer = o.audience, o.issuer
  self.claim = o.claim or "sub"
  self.leeway = o.leeway or 30
  self.now = o.now or os.time
  return self
end

local function object(text)
  local v = cjson.decode(text)
  if type(v) ~= "table" or (next(v) == nil and text:match("^%s*%[")) or v[1] ~= nil then
    return nil
  end
  return v
end

-- The part of a base64url text, decoded, and decoded as a JSON object.
local function part(text, what)
  local raw = core.b64url_decode(text)
  if not raw then return nil, what .. " is not base64url" end
  local v = object(raw)
  if not v then return nil, what .. " is not a JSON object" end
  return v
end

-- The key that checks a token with this header, or nil and why.
function Verifier:key_for(header)
  local alg = header.alg
  if type(alg) ~= "string" or not self.algs[alg] then
    return nil, "alg is not one of those accepted"
  end
  if alg == "HS256" then return "HS256" end
  local kid = header.kid
  if kid ~= nil and type(kid) ~= "string" then return nil, "kid is not a string" end
  local k
  if kid ~= nil then
    k = self.keys[kid] or (self.nkeys == 1 and self.keys[1])
  elseif self.nkeys == 1 then
    k = next(self.keys) and self.keys[next(self.keys)]
  else
    return nil, "no kid, and there are several keys"
  end
  if not k then return nil, "unknown kid" end
  if k.alg ~= alg then return nil, "alg does not go with the key" end
  return k.key
end

local function has(aud, want)
  if aud == want then return true end
  if type(aud) == "table" then
    for _, a in ipairs(aud) do
      if a == want then return true end
    end
  end
  return false
end

function Verifier:claims(payload)
  local now, leeway = self.now(), self.leeway
  local exp = payload.exp
  if type(exp) ~= "number" or exp ~= exp or exp == math.huge then
    return nil, "no exp"
  end
  if now > exp + leeway then return nil, "expired" end
  local nbf = payload.nbf
  if nbf ~= nil then
    if type(nbf) ~= "number" then return nil, "nbf is not a number" end
    if now + leeway < nbf then return nil, "not yet valid" end
  end
  if self.audience ~= nil and not has(payload.aud, self.audience) then
    return nil, "wrong audience"
  end
  if self.issuer ~= nil and payload.iss ~= self.issuer then return nil, "wrong issuer" end
  local user = payload[self.claim]
  if type(user) ~= "string" or user == "" then
    return nil, ("no %s claim (a non-empty string)"):format(self.claim)
  end
  return user
end

function Verifier:verify(token)
  if type(token) ~= "string" or token == "" then return nil, "no token" end
  if #token > M.MAX_BYTES then return nil, "token over 8 KiB" end
  local h, p, s = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  if not h then return nil, "not a compact JWS (three base64url parts)" end
  local header, why = part(h, "header")
  if not header then return nil, why end
  if header.crit ~= nil then return nil, "crit header (no extension is understood)" end
  local key
  key, why = self:key_for(header)
  if not key then return nil, why end
  local sig = core.b64url_decode(s)
  if not sig then return nil, "signature is not base64url" end
  local input = h .. "." .. p
  local good
  if key == "HS256" then
    good = core.ct_equal(self.signer:digest(input), sig)
  else
    good = key:verify(header.alg, input, sig)
  end
  if not good then return nil, "bad signature" end
  local payload
  payload, why = part(p, "payload")
  if not payload then return nil, why end
  local user
  user, why = self:claims(payload)
  if not user then return nil, why end
  return user, payload
end

return M
