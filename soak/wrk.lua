--[==[
The load of the soak (scripts/soak.sh): a wrk script that cycles through the
ways clients ask the endpoint (a browser's GET of the webrtc JSON; what Janus
1.1.2 sends: GET and POST of "?service=turn&username=U", the POST with the
same form body, and its "?format=rest?service=turn..." for a turn_rest_api
URL with a query of its own) and checks every answer.

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

-- Janus' request for turn_rest_api = configured (src/turnrest.c): its query
-- appended after a "?" whatever the URL holds, and as the body of a POST.
-- SOAK_TOKEN: the application's JWT, sent with every request (the guarded endpoint)
local token = os.getenv("SOAK_TOKEN")
local function auth(headers)
  if token then headers.Authorization = "Bearer " .. token end
  return headers
end

local function janus(method, configured, user)
  local query = "service=turn&username=" .. user
  local headers = auth { ["User-Agent"] = "Janus/1.0" }
  local body
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    body = query
  end
  return wrk.format(method, configured .. "?" .. query, headers, body)
end

function init()
  local path = wrk.path
  requests = {
    wrk.format("GET", path, auth {}),
    janus("GET", path, "janus-1"),
    wrk.format("GET", path .. "?format=webrtc", auth {}),
    janus("POST", path, "janus-2"),
    janus("GET", path .. "?format=rest", "janus-3"),
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
