-- luacheck: globals ngx
--[[
nginx's cached clock for the per-request code: clock.time() is ngx.time()
(the second nginx read at the start of this event-loop turn; no system
call), called through a Lua function that does not end in a tail call.

Why not ngx.time itself: lua-resty-core writes it as
`return tonumber(C.ngx_http_lua_ffi_time())`, and LuaJIT cannot end a trace
that starts at a tail call of a builtin.  When the interpreter calls it
often, LuaJIT tries to compile it from there, fails, and blacklists it; from
then on every trace that runs into it aborts, and a request that reads the
clock stays in the interpreter.
]]
local ngx_time = rawget(_G, "ngx") and ngx.time

local M = {}

function M.time()
  local t = ngx_time()
  return t
end

return M
