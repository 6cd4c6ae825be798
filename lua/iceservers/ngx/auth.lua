-- luacheck: globals ngx
--[[
The endpoint's JWT authentication (serve()'s jwt_* options, docs/auth.md):

  auth.verifier(o)          -> a verifier for the resolved options o, or
                               nil (no JWT key), or nil, err for a bad one
  auth.token(o, args)       -> the request's token: Authorization: Bearer,
                               else the jwt_cookie, else the jwt_query
                               parameter (both off unless named); or nil
  auth.user(o, token)       -> the user id (the configured claim); or nil,
                               why (for the info log: never the token)

Verified tokens are kept per worker, keyed by a keyed hash of the token
(never the token itself), until their exp, at most CACHE_SIZE of them, so
a client that repeats its token costs a lookup, not a signature check.
]]
local core = require "iceservers.core"
local clock = require "iceservers.ngx.clock"
local jwt = require "iceservers.jwt"
local lrucache = require "resty.lrucache"

local M = {}

local CACHE_SIZE = 4096

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

function M.verifier(o)
  if not o.jwt_key and not o.jwt_key_file then return nil end
  if not o.jwt_algs or #o.jwt_algs == 0 then
    return nil, "ICESERVERS_JWT_ALGS (opts.jwt_algs) is required with a JWT key"
  end
  local keys
  if o.jwt_key_file then
    local text, err = read(o.jwt_key_file)
    if not text then return nil, "ICESERVERS_JWT_KEY_FILE: " .. tostring(err) end
    keys = jwt.read_keys(text)
    if next(keys) == nil then
      return nil, ("ICESERVERS_JWT_KEY_FILE %s holds no PEM key"):format(o.jwt_key_file)
    end
  end
  local ok, v = pcall(jwt.new, { algs = o.jwt_algs, secret = o.jwt_key or nil, keys = keys,
    audience = o.jwt_audience, issuer = o.jwt_issuer, claim = o.jwt_claim, now = clock.time })
  if not ok then return nil, (tostring(v):gsub("^iceservers: ", "")) end
  v.cache = lrucache.new(CACHE_SIZE)
  v.cache_key = core.hmac_key("sha256", core.random_bytes(32))
  return v
end

-- (plain finds and sub only: a pattern would keep LuaJIT from compiling the
-- request; the verifier checks the token's characters itself)
local lower, sub, find = string.lower, string.sub, string.find
function M.token(o, args)
  local h = ngx.var.http_authorization
  if h and #h > 7 and lower(sub(h, 1, 7)) == "bearer " then
    local t = sub(h, 8)
    if not find(t, " ", 1, true) and t ~= "" then return t end
  end
  if o.jwt_cookie then
    local c = ngx.var["cookie_" .. o.jwt_cookie]
    if c and c ~= "" then return c end
  end
  if o.jwt_query then
    local q = args[o.jwt_query]
    if type(q) == "string" and q ~= "" then return q end
  end
  return nil
end

function M.user(v, token)
  local key = v.cache_key:b64digest(token)
  local hit = v.cache:get(key)
  if hit and clock.time() <= hit.exp + v.leeway then return hit.user end
  local user, claims = v:verify(token)
  if not user then return nil, claims end
  v.cache:set(key, { user = user, exp = claims.exp })
  return user
end

return M
