--[[
The options of iceservers.ngx's serve(broker, opts) (and of its new and
from_env: dict, lock_timeout), declared as the broker's settings are
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
  { name = "dict", type = "string", default = "iceservers",
    doc = [[the `lua_shared_dict` of the cache and the metrics]] },
  { name = "lock_timeout", type = "seconds", default = 5,
    doc = [[seconds a request waits for another's refresh of a shared provider's answer]] },
}

local BY_NAME = {}
for _, s in ipairs(M.LIST) do BY_NAME[s.name] = s end
M.BY_NAME = BY_NAME

function M.label(s) return "opts." .. s.name end

-- An endpoint key that would silently open the endpoint is refused.
local function key(v)
  if type(v) ~= "string" or v == "" then
    return nil, "is " .. (v == "" and "empty" or "a " .. type(v))
      .. ": it must be a non-empty string"
  end
  return v
end

M.TYPES = setmetatable({ key = key }, { __index = options.coerce })

-- The options of opts (a table, or nil for none), checked, with their
-- defaults, and api_key from getenv(ICESERVERS_API_KEY) when opts has none
-- (false: no key).  Returns them; or nil, a one-line error.
function M.resolve(opts, getenv)
  opts = opts or {}
  if type(opts) ~= "table" then return nil, "opts must be a table, not a " .. type(opts) end
  for k in pairs(opts) do
    if not BY_NAME[k] then
      return nil, ("opts.%s is not an option of serve() (a misspelling?)"):format(tostring(k))
    end
  end
  local values = opts
  if opts.api_key == nil then
    local decl = BY_NAME.api_key
    local v = getenv and getenv(decl.env)
    if v == "" then return nil, decl.env .. " is set but empty (unset it for no key)" end
    if v ~= nil then
      values = setmetatable({ api_key = v }, { __index = opts })
    end
  end
  local out, err = options.settle(M.LIST, values, M.TYPES, M.label)
  if not out then return nil, err end
  out.api_key = out.api_key or false
  return out
end

return M
