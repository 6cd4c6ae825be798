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
  return setmetatable({ dict = dict, wait = opts.lock_timeout or 5, seen = {}, vkeys = {} }, M)
end

-- A worker reads the same entry on every request until it is refreshed, so
-- the last value read per key is kept, decoded, with the entry's version:
-- each entry's text has a version key next to it ("<key>|v", a counter), and
-- a read asks the dict for that number only, and for the text (and decodes
-- it) only when the number moved.  The same version gives the same table back
-- (as the in-process backend does), so the broker can keep what it derives
-- from it; and a request copies no answer text out of the dict.
--
-- The text carries its version as the dict's flags, written with it in one
-- set: a reader that sees a new version before the new text keeps the text's
-- own version, and reads again next time.
function M:get(key)
  local vkey = self.vkeys[key]
  if not vkey then
    vkey = key .. "|v"
    self.vkeys[key] = vkey
  end
  local version = self.dict:get(vkey)
  local seen = self.seen[key]
  if seen and version and seen.version == version then return seen.value end
  local text, flags = self.dict:get(key)
  if not text then
    self.seen[key] = nil
    return nil
  end
  local value = cjson.decode(text)
  self.seen[key] = value and { version = flags, value = value } or nil
  return value
end

function M:set(key, value)
  local dict = self.dict
  local version = dict:incr(key .. "|v", 1, 0)
  if value == nil then
    self.seen[key] = nil
    dict:delete(key)
    return
  end
  local text = cjson.encode(value)
  local ok, err = dict:set(key, text, 0, version or 0)
  if ok and version then
    self.seen[key] = { version = version, value = value }
  else
    self.seen[key] = nil
    if not ok then ngx.log(ngx.ERR, "iceservers: lua_shared_dict is full? ", err) end
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
