--[[
iceservers: ICE server lists with short-lived TURN credentials.

  local broker = iceservers.new(config)      -- or iceservers.from_env([env])
  local servers, meta = broker:get(user[, req])   -- or nil, err
  local json = iceservers.encode(servers, meta, "webrtc" | "rest")
  local json = broker:json(user, "webrtc" | "rest"[, req])   -- the same bytes

Error policy: building a broker raises on a bad configuration (a startup
mistake, worth stopping for); broker:get returns nil, err for everything that
can go wrong at run time, bad user ids included.  Errors and logs never carry
a secret, a credential or a provider's response body.
]]
local broker = require "iceservers.broker"
local encode = require "iceservers.encode"
local settings = require "iceservers.settings"

local M = {
  _VERSION = require("iceservers.core")._VERSION,
  encode = encode.encode,
}

-- Builds a broker from a config table; reads no environment variable at all.
function M.new(config)
  if type(config) ~= "table" then
    error("iceservers.new: config must be a table", 2)
  end
  return broker.build(config, nil)
end

-- Builds a broker from environment variables, read now (never at require
-- time): those of iceservers.settings, and the providers' own.  env is
-- os.getenv (the default), another function(name), or a table.  extra may
-- carry the non-environment keys (log, http, now, clock, cache, on_event),
-- and wins over the environment.
function M.from_env(env, extra)
  local lookup
  if env == nil then
    lookup = os.getenv
  elseif type(env) == "function" then
    lookup = env
  elseif type(env) == "table" then
    lookup = function(name) return env[name] end
  else
    error("iceservers.from_env: env must be a function or a table", 2)
  end
  if extra ~= nil and type(extra) ~= "table" then
    error("iceservers.from_env: extra must be a table", 2)
  end
  local function var(name)
    local v = lookup(name)
    if v ~= nil and type(v) ~= "string" then
      error(("iceservers: environment variable %s is not a string"):format(name), 0)
    end
    return v
  end
  local config = settings.from_env(var)
  for k, v in pairs(extra or {}) do config[k] = v end
  return broker.build(config, var)
end

return M
