-- The default ctx.http: picks the HTTP transport for each call, nginx
-- cosockets (iceservers.ngx.cosocket) where the phase has them (a blocking
-- libcurl call there would stall the whole worker), and the libcurl client of
-- iceservers.core everywhere else (plain Lua, the CLI, and nginx's init
-- phases, which have no cosockets).
local M = {}

local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, server_rewrite = true, precontent = true,
}

function M.in_cosocket_phase()
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
    and COSOCKET_PHASES[ngx.get_phase()] == true
end

-- libcurl writes the TLS secrets of every connection to the file that
-- SSLKEYLOGFILE names (a debugging aid that must not stay on in production):
-- said once, when the libcurl client is made, without the path.
local function warn_keylog(log)
  if log and os.getenv("SSLKEYLOGFILE") then
    log("warn", "SSLKEYLOGFILE is set: libcurl writes the TLS session keys of provider "
      .. "calls to that file, so anyone who can read it can decrypt them; unset it")
  end
end

-- A function(req) -> res | nil, err that chooses per call, so one broker
-- built in init_worker serves from content handlers too.  log(level, msg)
-- is the broker's logger.
function M.auto(log)
  local client -- the libcurl client, made on first use
  return function(req)
    if M.in_cosocket_phase() then
      return require("iceservers.ngx.cosocket").request(req)
    end
    if not client then
      client = require("iceservers.core").http_client()
      warn_keylog(log)
    end
    return client:request(req)
  end
end

return M
