--[[
The health of each probed URL: a state machine per URL (each on its own: UDP
may be blocked where TCP works) kept in a store, and the bounded reason of a
failed probe.  Plain Lua: the store is injected (a Lua table in a script, the
shared dict in nginx), so the same code runs in a spec and in every worker.

  local t = health.tracker(store, { fall = 2, rise = 1, keep = 90 })
  t:record(url, result, now) -> state, changed   (result: iceservers.stun.probe's)
  t:state(url)               -> state or nil      (never probed)
  t:up(url)                  -> false only when the URL is known down

  state = { up = bool, since = Unix s, ok = successes in a row, fail = failures
            in a row, rtt_ms = the last answered probe's, reason = REASONS's,
            error = the last failure's one line }

store: get(key) -> string or nil; set(key, string, ttl): keep is how long the
state of a URL outlives its last probe (a URL no provider hands out any more
is forgotten).  A URL not probed yet counts as up; it goes down after `fall`
failures in a row and up again after `rise` successes in a row.
]]
local M = {}

local floor = math.floor

-- What a failure is, for metrics: a closed set, never the server's text.
M.REASONS = { "timeout", "refused", "tls", "401", "403", "437", "441", "486", "508", "other" }
local KNOWN = {}
for _, r in ipairs(M.REASONS) do KNOWN[r] = true end

-- The reason of a failed probe result.
function M.reason(result)
  if result.code then
    local code = ("%d"):format(result.code)
    return KNOWN[code] and code or "other"
  end
  if result.stage == "timeout" then return "timeout" end
  if result.stage == "tls" then return "tls" end
  if result.error and tostring(result.error):find("refused", 1, true) then return "refused" end
  return "other"
end

local PREFIX = "health|url|"

local function encode(s)
  -- the error line last: it is the only field that may hold a "|"
  return ("%d|%d|%d|%d|%s|%s|%s"):format(s.up and 1 or 0, s.since, s.ok, s.fail,
    s.rtt_ms and ("%.3f"):format(s.rtt_ms) or "", s.reason or "", s.error or "")
end

local function decode(text)
  local up, since, ok, fail, rtt, reason, err =
    text:match("^([01])|(%d+)|(%d+)|(%d+)|([%d.]*)|(%w*)|(.*)$")
  if not up then return nil end
  return { up = up == "1", since = tonumber(since), ok = tonumber(ok), fail = tonumber(fail),
    rtt_ms = tonumber(rtt), reason = reason ~= "" and reason or nil,
    error = err ~= "" and err or nil }
end

local Tracker = {}
Tracker.__index = Tracker

function M.tracker(store, opts)
  opts = opts or {}
  return setmetatable({ store = store, fall = opts.fall or 2, rise = opts.rise or 1,
    keep = opts.keep or 90 }, Tracker)
end

function Tracker:state(url)
  local text = self.store:get(PREFIX .. url)
  return text and decode(text) or nil
end

function Tracker:up(url)
  local s = self:state(url)
  return not s or s.up
end

-- The new state of url after a probe's result; changed is true when it went
-- up or down (the one time to log).
function Tracker:record(url, result, now)
  now = floor(now)
  local s = self:state(url) or { up = true, since = now, ok = 0, fail = 0 }
  local was = s.up
  if result.ok then
    s.ok, s.fail = s.ok + 1, 0
    s.rtt_ms = result.rtt_ms or s.rtt_ms
    s.reason, s.error = nil, nil
    if not s.up and s.ok >= self.rise then s.up = true end
  else
    s.ok, s.fail = 0, s.fail + 1
    s.reason = M.reason(result)
    s.error = tostring(result.error or result.stage or "failed"):gsub("[%c]", " "):sub(1, 200)
    if s.up and s.fail >= self.fall then s.up = false end
  end
  if s.up ~= was then s.since = now end
  self.store:set(PREFIX .. url, encode(s), self.keep)
  return s, s.up ~= was
end

-- A store over a Lua table (scripts, specs); the nginx one is the shared dict.
function M.memory_store(clock)
  clock = clock or os.time
  local data = {}
  return {
    get = function(_, key)
      local e = data[key]
      if e and e.until_t and clock() >= e.until_t then
        data[key] = nil
        return nil
      end
      return e and e.value
    end,
    set = function(_, key, value, ttl)
      data[key] = value ~= nil and { value = value, until_t = ttl and clock() + ttl } or nil
    end,
  }
end

return M
