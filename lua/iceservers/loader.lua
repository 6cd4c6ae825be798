-- Finds a provider by name: first `<name>.lua` in the operator's providers
-- directories, then the built-ins under iceservers.providers.  A loaded file
-- is kept, so a provider is read once per process whatever the brokers.
local contract = require "iceservers.contract"

local M = {}

M.aliases = { ["turn-rest"] = "coturn" }

local loaded = {} -- path or module name -> provider table

local function fail(fmt, ...)
  error("iceservers: " .. fmt:format(...), 0)
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
  return contract.check(provider, name, path)
end

-- Returns the provider table (checked: iceservers.contract) and the name it
-- is known by: an operator's file by its own name, a built-in by its
-- canonical one (turn-rest is coturn).
function M.load(name, dirs)
  if type(name) ~= "string" or not name:match("^[%w_][%w_%-]*$") then
    fail("provider name %q is not a name (letters, digits, '_' and '-')", tostring(name))
  end
  local canonical = M.aliases[name] or name
  for _, dir in ipairs(dirs or {}) do
    local path = dir:gsub("/+$", "") .. "/" .. name .. ".lua"
    if file_exists(path) then
      if not loaded[path] then loaded[path] = load_file(path, name) end
      return loaded[path], name
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
    loaded[module] = contract.check(provider, name, module)
  end
  return loaded[module], canonical
end

return M
