-- luacheck: globals ngx
--[[
The metrics' counters of this worker, added to the shared dict in batches
(as nginx-lua-prometheus and Kong's lua-resty-counter do): a request adds to
a Lua table, not to the dict, whose every incr takes the zone's lock.

  counts.add(dict, key, n)   n (a number) more for key in dict, soon
  counts.flush()             adds what this worker holds now (the metrics
                             page does, before it reads)

A worker's counts reach the dict once a second (a timer, started by the
first add) and when the worker exits (the timer runs then too); so another
worker's counts show up to a second late, and none is lost at a reload.
Where no timer can be made, add writes through at once.
]]
local M = {}

local EVERY = 1 -- seconds
local batches = {} -- dict -> { key -> count not added yet }
local started = false

function M.flush()
  for dict, batch in pairs(batches) do
    for key, n in pairs(batch) do
      batch[key] = nil -- (clearing a field while traversing is allowed)
      dict:incr(key, n, 0)
    end
  end
end

local function tick() M.flush() end -- premature (exiting) or not: flush

function M.add(dict, key, n)
  if not started then
    local ok, made = pcall(ngx.timer.every, EVERY, tick)
    started = ok and made and true
    if not started then
      dict:incr(key, n, 0)
      return
    end
  end
  local batch = batches[dict]
  if not batch then
    batch = {}
    batches[dict] = batch
  end
  batch[key] = (batch[key] or 0) + n
end

return M
