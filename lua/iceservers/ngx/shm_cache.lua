-- luacheck: globals ngx
-- A cache backend on an nginx lua_shared_dict, so every worker shares the
-- provider answers, and so one request, across workers, refreshes them: the
-- lock is an add() in the same dict, which only one worker can win, with an
-- expiry so a crashed holder cannot block refreshes for long.
local cjson = require "cjson.safe"

local M = {}
M.__index = M

local LOCK_TTL, WAIT_STEP = 30, 0.01 -- longer than any refresh (two calls of 5 s for Metered)

-- dict_name: the lua_shared_dict; opts.lock_timeout: seconds a request waits
-- for another's refresh (default 5, like the default HTTP timeout).
function M.new(dict_name, opts)
  local dict = ngx.shared[dict_name]
  if not dict then
    error(("iceservers: no lua_shared_dict named '%s' (add `lua_shared_dict %s 1m;` to "
      .. "the http block)"):format(dict_name, dict_name), 0)
  end
  opts = opts or {}
  return setmetatable({ dict = dict, wait = opts.lock_timeout or 5, seen = {} }, M)
end

-- A worker reads the same entry on every request until it is refreshed, so
-- the last text read per key is kept with its decoded value: the same text
-- gives the same table back (as the in-process backend does) instead of being
-- decoded again, and the broker can keep what it derives from that table.
function M:get(key)
  local text = self.dict:get(key)
  if not text then return nil end
  local seen = self.seen[key]
  if seen and seen.text == text then return seen.value end
  local value = cjson.decode(text)
  self.seen[key] = value and { text = text, value = value } or nil
  return value
end

function M:set(key, value)
  if value == nil then
    self.seen[key] = nil
    self.dict:delete(key)
    return
  end
  local text = cjson.encode(value)
  local ok, err = self.dict:set(key, text)
  if ok then
    self.seen[key] = { text = text, value = value }
  else
    self.seen[key] = nil
    ngx.log(ngx.ERR, "iceservers: lua_shared_dict is full? ", err)
  end
end

-- Takes the refresh lock; with wait, sleeps (without blocking the worker) up
-- to the lock timeout for it.  The broker reads the cache again once it holds
-- the lock, so a waiter whose turn comes after a refresh uses that answer.
function M:lock(key, wait)
  local name = key .. "|lock"
  if self.dict:add(name, ngx.worker.pid(), LOCK_TTL) then return true end
  if not wait then return false end
  local deadline = ngx.now() + self.wait
  repeat
    ngx.sleep(WAIT_STEP)
    if self.dict:add(name, ngx.worker.pid(), LOCK_TTL) then return true end
  until ngx.now() >= deadline
  return false
end

function M:unlock(key)
  self.dict:delete(key .. "|lock")
end

return M
