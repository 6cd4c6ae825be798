--[==[
Shell, file and process helpers for specs and their server harnesses
(support.nginx, support.coturn).  Only plain Lua plus io.popen/os.execute, for
Lua 5.4 and LuaJIT alike.

  commands   sh.quote(s)            a single-quoted sh word
             sh.run(cmd)            -> ok, output (stdout+stderr), exit code
             sh.run_clean(cmd)      the same without LD_PRELOAD and *SAN_OPTIONS
                                    and with stdin from /dev/null: for servers
                                    and tools a sanitizer run must not reach
  files      sh.tail(text, n)           the last n lines of text
             sh.tmpdir([name])      a new /tmp/iceservers-<name>.XXXXXX (name
                                    defaults to "spec")
             sh.rmrf(dir)           removes such a directory; refuses any other
             sh.read_file(path)     -> contents, or nil, err when it cannot be opened
             sh.write_file(path, text)
  time       sh.now()               monotonic seconds, for time bounds
             sh.sleep(seconds)
  processes  sh.alive(pid)          running (not a zombie)?
             sh.wait_gone(pid, seconds) -> true once gone, false at the deadline
             sh.terminate(pid, seconds, children)
                                    TERM, wait; then KILL (and its children too
                                    if asked) and wait 2 s more
  sockets    sh.sockets(proto)      "tcp" or "udp" (v4 and v6) from /proc/net ->
                                    used, serving, readable: port -> set of
                                    socket inodes, for all sockets and for those
                                    serving (TCP: LISTEN; UDP: any)
             sh.socket_inodes(pid)  the set of socket inodes process pid holds
             sh.connects(port)      does a TCP connection to 127.0.0.1 succeed?
             sh.free_port()         a port in 20000-39999 (below coturn relay
                                    windows) that no TCP or UDP socket uses now;
                                    never the same one twice in a process
             sh.random_int(from, to)
  state      sh.process_state(key, new, on_close)
                                    per-process state that outlives busted's
                                    per-file insulation; on_close(state) runs
                                    when the interpreter closes
]==]
local M = {}

local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS"

---------------------------------------------------------------------------
-- commands

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs cmd through /bin/sh; returns ok, combined output, exit code.
function M.run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("__exit=(%d+)%s*$"))
  return code == 0, out:gsub("__exit=%d+%s*$", ""), code
end

-- M.run with a clean environment (no LD_PRELOAD, *SAN_OPTIONS) and no stdin,
-- so a sanitizer run of the specs does not leak into the servers and tools.
function M.run_clean(cmd)
  return M.run(CLEAN_ENV .. " sh -c " .. M.quote(cmd) .. " </dev/null")
end

---------------------------------------------------------------------------
-- files

-- The last `lines` lines of text (for error messages quoting a log).
function M.tail(text, lines)
  local all = {}
  for line in (text or ""):gmatch("[^\n]*") do all[#all + 1] = line end
  return table.concat(all, "\n", math.max(1, #all - lines + 1))
end

function M.tmpdir(name)
  local ok, out = M.run_clean("mktemp -d /tmp/iceservers-" .. (name or "spec") .. ".XXXXXX")
  assert(ok, "mktemp failed: " .. out)
  return (out:gsub("%s+$", ""))
end

function M.rmrf(dir)
  assert(type(dir) == "string" and dir:match("^/tmp/iceservers%-[%w%-]+%.%w+$"),
    "refusing to remove " .. tostring(dir))
  M.run_clean("rm -rf " .. M.quote(dir))
end

-- The contents of path, or nil, io.open's message.
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

---------------------------------------------------------------------------
-- time

-- Under valgrind or ASan (scripts/test.sh sets ICESERVERS_SLOW) everything
-- takes longer: M.slow(k) is k there, else 1, the factor a timing margin
-- takes.
M.SLOW = os.getenv("ICESERVERS_SLOW") ~= nil
function M.slow(k) return M.SLOW and k or 1 end

function M.sleep(seconds)
  os.execute(("sleep %.3f"):format(seconds))
end

-- Monotonic seconds (CLOCK_BOOTTIME, 10 ms steps); `date` if /proc is absent.
function M.now()
  local f = io.open("/proc/uptime")
  if f then
    local s = f:read("*n")
    f:close()
    if s then return s end
  end
  local _, out = M.run_clean("date +%s.%N")
  return assert(tonumber(out:match("[%d%.]+")), "no clock")
end

---------------------------------------------------------------------------
-- processes

local function proc_state(pid)
  local s = M.read_file("/proc/" .. pid .. "/stat")
  if s then return s:match("^%d+ %b() (%a)") or "?" end
  return nil
end

function M.alive(pid)
  local st = proc_state(pid)
  if st then return st ~= "Z" and st ~= "X" end
  if M.read_file("/proc/self/stat") then return false end -- /proc works: the pid is gone
  return (M.run_clean("kill -0 " .. pid))
end

function M.wait_gone(pid, seconds)
  local t_end = M.now() + seconds
  while M.alive(pid) do
    if M.now() > t_end then return false end
    M.sleep(0.05)
  end
  return true
end

-- TERM, bounded by `seconds`, then KILL (for `children` too: its child
-- processes first) and 2 s more.  Nothing when pid is nil or already gone.
function M.terminate(pid, seconds, children)
  if not (pid and M.alive(pid)) then return end
  M.run_clean("kill -TERM " .. pid)
  if not M.wait_gone(pid, seconds) then
    if children then
      M.run_clean(("pkill -KILL -P %d; kill -KILL %d"):format(pid, pid))
    else
      M.run_clean("kill -KILL " .. pid)
    end
    M.wait_gone(pid, 2)
  end
end

---------------------------------------------------------------------------
-- sockets and ports

-- The sockets in /proc/net/<proto> and <proto>6: port -> { [inode] = true }
-- for all of them (used) and for those bound for serving (UDP: any; TCP:
-- LISTEN); readable is false when neither table could be read.
function M.sockets(proto)
  local used, serving, readable = {}, {}, false
  for _, name in ipairs{ "/proc/net/" .. proto, "/proc/net/" .. proto .. "6" } do
    local f = io.open(name)
    if f then
      readable = true
      for line in f:lines() do
        local port, st, inode = line:match("^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)"
          .. "%s+%x+:%x+%s+%x+:%x+%s+%x+%s+%d+%s+%d+%s+(%d+)")
        if port then
          port = tonumber(port, 16)
          used[port] = used[port] or {}
          used[port][inode] = true
          if proto == "udp" or st == "0A" then
            serving[port] = serving[port] or {}
            serving[port][inode] = true
          end
        end
      end
      f:close()
    end
  end
  return used, serving, readable
end

-- The socket inodes process `pid` holds.
function M.socket_inodes(pid)
  local _, out = M.run_clean("ls -l /proc/" .. tonumber(pid) .. "/fd 2>/dev/null")
  local set = {}
  for inode in out:gmatch("socket:%[(%d+)%]") do set[inode] = true end
  return set
end

-- Without /proc/net: does a TCP connection to the loopback port succeed?
function M.connects(port)
  return (M.run_clean("bash -c " .. M.quote(("exec 3<>/dev/tcp/127.0.0.1/%d"):format(port))))
end

function M.random_int(from, to)
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(3)
  f:close()
  return from + (b:byte(1) * 65536 + b:byte(2) * 256 + b:byte(3)) % (to - from + 1)
end

---------------------------------------------------------------------------
-- state that outlives busted's per-file insulation (which drops modules from
-- package.loaded)

local registry = debug.getregistry()

-- registry[key], made by new() on first use; on_close(state), if given, runs
-- when the interpreter closes (LuaJIT runs __gc only for userdata, newproxy
-- gives one; Lua 5.4 runs it for tables; either way it is collected then).
function M.process_state(key, new, on_close)
  local state = registry[key]
  if state then return state end
  state = new()
  if on_close then
    local function close() on_close(state) end
    local sentinel
    local newproxy = rawget(_G, "newproxy")
    if newproxy then
      sentinel = newproxy(true)
      getmetatable(sentinel).__gc = close
    else
      sentinel = setmetatable({}, { __gc = close })
    end
    registry[key .. ".on_close"] = sentinel
  end
  registry[key] = state
  return state
end

local ports = M.process_state("iceservers.spec.support.sh", function()
  return { handed_out = {} }
end)

-- A loopback port below the coturn relay windows (40000-60000) that no TCP
-- or UDP socket uses now (nothing listens: connecting is refused until someone
-- binds it).  Never the same port twice in a process.
function M.free_port()
  for _ = 1, 200 do
    local port = M.random_int(20000, 39999)
    if not ports.handed_out[port] then
      local tcp, _, readable = M.sockets("tcp")
      local udp = M.sockets("udp")
      local busy
      if readable then busy = tcp[port] or udp[port] else busy = M.connects(port) end
      if not busy then
        ports.handed_out[port] = true
        return port
      end
    end
  end
  error("support.sh: no free port found")
end

return M
