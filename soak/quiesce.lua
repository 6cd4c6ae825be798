-- luacheck: globals ngx
--[==[
A diagnostics location that scripts/soak.sh adds to its copy of the example
nginx.conf (loopback only):

  location = /soak/quiesce { allow 127.0.0.1; deny all;
                             content_by_lua_file ${root}/soak/quiesce.lua; }

It answers, for the worker that took the request, one line
  <pid> <traces> <heap KiB> <heap KiB without traces>
traces: LuaJIT's compiled traces; heap: the live Lua heap after a full
collection; then jit.flush() drops the compiled code and a second full
collection gives the heap without it.  The soak measures RSS before and after
this, at both ends of the run, so the RSS it checks grows with what the
workers keep (a leak), not with the JIT's cache of compiled code, which grows
for minutes under a varied load and is bounded (LuaJIT's maxtrace/maxmcode).
]==]
local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
  return math.floor(collectgarbage("count"))
end

local traces = 0
local ok, util = pcall(require, "jit.util")
if ok and jit then
  local misses = 0
  for tr = 1, 1000000 do -- traces take the lowest free numbers
    if util.traceinfo(tr) then
      traces, misses = traces + 1, 0
    else
      misses = misses + 1
      if misses > 1000 then break end
    end
  end
end

local heap = full_gc()
if jit then jit.flush() end
ngx.print(ngx.worker.pid(), " ", traces, " ", heap, " ", full_gc())
