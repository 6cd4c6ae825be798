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
  { name = "cors_origin", type = "string", doc = [[the allowed `Origin`: CORS headers on
    every answer, and `OPTIONS` preflights answered]] },
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
  health_mode = health_mode }, { __index = options.coerce })

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
  local values = setmetatable(from_env, { __index = opts })
  local out, err, bad = options.settle(M.LIST, values, M.TYPES, function(decl)
    return rawget(from_env, decl.name) and decl.env or M.label(decl)
  end)
  if not out then return nil, err, bad.name end
  out.api_key = out.api_key or false
  return out
end

return M
