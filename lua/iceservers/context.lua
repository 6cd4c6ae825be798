-- The runtime a provider sees, built once per broker: an HTTP transport, the
-- crypto core, JSON, a clock and a logger.  Providers never require these
-- themselves, so the same file runs in a script, the CLI, a test and nginx.
local M = {}

local LEVELS = { error = true, warn = true, info = true, debug = true }

-- The default logger: warnings and errors on stderr, one line each.
function M.stderr_logger(level, msg)
  if level == "error" or level == "warn" then
    io.stderr:write("iceservers: [", level, "] ", msg, "\n")
  end
end

-- allow_http: whether the built-in providers' base URLs may be http://
-- (ICESERVERS_ALLOW_HTTP, for tests); rest.base_url reads it.
function M.new(config, allow_http)
  local core = require "iceservers.core"
  local log = config.log or M.stderr_logger
  local ctx = {
    crypto = core,
    json = require "cjson",
    now = config.now or os.time,
    clock = config.clock or core.monotonic,
    allow_http = allow_http == true,
  }
  function ctx.log(level, msg)
    if not LEVELS[level] then level = "info" end
    log(level, tostring(msg))
  end
  ctx.http = config.http or require("iceservers.transport").auto(ctx.log)
  return ctx
end

return M
