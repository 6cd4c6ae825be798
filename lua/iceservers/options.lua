-- Turns a provider's declared options into the `opts` table it is called with,
-- from its config sub-table or from environment variables, with one coercion
-- per declared type so both sources accept the same spellings.
local M = {}

local function fail(fmt, ...)
  error("iceservers: " .. fmt:format(...), 0)
end

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }
M.TTL_MIN, M.TTL_MAX = 60, 7 * 86400

-- "3600", "90m", "1h", "1d" or a number; always seconds, never milliseconds.
function M.parse_ttl(v)
  local n, unit
  if type(v) == "number" then
    n, unit = v, "s"
  elseif type(v) == "string" then
    local digits, u = v:match("^%s*(%d+)%s*([smhd]?)%s*$")
    if not digits then
      return nil, ("TTL %q is not a whole number of seconds, or one with an s/m/h/d suffix")
        :format(v)
    end
    n, unit = tonumber(digits), u ~= "" and u or "s"
  else
    return nil, "TTL must be a number or a string, not a " .. type(v)
  end
  if n ~= math.floor(n) then
    return nil, ("TTL %s is not a whole number of seconds"):format(tostring(v))
  end
  local secs = n * UNITS[unit]
  if secs < M.TTL_MIN or secs > M.TTL_MAX then
    return nil, ("TTL %s is outside 60 s .. 7 d"):format(tostring(v))
  end
  return secs
end

-- true, false, "1"/"true"/"yes", "0"/"false"/"no"; anything else is nil.
function M.parse_boolean(v)
  if type(v) == "boolean" then return v end
  if v == "1" or v == "true" or v == "yes" then return true end
  if v == "0" or v == "false" or v == "no" then return false end
  return nil
end

-- "a, b,c" -> {"a", "b", "c"}; an array of strings is taken as it is.
function M.parse_list(v)
  if type(v) == "string" then
    local out = {}
    for item in v:gmatch("[^,]+") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then out[#out + 1] = item end
    end
    return out
  elseif type(v) == "table" then
    local out = {}
    for i = 1, #v do
      if type(v[i]) ~= "string" then
        return nil, "list items must be strings"
      end
      out[i] = v[i]
    end
    return out
  end
  return nil, "must be a comma-separated string or an array of strings, not a " .. type(v)
end

local coerce = {
  string = function(v)
    if type(v) ~= "string" then return nil, "must be a string, not a " .. type(v) end
    return v
  end,
  list = M.parse_list,
  ttl = M.parse_ttl,
  number = function(v)
    local n = tonumber(v)
    if n == nil then return nil, "must be a number" end
    return n
  end,
  boolean = function(v)
    local b = M.parse_boolean(v)
    if b == nil then return nil, "must be a boolean (true/false, 1/0)" end
    return b
  end,
}

-- Checks a provider module's `options` declaration (a drop-in file may be wrong).
function M.check_declaration(name, decl)
  if decl == nil then return {} end
  if type(decl) ~= "table" then
    fail("provider '%s': options must be a table", name)
  end
  for key, spec in pairs(decl) do
    if type(key) ~= "string" or type(spec) ~= "table" then
      fail("provider '%s': each option must be declared as name = { ... }", name)
    end
    if spec.type ~= nil and not coerce[spec.type] then
      fail("provider '%s': option '%s' has unknown type '%s'", name, key, tostring(spec.type))
    end
    if spec.env ~= nil and type(spec.env) ~= "string" then
      fail("provider '%s': option '%s' has a non-string env name", name, key)
    end
  end
  return decl
end

--[[
Resolves the options of provider `name`:
  source.table: its config sub-table (from iceservers.new), or
  source.env:   a function(name) -> string|nil (from iceservers.from_env).
Unknown keys in a sub-table, a missing required option or a value of the
wrong shape raise a config error naming the option (and its variable).
]]
function M.resolve(name, decl, source)
  local opts = {}
  local given = source.table
  if given ~= nil and type(given) ~= "table" then
    fail("config.%s must be a table of options", name)
  end
  if given then
    for key in pairs(given) do
      if not decl[key] then
        fail("provider '%s' has no option '%s'", name, tostring(key))
      end
    end
  end
  for key, spec in pairs(decl) do
    local raw, where
    if given then
      raw, where = given[key], ("config.%s.%s"):format(name, key)
    elseif source.env and spec.env then
      raw, where = source.env(spec.env), spec.env
      if raw == "" then raw = nil end
    end
    if raw == nil then
      raw = spec.default
      where = where or ("%s option '%s'"):format(name, key)
    end
    if raw == nil then
      if spec.required then
        fail("provider '%s' needs option '%s'%s", name, key,
          spec.env and (" (" .. spec.env .. ")") or "")
      end
    else
      local value, err = coerce[spec.type or "string"](raw)
      if value == nil then
        fail("%s: %s", where, err)
      end
      opts[key] = value
    end
  end
  return opts
end

return M
