--[[
The cache of shared (not per-user) provider answers, and the backoff of
failing providers.  Policy lives here; storage sits behind a two-function
backend so nginx can plug in a lua_shared_dict:

  backend:get(key) -> value or nil
  backend:set(key, value)           -- value is a plain table (JSON-safe)

An entry is { list = <normalized servers>, fetched = t, expires = t,
lifetime = s }.  It is fresh until half its lifetime has passed, then refreshed
on the next get; it may be handed out (fresh or stale) until `margin` before it
expires, never later: margin = max(30 s, 10 % of the lifetime).
]]
local M = {}

M.BACKOFF_MIN, M.BACKOFF_MAX, M.RETRY_AFTER_MAX = 1, 60, 600

-- The in-process backend: a Lua table.
function M.memory()
  local store = {}
  return {
    get = function(_, key) return store[key] end,
    set = function(_, key, value) store[key] = value end,
  }
end

function M.margin(lifetime)
  return math.max(30, lifetime * 0.1)
end

function M.entry(list, now, lifetime, expires)
  expires = expires or now + lifetime
  return { list = list, fetched = now, expires = expires, lifetime = expires - now }
end

-- Can still be handed out?
function M.usable(entry, now)
  return entry ~= nil and now < entry.expires - M.margin(entry.lifetime)
end

-- Usable, and not yet due for a refresh?  (usable() written out: this runs on
-- every get of a cached answer)
local max = math.max
function M.fresh(entry, now)
  if entry == nil then return false end
  local lifetime = entry.lifetime
  return now < entry.expires - max(30, lifetime * 0.1) and now < entry.fetched + lifetime / 2
end

-- Backoff state: { failures = n, until_t = t, why = "last error" }.
function M.blocked(state, now)
  return state ~= nil and state.until_t ~= nil and now < state.until_t
end

-- The state after one more failure: 1, 2, 4 ... 60 s, or what a Retry-After
-- asked for (up to 10 minutes).
function M.failed(state, now, why, retry_after)
  local failures = (state and state.failures or 0) + 1
  local wait = math.min(M.BACKOFF_MAX, M.BACKOFF_MIN * 2 ^ (failures - 1))
  if retry_after and retry_after > 0 then wait = math.min(retry_after, M.RETRY_AFTER_MAX) end
  return { failures = failures, until_t = now + wait, why = why }
end

return M
