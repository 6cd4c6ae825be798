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

function M.new(config)
  local core = require "iceservers.core"
  local log = config.log or M.stderr_logger
  local ctx = {
    crypto = core,
    json = require "cjson",
    now = config.now or os.time,
    clock = config.clock or core.monotonic,
  }
  function ctx.log(level, msg)
    if not LEVELS[level] then level = "info" end
    log(level, tostring(msg))
  end
  ctx.http = config.http or require("iceservers.transport").auto()
  return ctx
end

return M
