--[[
A bounded set of recent keys, for verdicts worth keeping about values that
come back (a user id a client asks with again): two generations of at most
`max` keys each, so it never grows past 2 * max and never walks to evict.

  local seen = require("iceservers.seen").new(4096)
  seen:has(k) -> true or false;  seen:add(k)
]]
local Seen = {}
Seen.__index = Seen

local M = {}

function M.new(max)
  return setmetatable({ cur = {}, old = {}, n = 0, max = max or 4096 }, Seen)
end

function Seen:has(k) return self.cur[k] or self.old[k] or false end

function Seen:add(k)
  if self.n >= self.max then self.old, self.cur, self.n = self.cur, {}, 0 end
  if not self.cur[k] then self.cur[k], self.n = true, self.n + 1 end
end

return M
