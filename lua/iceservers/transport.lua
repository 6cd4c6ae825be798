-- Picks the HTTP transport for each call: nginx cosockets where the phase has
-- them (a blocking libcurl call there would stall the whole worker), and the
-- libcurl client of iceservers.core everywhere else (plain Lua, the CLI, and
-- nginx's init phases, which have no cosockets).
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

-- A function(req) -> res | nil, err that chooses per call, so one broker
-- built in init_worker serves from content handlers too.
function M.auto()
  local client -- the libcurl client, made on first use
  return function(req)
    if M.in_cosocket_phase() then
      return require("iceservers.transport.cosocket").request(req)
    end
    client = client or require("iceservers.core").http_client()
    return client:request(req)
  end
end

return M
