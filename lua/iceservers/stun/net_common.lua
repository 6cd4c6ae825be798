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

function M.close(conn)
  conn.sock:close()
end

-- The options of one net.udp / net.tcp call: opts over the defaults of
-- new{}; a bad argument raises at the level of that call's caller.
function M.options(defaults, host, port, opts)
  if type(host) ~= "string" or host == "" then error("net: host must be a string", 5) end
  if type(port) ~= "number" or port < 1 or port > 65535 or port % 1 ~= 0 then
    error("net: port must be an integer 1-65535", 5)
  end
  if opts ~= nil and type(opts) ~= "table" then error("net: opts must be a table", 5) end
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(opts or {}) do out[k] = v end
  out.timeout = out.timeout or M.DEFAULT_TIMEOUT
  return out
end

-- net.run's argument: a list of functions (raises at net.run's caller).
function M.check_tasks(tasks)
  if type(tasks) ~= "table" then error("net.run: tasks must be a list of functions", 3) end
  for i, task in ipairs(tasks) do
    if type(task) ~= "function" then error("net.run: task " .. i .. " is not a function", 3) end
  end
end

-- Completes a transport module M whose udp/tcp take (defaults, host, port,
-- opts): M.new{defaults} makes a net table; M itself is one without defaults.
function M.finish(mod, udp, tcp)
  function mod.new(defaults)
    defaults = defaults or {}
    return {
      udp = function(host, port, opts) return udp(defaults, host, port, opts) end,
      tcp = function(host, port, opts) return tcp(defaults, host, port, opts) end,
      run = mod.run,
    }
  end
  local plain = mod.new()
  mod.udp, mod.tcp = plain.udp, plain.tcp
  return mod
end

return M
