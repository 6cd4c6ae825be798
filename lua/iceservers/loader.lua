-- Finds a provider by name: first `<name>.lua` in the operator's providers
-- directories, then the built-ins under iceservers.providers.  A loaded file
-- is kept, so a provider is read once per process whatever the brokers.
local options = require "iceservers.options"

local M = {}

M.aliases = { ["turn-rest"] = "coturn" }

local loaded = {} -- path or module name -> provider table

local function fail(fmt, ...)
  error("iceservers: " .. fmt:format(...), 0)
end

local function check(provider, name, where)
  if type(provider) ~= "table" or type(provider.get) ~= "function" then
    fail("provider '%s' (%s) does not return a table with a get function", name, where)
  end
  if provider.configure ~= nil and type(provider.configure) ~= "function" then
    fail("provider '%s' (%s): configure must be a function", name, where)
  end
  if provider.check_user ~= nil and type(provider.check_user) ~= "function" then
    fail("provider '%s' (%s): check_user must be a function", name, where)
  end
  if provider.kind ~= nil and provider.kind ~= "stun" and provider.kind ~= "turn" then
    fail("provider '%s' (%s): kind must be \"stun\" or \"turn\"", name, where)
  end
  options.check_declaration(name, provider.options)
  return provider
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local function load_file(path, name)
  local chunk, err = loadfile(path)
  if not chunk then
    fail("provider '%s': cannot load %s: %s", name, path, err)
  end
  local ok, provider = pcall(chunk)
  if not ok then
    fail("provider '%s': %s failed to run: %s", name, path, tostring(provider))
  end
  return check(provider, name, path)
end

-- Returns the provider table, the canonical name it is known by, and whether
-- it is a built-in (not an operator's file).
function M.load(name, dirs)
  if type(name) ~= "string" or not name:match("^[%w_][%w_%-]*$") then
    fail("provider name %q is not a name (letters, digits, '_' and '-')", tostring(name))
  end
  local canonical = M.aliases[name] or name
  for _, dir in ipairs(dirs or {}) do
    local path = dir:gsub("/+$", "") .. "/" .. name .. ".lua"
    if file_exists(path) then
      if not loaded[path] then loaded[path] = load_file(path, name) end
      return loaded[path], name, false
    end
  end
  local module = "iceservers.providers." .. canonical:gsub("%-", "_")
  if not loaded[module] then
    local ok, provider = pcall(require, module)
    if not ok then
      if tostring(provider):find("module '" .. module .. "' not found", 1, true) then
        fail("unknown provider '%s' (no %s.lua in the providers directories, and no built-in)",
          name, name)
      end
      fail("provider '%s': %s", name, tostring(provider))
    end
    loaded[module] = check(provider, name, module)
  end
  return loaded[module], canonical, true
end

return M
