-- What the prober's two transports (net_socket for plain Lua, net_ngx for
-- nginx) share: host names with or without IPv6 brackets, pinned addresses
-- (ICESERVERS_RESOLVE's map), argument checks, per-call options over the
-- defaults of new{}, and the net table new{} makes.
local M = { DEFAULT_TIMEOUT = 5 }

function M.unbracket(host)
  return host:match("^%[(.*)%]$") or host
end

function M.is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- The pinned address for host:port (the host with or without brackets), or nil.
function M.pinned(pins, host, port)
  if not pins then return nil end
  local bare = M.unbracket(host)
  return pins[host .. ":" .. port] or pins[bare .. ":" .. port]
    or pins["[" .. bare .. "]:" .. port]
end

-- conn:settimeout(seconds): the timeout of the next send and receive.
function M.settimeout(conn, seconds)
  conn.timeout = seconds
end

-- Raises at the level of net.udp / net.tcp's caller.
function M.check_args(host, port, opts)
  if type(host) ~= "string" or host == "" then error("net: host must be a string", 4) end
  if type(port) ~= "number" or port < 1 or port > 65535 or port % 1 ~= 0 then
    error("net: port must be an integer 1-65535", 4)
  end
  if opts ~= nil and type(opts) ~= "table" then error("net: opts must be a table", 4) end
end

-- opts over the defaults of new{}.
function M.merge(defaults, opts)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(opts or {}) do out[k] = v end
  out.timeout = out.timeout or M.DEFAULT_TIMEOUT
  return out
end

-- The new{} of a transport module whose udp/tcp take (defaults, host, port, opts).
function M.constructor(udp, tcp, run)
  return function(defaults)
    defaults = defaults or {}
    return {
      udp = function(host, port, opts) return udp(defaults, host, port, opts) end,
      tcp = function(host, port, opts) return tcp(defaults, host, port, opts) end,
      run = run,
    }
  end
end

return M
