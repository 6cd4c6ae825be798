--[[
The runtime a provider sees, built once per broker (docs/providers.md):

  ctx.http(req)    an HTTP transport (cosockets in nginx, libcurl elsewhere)
  ctx.crypto       the crypto primitives of the C core, and nothing else: hmac,
                   hmac_key (a keyed signer; its b64digest goes through LuaJIT's
                   FFI where there is one), digest, b64encode, b64decode, hex,
                   ct_equal, random_bytes, crc32
  ctx.fs.stat      stat(path) of the C core
  ctx.json         lua-cjson
  ctx.now()        Unix seconds; ctx.clock(): a monotonic clock
  ctx.log(level, msg)
  ctx.allow_http   whether the built-in providers' base URLs may be http://

Providers never require the runtime themselves, so the same file runs in a
script, the CLI, a test and nginx.  The chain gives each provider a ctx of
its own on top of this one (its name, its log prefix, logged HTTP calls).
]]
local core = require "iceservers.core"
require "iceservers.runtime.ffi" -- swaps the FFI b64digest in before any signer is used

local M = {}

local LEVELS = { error = true, warn = true, info = true, debug = true }
local CRYPTO = { "hmac", "hmac_key", "digest", "b64encode", "b64decode", "hex", "ct_equal",
  "random_bytes", "crc32" }

-- The default logger: warnings and errors on stderr, one line each.
function M.stderr_logger(level, msg)
  if level == "error" or level == "warn" then
    io.stderr:write("iceservers: [", level, "] ", msg, "\n")
  end
end

-- A table of its own per broker, so a provider that writes into it changes
-- no other broker's.
local function crypto()
  local t = {}
  for _, name in ipairs(CRYPTO) do t[name] = core[name] end
  return t
end

-- settings: the broker's (iceservers.settings): log, now, clock, http, allow_http.
function M.new(settings)
  local log = settings.log or M.stderr_logger
  local ctx = {
    crypto = crypto(),
    fs = { stat = core.stat },
    json = require "cjson",
    now = settings.now or os.time,
    clock = settings.clock or core.monotonic,
    allow_http = settings.allow_http == true,
  }
  function ctx.log(level, msg)
    if not LEVELS[level] then level = "info" end
    log(level, tostring(msg))
  end
  ctx.http = settings.http or require("iceservers.runtime.http").auto(ctx.log)
  return ctx
end

return M
