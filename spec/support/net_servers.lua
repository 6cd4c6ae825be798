-- Loopback servers for the probe transports' specs (spec/net_socket_spec.lua,
-- spec/net_ngx_spec.lua).  M.start() -> {pid, dir, udp_echo, udp_silent,
-- tcp_echo, tcp_mute, tcp_full, dns}; stop it with sh.terminate(pid) and
-- sh.rmrf(dir).
local sh = require "support.sh"

local M = {}

-- The loopback servers, one LuaSocket process (lua5.4 whatever runs the
-- spec): arg = udp echo, udp silent,
-- tcp echo, tcp mute, tcp full, dns ports.  The echo UDP port answers "OTHER"
-- from the silent port instead; the TCP echo closes on "CLOSE" and sends
-- "SPLIT..." back in two pieces 0.2 s apart; the DNS port answers every A
-- query with 127.0.0.1, except for names under .invalid (NXDOMAIN).
local SERVER = [=[
local socket = require "socket"
local p = {}
for i = 1, 6 do p[i] = assert(tonumber(arg[i])) end
local function udp(port)
  local s = assert(socket.udp4())
  assert(s:setsockname("127.0.0.1", port))
  s:settimeout(0)
  return s
end
local function listener(port, backlog)
  local s = assert(socket.tcp4())
  s:setoption("reuseaddr", true)
  assert(s:bind("127.0.0.1", port))
  assert(s:listen(backlog))
  s:settimeout(0)
  return s
end
local echo, silent, dns = udp(p[1]), udp(p[2]), udp(p[6])
local lst, mute, full = listener(p[3], 64), listener(p[4], 64), listener(p[5], 0)
-- one connection fills the queue of `full`, never accepted: later SYNs are dropped
local filler = socket.tcp4()
filler:settimeout(2)
assert(filler:connect("127.0.0.1", p[5]))
local function dns_answer(q)
  local i, labels = 13, {}
  while i <= #q and q:byte(i) > 0 do
    labels[#labels + 1] = q:sub(i + 1, i + q:byte(i))
    i = i + q:byte(i) + 1
  end
  if #q < i + 4 then return nil end
  local name, qtype = table.concat(labels, "."):lower(), q:byte(i + 1) * 256 + q:byte(i + 2)
  local missing = name:find("%.invalid$") ~= nil
  local found = not missing and qtype == 1
  return q:sub(1, 2) .. string.char(0x81, 0x80 + (missing and 3 or 0), 0, 1, 0,
    found and 1 or 0, 0, 0, 0, 0) .. q:sub(13, i + 4)
    .. (found and "\192\12\0\1\0\1\0\0\0\60\0\4\127\0\0\1" or "")
end
local clients, muted = {}, {}
while true do
  local set = { echo, silent, lst, mute, dns }
  for c in pairs(clients) do set[#set + 1] = c end
  local ready = socket.select(set, nil, 5)
  for _, s in ipairs(ready) do
    if s == echo then
      local data, ip, port = echo:receivefrom()
      if data == "OTHER" then silent:sendto("from another port", ip, port)
      elseif data then echo:sendto(data, ip, port) end
    elseif s == silent then
      silent:receivefrom()
    elseif s == dns then
      local q, ip, port = dns:receivefrom()
      local answer = q and #q > 12 and dns_answer(q)
      if answer then dns:sendto(answer, ip, port) end
    elseif s == lst or s == mute then
      local c = s:accept()
      if c and s == lst then
        c:settimeout(0)
        clients[c] = true
      elseif c then
        muted[#muted + 1] = c -- held open, never read
      end
    else
      local data, err, partial = s:receive(65536)
      data = data or partial
      if data and data:find("^CLOSE") then
        err = "closed"
      elseif data and data:find("^SPLIT") then
        s:settimeout(1)
        s:send(data:sub(1, 3))
        socket.sleep(0.2)
        s:send(data:sub(4))
        s:settimeout(0)
      elseif data and #data > 0 then
        s:send(data)
      end
      if err == "closed" then
        s:close()
        clients[s] = nil
      end
    end
  end
end
]=]

function M.start()
  local dir = sh.tmpdir("netsrv")
  sh.write_file(dir .. "/server.lua", SERVER)
  local ports = {}
  for i = 1, 6 do ports[i] = sh.free_port() end
  local ok, out = sh.run_clean(("exec lua5.4 %s/server.lua %s >%s/log 2>&1 & echo $!")
    :format(sh.quote(dir), table.concat(ports, " "), sh.quote(dir)))
  local pid = ok and tonumber(out:match("(%d+)%s*$"))
  assert(pid, out)
  local deadline = sh.now() + 10
  while true do
    local _, udp = sh.sockets("udp")
    local _, tcp = sh.sockets("tcp")
    if udp[ports[1]] and udp[ports[2]] and tcp[ports[3]] and tcp[ports[4]] and tcp[ports[5]]
      and udp[ports[6]] then
      break
    end
    assert(sh.alive(pid) and sh.now() < deadline,
      "the spec servers did not start: " .. tostring(sh.read_file(dir .. "/log")))
    sh.sleep(0.05)
  end
  return { pid = pid, dir = dir, udp_echo = ports[1], udp_silent = ports[2],
    tcp_echo = ports[3], tcp_mute = ports[4], tcp_full = ports[5], dns = ports[6] }
end

return M
