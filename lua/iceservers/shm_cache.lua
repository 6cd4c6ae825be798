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
  return setmetatable({ dict = dict, wait = opts.lock_timeout or 5 }, M)
end

function M:get(key)
  local text = self.dict:get(key)
  return text and cjson.decode(text) or nil
end

function M:set(key, value)
  if value == nil then
    self.dict:delete(key)
    return
  end
  local ok, err = self.dict:set(key, cjson.encode(value))
  if not ok then ngx.log(ngx.ERR, "iceservers: lua_shared_dict is full? ", err) end
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
