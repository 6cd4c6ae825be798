-- B7: one TURN probe at a time against a real coturn on loopback, through
-- LuaSocket (iceservers.stun.net_socket), as the CLI probes.
--
--   lua5.4|luajit bench/probe.lua PORT SECRET N
--
-- N probes over UDP, then N over TCP, each with a new TURN REST credential
-- (a new allocation).  Prints "<transport>_ms=<median wall ms>
-- <transport>_exchanges=<min>-<max> <transport>_ok=<count> <transport>_retried=<count>"
-- for udp and tcp (exchanges of the probes not retried: see probe.md's retried),
-- and "cpu_ms=<CPU ms per probe>" (os.clock over all 2N).
dofile("bench/paths.lua")

local core = require "iceservers.core"
local probe = require "iceservers.stun.probe"
local net = require "iceservers.stun.net_socket"

local port, secret, n = tonumber(arg[1]), arg[2], tonumber(arg[3]) or 50
assert(port and secret, "usage: probe.lua PORT SECRET N")
local signer = core.hmac_key("sha1", secret)
local OPTS = { net = net, crypto = core, now = core.monotonic, timeout = 5 }

local out = {}
local cpu0 = os.clock()
for _, transport in ipairs { "udp", "tcp" } do
  local url = ("turn:127.0.0.1:%d?transport=%s"):format(port, transport)
  local times, lo, hi, ok, retried = {}, math.huge, 0, 0, 0
  for i = 1, n do
    local username = ("%d:bench-%s-%d"):format(os.time() + 3600, transport, i)
    local t0 = core.monotonic()
    local r = probe.url(url, { username = username, credential = signer:b64digest(username) },
      OPTS)
    times[i] = (core.monotonic() - t0) * 1000
    if r.ok and r.checked ~= false and r.released then
      ok = ok + 1
    else
      io.stderr:write(("probe %s %d: %s (%s)\n"):format(transport, i, tostring(r.error),
        tostring(r.warning or r.stage)))
    end
    if r.retried then -- a 437 from an earlier probe's port: counted apart
      retried = retried + 1
    else
      lo, hi = math.min(lo, r.exchanges or 0), math.max(hi, r.exchanges or 0)
    end
  end
  table.sort(times)
  out[#out + 1] = ("%s_ms=%.3f %s_exchanges=%d-%d %s_ok=%d %s_retried=%d"):format(transport,
    times[math.floor((n + 1) / 2)], transport, lo, hi, transport, ok, transport, retried)
end
out[#out + 1] = ("cpu_ms=%.3f"):format((os.clock() - cpu0) * 1000 / (2 * n))
print(table.concat(out, " "))
