--[==[
The load of the soak (scripts/soak.sh): a wrk script that cycles through the
ways clients ask the endpoint (GET webrtc, GET ?format=rest with Janus'
parameters, a Janus-style POST form) and checks every answer.

  wrk -s soak/wrk.lua http://127.0.0.1:PORT/ice-servers

At the end it prints one line (besides wrk's own summary):

  soak-wrk: responses=N non2xx=N degraded=N noturn=N metered=N coturn=N other=N

non2xx: status outside 200-299; degraded: a 200 that says "degraded" (the
STUN-only fallback); noturn: a 200 without a TURN credential; metered/coturn:
which provider's TURN servers the answer holds (by their URLs).
]==]
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local requests, n
-- a global: done() reads it from each thread with thread:get
counts = { responses = 0, non2xx = 0, degraded = 0, noturn = 0, metered = 0,
  coturn = 0, other = 0 }

function init()
  local path = wrk.path
  local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  requests = {
    wrk.format("GET", path),
    wrk.format("GET", path .. "?format=rest&service=turn&username=janus-1"),
    wrk.format("GET", path .. "?format=webrtc"),
    wrk.format("POST", path, form, "format=rest&service=turn&username=janus-2"),
  }
  n = 0
end

function request()
  n = n % #requests + 1
  return requests[n]
end

local find = string.find

function response(status, _, body)
  counts.responses = counts.responses + 1
  if status < 200 or status > 299 then
    counts.non2xx = counts.non2xx + 1
    return
  end
  if find(body, '"degraded"', 1, true) then counts.degraded = counts.degraded + 1 end
  -- webrtc answers carry "username"; rest answers carry "username" too
  if not find(body, '"username"', 1, true) then
    counts.noturn = counts.noturn + 1
  elseif find(body, "metered.ca", 1, true) then
    counts.metered = counts.metered + 1
  elseif find(body, "turn.soak.test", 1, true) then
    counts.coturn = counts.coturn + 1
  else
    counts.other = counts.other + 1
  end
end

local KEYS = { "responses", "non2xx", "degraded", "noturn", "metered", "coturn", "other" }

function done()
  local total = {}
  for _, k in ipairs(KEYS) do total[k] = 0 end
  for _, t in ipairs(threads) do
    for _, k in ipairs(KEYS) do total[k] = total[k] + (t:get("counts")[k] or 0) end
  end
  local parts = {}
  for _, k in ipairs(KEYS) do parts[#parts + 1] = k .. "=" .. total[k] end
  io.write("soak-wrk: ", table.concat(parts, " "), "\n")
end
