--[[
The provider contract (docs/providers.md), checked: the keys of a provider
table, a closed set, so that a misspelt one (`share = true` for `shared`) is
a load error naming it and the file instead of a silent default (keys
starting with "_" are the author's own); and a call of its get, whose answer
is normalized and whose lifetime is checked.
]]
local normalize = require "iceservers.normalize"
local options = require "iceservers.options"

local M = {}

local floor, huge = math.floor, math.huge
local type, tonumber, pcall = type, tonumber, pcall

-- key -> a check of its value: nil when fine, else what it must be.
local function fn(v) return type(v) ~= "function" and "must be a function" or nil end
M.KEYS = {
  get = fn,
  configure = fn,
  check_user = fn,
  options = function() return nil end, -- options.check_declaration checks it
  kind = function(v)
    return v ~= "stun" and v ~= "turn" and 'must be "stun" or "turn"' or nil
  end,
  shared = function(v) return type(v) ~= "boolean" and "must be true or false" or nil end,
  max_ttl = function(v)
    if type(v) ~= "number" or v ~= floor(v) or v < options.TTL_MIN or v > options.TTL_MAX then
      return "must be a whole number of seconds, 60 .. 604800"
    end
  end,
}

local KNOWN = {}
for key in pairs(M.KEYS) do KNOWN[#KNOWN + 1] = key end
table.sort(KNOWN)
KNOWN = table.concat(KNOWN, ", ")

local function fail(fmt, ...)
  error("iceservers: " .. fmt:format(...), 0)
end

-- The provider table of `name`, loaded from `where` (a path or a module
-- name), checked; raises a one-line config error naming both.
function M.check(provider, name, where)
  if type(provider) ~= "table" or type(provider.get) ~= "function" then
    fail("provider '%s' (%s) does not return a table with a get function", name, where)
  end
  for key, value in pairs(provider) do
    if type(key) ~= "string" then
      fail("provider '%s' (%s): a key that is not a string (%s)", name, where, type(key))
    end
    local check = M.KEYS[key]
    if check then
      local why = check(value)
      if why then fail("provider '%s' (%s): %s %s", name, where, key, why) end
    elseif key:sub(1, 1) ~= "_" then
      fail("provider '%s' (%s): unknown key '%s' (the keys are %s; your own start with _)",
        name, where, key, KNOWN)
    end
  end
  options.check_declaration(name, provider.options)
  return provider
end

-- A number of a provider's answer, for an error: never more than its value.
local function show(n)
  if n ~= n then return "nan" end
  if n == huge then return "inf" end
  if n == -huge then return "-inf" end
  return ("%.15g"):format(n)
end

local function days(secs)
  if secs % 86400 == 0 then return ("%d d"):format(secs / 86400) end
  return ("%d s"):format(secs)
end

-- The clock of a provider may be a little ahead of ours.
local SKEW = 60

--[[
The ttl (seconds) and expires (Unix seconds) that get returned, checked and
cut: to `max` (the lifetime asked for, the provider's max_ttl, 7 d), an
expires no further ahead than `top` (its max_ttl or 7 d) and a little skew.
Returns true, ttl, expires; or false, why.  Under the 60 s floor (or not a
finite number) the answer is a failure: stretched, the credentials would be
handed out past their end.
]]
-- v as a finite number, or nil; why_not(v, what, kind) says why not (what
-- names it, kind says what it counts).  The message is made only when it is
-- needed: its strings would otherwise be constants of every request's trace.
local function finite(v)
  local n = tonumber(v)
  if n == nil or n ~= n or n == huge or n == -huge then return nil end
  return n
end

local function why_not(v, what, kind)
  local n = tonumber(v)
  if n == nil then return ("%s is not a number (a %s)"):format(what, type(v)) end
  return ("%s %s is not a finite %s"):format(what, show(n), kind)
end

local TTL_MIN = options.TTL_MIN
local function lifetime(ttl, expires, now, max, top)
  if ttl ~= nil then
    local n = finite(ttl)
    if not n then return false, why_not(ttl, "TTL", "number of seconds") end
    if n < TTL_MIN then
      return false, ("TTL %s is under the %d s floor"):format(show(n), TTL_MIN)
    end
    ttl = n > max and max or n
  end
  if expires ~= nil then
    local e = finite(expires)
    if not e then return false, why_not(expires, "expires", "Unix time") end
    local left = e - now
    if left <= 0 then return false, ("expires %s is in the past"):format(show(e)) end
    if left < TTL_MIN then
      return false, ("expires %s is %s s ahead, under the %d s floor"):format(show(e),
        show(floor(left)), TTL_MIN)
    end
    if left > top + SKEW then
      return false, ("expires %s is more than %s ahead%s"):format(show(e), days(top),
        e > 1e11 and " (in milliseconds?)" or "") -- now in milliseconds is about 1.8e12
    end
    expires = left > max and now + max or e
  end
  return true, ttl, expires
end
M.lifetime = lifetime

-- Why entries of a provider's answer were dropped, at info: each reason at
-- most once a minute per provider (normalize keeps credentials out of them,
-- link.ctx.log the provider's secrets), so a provider that keeps sending one
-- bad entry does not flood the log.  The memory of reasons is bounded.
local DROP_EVERY, DROP_KEEP = 60, 64
local function log_dropped(link, dropped, now)
  local seen = link.dropped
  if not seen or link.dropped_n >= DROP_KEEP then
    seen = {}
    link.dropped, link.dropped_n = seen, 0
  end
  for i = 1, #dropped do
    local why = dropped[i]
    local at = seen[why]
    if not at or now - at >= DROP_EVERY or now < at then
      if not at then link.dropped_n = link.dropped_n + 1 end
      seen[why] = now
      link.ctx.log("info", "dropped from the answer: " .. why)
    end
  end
end

local function no_turn(dropped)
  local n = #dropped
  if n == 0 then return "no valid TURN server in the answer" end
  return ("no valid TURN server in the answer (%d dropped: %s%s)"):format(n, dropped[1],
    n > 1 and "; ..." or "")
end

--[[
One call of a provider's get, and what the contract asks of its answer:
normalized, with a TURN entry (but from a STUN provider), its lifetime
checked.  Returns answer, ttl, expires, turn (it has credentials), one; or
nil, why, retry_after.  With one true, answer is the provider's one TURN
entry (normalize.one: canonical), to read and not to keep (a provider may
build it per call); else answer is a normalized list, the broker's own.
]]
function M.call(link, user, req, now)
  local ok, servers, ttl, expires = pcall(link.get, link.ctx, user, link.opts, req)
  if not ok then return nil, "failed: " .. tostring(servers) end
  if servers == nil then return nil, ttl or "no answer", tonumber(expires) end
  local answer = normalize.one(servers)
  local one = answer ~= nil
  if not one then
    local dropped, turn
    answer, dropped, turn = normalize.answer(servers)
    if dropped[1] then log_dropped(link, dropped, now) end
    if not turn then
      if link.kind ~= "stun" then return nil, no_turn(dropped) end
      return answer -- a STUN-only answer has no lifetime to check (it reports none)
    end
  end
  if ttl ~= nil or expires ~= nil then
    ok, ttl, expires = lifetime(ttl, expires, now, link.max_ttl, link.top_ttl)
    if not ok then return nil, ttl end
  end
  return answer, ttl, expires, true, one
end

return M
