--[[
The options of iceservers.ngx's serve(broker, opts) (and of its new,
from_env and health: dict, lock_timeout, health_*), declared as the broker's settings are
(iceservers.settings): from this list come their checks, the variable of
api_key, the error messages ("opts.api_key is empty: ...") and the
documentation's table.  Plain Lua: it touches no ngx API, so the docs
script and the specs read it outside nginx.
]]
local options = require "iceservers.options"

local M = {}

M.LIST = {
  { name = "user", type = "function", doc = [[`function(ngx) -> user id or nil`: who is
    asking (e.g. from a header your auth layer set); wins over `user_from_query`]] },
  { name = "user_from_query", type = "boolean", default = false, doc = [[`true`: take the
    user from `?username=` (or `?user=`); only behind auth]] },
  { name = "api_key", env = "ICESERVERS_API_KEY", type = "key", empty = "error",
    doc = [[refuse requests without this key (`?key=`, `?api=`, a form field or an
    `X-Api-Key` header) with 401; `opts.api_key` wins over the variable; empty or not a
    string: a configuration error (503)]] },
  { name = "jwt", type = "jwt_table", doc = [[the `jwt_*` options below as one table,
    `{key =, key_file =, algs =, audience =, issuer =, claim =, cookie =, query =}`]] },
  { name = "jwt_key", env = "ICESERVERS_JWT_KEY", type = "key", doc = [[HS256's secret (32
    bytes or more): requests must then carry the application's JWT (`Authorization:
    Bearer`), whose claim is the user id (docs/auth.md); a secret, never logged]] },
  { name = "jwt_key_file", env = "ICESERVERS_JWT_KEY_FILE", type = "string", doc = [[a file
    of PEM public keys for RS256/ES256 (RSA of 2048 bits or more, EC P-256); with several, a
    line `kid: <name>` before each, and tokens must name theirs]] },
  { name = "jwt_algs", env = "ICESERVERS_JWT_ALGS", type = "list", doc = [[the algorithms
    tokens may use, comma list of `HS256`, `RS256`, `ES256`; required with a key (`none` is
    never accepted)]] },
  { name = "jwt_audience", env = "ICESERVERS_JWT_AUDIENCE", type = "string",
    doc = [[the `aud` a token must hold (checked when set)]] },
  { name = "jwt_issuer", env = "ICESERVERS_JWT_ISSUER", type = "string",
    doc = [[the `iss` a token must have (checked when set)]] },
  { name = "jwt_claim", env = "ICESERVERS_JWT_CLAIM", type = "string", default = "sub",
    doc = [[the claim that is the user id; default `sub`]] },
  { name = "jwt_cookie", env = "ICESERVERS_JWT_COOKIE", type = "var_name", doc = [[also take
    the token from this cookie; off by default]] },
  { name = "jwt_query", env = "ICESERVERS_JWT_QUERY", type = "string", doc = [[also take the
    token from this query parameter; off by default (a query lands in logs)]] },
  { name = "origins", env = "ICESERVERS_ORIGINS", type = "list", doc = [[the browser origins
    allowed (`https://app.example.com`, comma list): a request whose `Origin` is another one
    gets 403; one without `Origin` (not a browser) passes; answers name the matching origin
    (never `*`) with `Vary: Origin`; `OPTIONS` preflights are answered before the key, the
    token and the limits]] },
  { name = "cors_origin", type = "string", doc = [[one allowed origin: the same as `origins`
    of only it]] },
  { name = "limit_per_ip", env = "ICESERVERS_LIMIT_PER_IP", type = "rate", doc = [[answers per
    client address and window, like `20/minute`, `60/hour`, `5/10s` (IPv6 clients count per
    /64; the address is nginx's `$remote_addr`: behind a proxy, set `set_real_ip_from` and
    `real_ip_header`); over it: 429 with `Retry-After`]] },
  { name = "limit_per_user", env = "ICESERVERS_LIMIT_PER_USER", type = "rate", doc = [[the same
    per user id (the token's claim, or `opts.user`'s)]] },
  { name = "denylist_file", env = "ICESERVERS_DENYLIST_FILE", type = "string", doc = [[a file of
    denied user ids, one per line, each optionally followed by the Unix time it stops; read
    again when it changes; a denied user gets 403]] },
  { name = "redis", env = "ICESERVERS_REDIS", type = "string", doc = [[`host:port` of a
    Redis server that keeps the limits' counters and the revocations for every node (else
    the node's shared dict); no TLS: on a private network only]] },
  { name = "redis_password", env = "ICESERVERS_REDIS_PASSWORD", type = "key", doc = [[Redis'
    password (`AUTH`), if it has one; a secret, never logged]] },
  { name = "redis_timeout", env = "ICESERVERS_REDIS_TIMEOUT", type = "seconds",
    default = 0.2, doc = [[seconds to connect to Redis, and for each command; default `0.2`]] },
  { name = "redis_fail", env = "ICESERVERS_REDIS_FAIL", type = "redis_fail", default = "open",
    doc = [[what to do when Redis does not answer: `open` (default: serve without the limits
    and the store's revocations, and log it at most once a minute) or `closed` (503)]] },
  { name = "region", type = "function", doc = [[`function(ngx) -> region name or nil`:
    the region of the request (docs/shaping.md); wins over `region_var`]] },
  { name = "region_var", env = "ICESERVERS_REGION_VAR", type = "var_name",
    doc = [[the name of an nginx variable (without `$`) holding the request's region, set
    by a `geo` or `map` block, e.g. `turn_region`; empty or unset: no region]] },
  { name = "dict", type = "string", default = "iceservers",
    doc = [[the `lua_shared_dict` of the cache and the metrics]] },
  { name = "lock_timeout", type = "seconds", default = 5,
    doc = [[seconds a request waits for another's refresh of a shared provider's answer]] },
  { name = "health_interval", env = "ICESERVERS_HEALTH_INTERVAL", type = "interval",
    default = 30, doc = [[seconds between two probe rounds of `health()`; default `30`,
    minimum 1; `0`: off (the example `nginx.conf` calls `health()` only when the variable
    is set)]] },
  { name = "health_timeout", env = "ICESERVERS_HEALTH_TIMEOUT", type = "seconds",
    default = 2, doc = [[seconds for each probe of a round; default `2`]] },
  { name = "health_fall", env = "ICESERVERS_HEALTH_FALL", type = "count", default = 2,
    doc = [[failed probes in a row that take a URL down; default `2`]] },
  { name = "health_rise", env = "ICESERVERS_HEALTH_RISE", type = "count", default = 1,
    doc = [[successful probes in a row that bring it back up; default `1`]] },
  { name = "health_mode", env = "ICESERVERS_HEALTH_MODE", type = "health_mode",
    default = "filter", doc = [[`filter` (default): answers leave down URLs out;
    `observe`: only probe, log and report]] },
  { name = "health_providers", env = "ICESERVERS_HEALTH_PROVIDERS", type = "list",
    default = "coturn,static", doc = [[the providers of the chain whose servers are probed;
    default `coturn,static` (self-hosted); a REST provider listed here is probed from its
    cached answer (never an extra call: its quota and cost are yours)]] },
}

local BY_NAME = {}
for _, s in ipairs(M.LIST) do BY_NAME[s.name] = s end
M.BY_NAME = BY_NAME

function M.label(s) return "opts." .. s.name end

-- An endpoint key that would silently open the endpoint is refused.
local function var_name(v)
  if type(v) ~= "string" or not v:find("^[%a_][%w_]*$") then
    return nil, "must be an nginx variable name (letters, digits, _), without $"
  end
  return v
end

local function key(v)
  if type(v) ~= "string" or v == "" then
    return nil, "is " .. (v == "" and "empty" or "a " .. type(v))
      .. ": it must be a non-empty string"
  end
  return v
end

local JWT_FIELDS = { key = true, key_file = true, algs = true, audience = true, issuer = true,
  claim = true, cookie = true, query = true }
local function jwt_table(v)
  if type(v) ~= "table" then return nil, "must be a table of jwt_* options without jwt_" end
  for k in pairs(v) do
    if not JWT_FIELDS[k] then return nil, ("has no field '%s'"):format(tostring(k)) end
  end
  return v
end

local function rate(v)
  return require("iceservers.ngx.guard").rate(v)
end

local function redis_fail(v)
  if v ~= "open" and v ~= "closed" then return nil, "must be open or closed" end
  return v
end

local function interval(v)
  local n = tonumber(v)
  if not n or (n ~= 0 and n < 1) then return nil, "must be 0 (off) or at least 1 second" end
  return n
end

local function count(v)
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) or n > 100 then
    return nil, "must be a whole number 1 .. 100"
  end
  return n
end

local function health_mode(v)
  if v ~= "filter" and v ~= "observe" then return nil, "must be filter or observe" end
  return v
end

M.TYPES = setmetatable({ key = key, var_name = var_name, interval = interval, count = count,
  health_mode = health_mode, jwt_table = jwt_table, rate = rate,
  redis_fail = redis_fail }, { __index = options.coerce })

-- The options of opts (a table, or nil for none), checked, with their
-- defaults, and api_key from getenv(ICESERVERS_API_KEY) when opts has none
-- (false: no key).  Returns them; or nil, a one-line error and the name of
-- the bad option (when it is one value that is bad).
function M.resolve(opts, getenv)
  opts = opts or {}
  if type(opts) ~= "table" then return nil, "opts must be a table, not a " .. type(opts) end
  for k in pairs(opts) do
    if not BY_NAME[k] then
      return nil, ("opts.%s is not an option of serve() (a misspelling?)"):format(tostring(k))
    end
  end
  -- an option opts leaves out comes from its variable, if it has one (empty: unset)
  local from_env = {}
  for _, decl in ipairs(M.LIST) do
    local v = decl.env and opts[decl.name] == nil and getenv and getenv(decl.env)
    if v == "" and decl.name == "api_key" then
      return nil, decl.env .. " is set but empty (unset it for no key)"
    end
    if v and v ~= "" then from_env[decl.name] = v end
  end
  -- opts.jwt = {key = ...} is opts.jwt_key = ... (the table wins over variables)
  if type(opts.jwt) == "table" then
    for k in pairs(opts.jwt) do
      if BY_NAME["jwt_" .. tostring(k)] then from_env["jwt_" .. k] = nil end
    end
  end
  local values = setmetatable(from_env, { __index = function(_, name)
    if name:sub(1, 4) == "jwt_" and type(opts.jwt) == "table" and opts[name] == nil then
      local v = opts.jwt[name:sub(5)]
      if v ~= nil then return v end
    end
    return opts[name]
  end })
  local out, err, bad = options.settle(M.LIST, values, M.TYPES, function(decl)
    return rawget(from_env, decl.name) and decl.env or M.label(decl)
  end)
  if not out then return nil, err, bad.name end
  out.api_key = out.api_key or false
  if out.cors_origin and out.origins then
    return nil, "set origins or cors_origin, not both", "cors_origin"
  end
  out.origins = out.origins or out.cors_origin and { out.cors_origin } or nil
  if (out.jwt_key or out.jwt_key_file) and out.user_from_query then
    return nil, "user_from_query with a JWT key: the query would override the verified user id",
      "user_from_query"
  end
  return out
end

return M
