--[[
Declared options: the coercions every declared value goes through (a
provider's options, the broker's settings, serve()'s options), so a value
given in a config table and the same value given as an environment variable
are accepted in the same spellings; and the resolution of a provider's
options into the `opts` table it is called with.

A declaration: name = { env = "VAR", type = "string", default = ...,
required = true, secret = true, doc = "..." }.
]]
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

-- "a, b,c" -> {"a", "b", "c"} (sep: one separator character, default ",";
-- blanks around items and empty items go); an array of strings is copied.
function M.parse_list(v, sep)
  if type(v) == "string" then
    local out = {}
    for item in v:gmatch("[^" .. (sep or ",") .. "]+") do
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
  local what = (sep or ",") == "," and "comma" or ("'" .. sep .. "'")
  return nil, ("must be a %s-separated string or an array of strings, not a %s")
    :format(what, type(v))
end

-- type name -> function(value, declaration) -> value | nil, err.  An err
-- starting with "must" or "is" reads after the name of the value.
M.coerce = {
  string = function(v)
    if type(v) ~= "string" then return nil, "must be a string, not a " .. type(v) end
    return v
  end,
  list = function(v, spec) return M.parse_list(v, spec and spec.sep) end,
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
  seconds = function(v)
    local n = tonumber(v)
    if not n or n <= 0 then return nil, "must be a positive number of seconds" end
    return n
  end,
  ["function"] = function(v)
    if type(v) ~= "function" then return nil, "must be a function" end
    return v
  end,
}

-- The types a provider may declare (a variable can give each of them).
M.PROVIDER_TYPES = { string = true, list = true, ttl = true, number = true, boolean = true,
  regions = true }

-- "what: err", or "what err" when err reads after a name ("must be ...").
function M.message(what, err)
  if err:find("^must ") or err:find("^is ") or err:find("^holds ") then
    return what .. " " .. err
  end
  return what .. ": " .. err
end

-- Declared settings (a list of declarations with names) from `values`, a
-- table name -> raw value: each through types[its type], or its default.
-- Returns the settings; or nil, err naming the first bad one by label(decl),
-- and that declaration.
function M.settle(list, values, types, label)
  local out = {}
  for i = 1, #list do
    local s = list[i]
    local v = values[s.name]
    if v == nil then v = s.default end
    if v ~= nil then
      local value, err = types[s.type](v, s)
      if value == nil then return nil, M.message(label(s), err), s end
      out[s.name] = value
    end
  end
  return out
end

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
    if spec.type ~= nil and not M.PROVIDER_TYPES[spec.type] then
      fail("provider '%s': option '%s' has unknown type '%s'", name, key, tostring(spec.type))
    end
    if spec.env ~= nil and type(spec.env) ~= "string" then
      fail("provider '%s': option '%s' has a non-string env name", name, key)
    end
    if spec.type == "regions" then
      for _, f in ipairs(type(spec.fields) == "table" and spec.fields or {}) do
        if type(decl[f]) ~= "table" or decl[f].type == "regions" then
          fail("provider '%s': option '%s' names field '%s', which is not an option",
            name, key, tostring(f))
        end
      end
      if type(spec.fields) ~= "table" or #spec.fields == 0 then
        fail("provider '%s': option '%s' of type regions needs fields", name, key)
      end
    end
  end
  return decl
end

--[[
An option of type "regions" (`fields` = names of other options of the
provider): per region name ([a-z0-9_-]+), a table of those options.  From a
config table: `regions = { eu = { urls = ... }, ... }`; from variables: the
option's variable lists the names (`TURN_REGIONS=eu,us`), and each field of
a region comes from the field's variable with the region's name upper-cased,
`-` as `_` (`TURN_URLS_EU`).  Each field is coerced as its own option; unset
fields are left out (the provider says what a region inherits).
]]
M.REGION_NAME = "^[a-z0-9_-]+$"

function M.region_suffix(region)
  return (region:upper():gsub("-", "_"))
end

local function region_fields(decl, spec, raw_of)
  local out = {}
  for _, f in ipairs(spec.fields) do
    local raw, where = raw_of(f)
    if raw ~= nil then
      local value, err = M.coerce[decl[f].type or "string"](raw, decl[f])
      if value == nil then fail("%s: %s", where, err) end
      out[f] = value
    end
  end
  return out
end

local function check_region_name(region, where)
  if type(region) ~= "string" or not region:find(M.REGION_NAME) then
    fail("%s: region name '%s' must be lower-case letters, digits, '_' or '-'", where,
      tostring(region):gsub("%c", "?"))
  end
end

local function regions(name, decl, key, spec, given, env)
  local out = {}
  if given then
    local t = given[key]
    if t == nil then return nil end
    local where = ("config.%s.%s"):format(name, key)
    if type(t) ~= "table" then fail("%s must be a table of regions", where) end
    for region, fields in pairs(t) do
      check_region_name(region, where)
      local at = where .. "." .. region
      if type(fields) ~= "table" then fail("%s must be a table of options", at) end
      local known = {}
      for _, f in ipairs(spec.fields) do known[f] = true end
      for f in pairs(fields) do
        if not known[f] then
          fail("%s: no option '%s' per region (only %s)", at, tostring(f),
            table.concat(spec.fields, ", "))
        end
      end
      out[region] = region_fields(decl, spec, function(f)
        return fields[f], at .. "." .. f
      end)
    end
  else
    local raw = env and spec.env and env(spec.env)
    if raw == nil or raw == "" then return nil end
    local names, err = M.parse_list(raw)
    if not names then fail("%s: %s", spec.env, err) end
    for _, region in ipairs(names) do
      check_region_name(region, spec.env)
      local suffix = M.region_suffix(region)
      out[region] = region_fields(decl, spec, function(f)
        local var = decl[f].env and (decl[f].env .. "_" .. suffix)
        local v = var and env(var)
        if v == "" then v = nil end
        return v, var
      end)
    end
  end
  if next(out) == nil then fail("%s names no region", given and key or spec.env) end
  return out
end

-- One option of provider `name` (not of type regions) from its source.
function M.option(name, key, spec, given, source)
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
    local value, err = M.coerce[spec.type or "string"](raw, spec)
    if value == nil then
      fail("%s: %s", where, err)
    end
    return value
  end
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
    if spec.type == "regions" then
      opts[key] = regions(name, decl, key, spec, given, source.env)
    else
      opts[key] = M.option(name, key, spec, given, source)
    end
  end
  return opts
end
return M
