-- luacheck: globals ngx
--[[
The probe's transport (`net`) inside nginx: cosockets, which yield to nginx's
event loop instead of blocking the worker.  The same contract as
iceservers.stun.net_socket (read its header):

  local net = require "iceservers.stun.net_ngx"  -- or .new{ resolve = pins }
  net.udp(host, port, { timeout = 5 }) -> conn | nil, err
  net.tcp(host, port, { timeout = 5, tls = true, sni = name, verify = true }) -> conn | nil, err
  conn:send(bytes), conn:receive(n), conn:settimeout(seconds), conn:close()
  net.run(tasks) -> results      one light thread (ngx.thread.spawn) per task

Errors start with their stage: "resolve: ...", "connect: ...", "tls: ...",
"timeout", "refused", "closed".

What differs from plain Lua, by nginx's design (as for the HTTP transport,
iceservers.ngx.cosocket):
- Names go through nginx's `resolver` (which ignores /etc/hosts); `resolve =
  { ["host:port"] = "address" }` pins an address, as ICESERVERS_RESOLVE.
- TLS trust is `lua_ssl_trusted_certificate` (opts.cafile is ignored), and
  nginx verifies a certificate by name only: a turns: URL with an IP address
  and no `sni` name cannot be verified, and is an error unless verify = false.
- Only where cosockets and light threads run (rewrite, access, content, timer).
]]
local M = {}


local RECEIVE_CHUNK = 65536

local function clock()
  ngx.update_time()
  return ngx.now()
end

local function ms(seconds)
  return math.max(1, math.floor(seconds * 1000))
end

local common = require "iceservers.stun.net_common"
local unbracket, is_ip, pinned = common.unbracket, common.is_ip, common.pinned

-- What to give a cosocket: a pinned address or the host, IPv6 in brackets
-- (nginx parses "host:port").
local function target(host, port, pins)
  local addr = unbracket(pinned(pins, host, port) or host)
  return addr:find(":", 1, true) and ("[" .. addr .. "]") or addr
end

-- A send or receive failure in the contract's words.
local function io_error(err)
  if err == "timeout" or err == "closed" then return err end
  if err == "connection refused" then return "refused" end
  return "closed: " .. tostring(err)
end

-- A connect failure: nginx resolves and connects in one call.
local function connect_error(err, name)
  err = tostring(err)
  if err == "timeout" then return "connect: timed out" end
  if err == "connection refused" then return "refused" end
  if err:find("resolve", 1, true) then return ("resolve: %s: %s"):format(name, err) end
  return "connect: " .. err
end

---------------------------------------------------------------------------
-- UDP

local Udp = {}
Udp.__index = Udp

Udp.settimeout = common.settimeout

function Udp:send(bytes)
  self.sock:settimeout(ms(self.timeout))
  local ok, err = self.sock:send(bytes)
  if not ok then return nil, io_error(err) end
  return true
end

function Udp:receive()
  self.sock:settimeout(ms(self.timeout))
  local data, err = self.sock:receive(RECEIVE_CHUNK)
  if not data then return nil, io_error(err) end
  return data
end

Udp.close = common.close

---------------------------------------------------------------------------
-- TCP and TLS

local Tcp = {}
Tcp.__index = Tcp
Tcp.settimeout = Udp.settimeout
Tcp.send = Udp.send
Tcp.close = Udp.close

-- Reads through receiveany with what is left of the timeout for each wait:
-- receive(n) re-arms its timer whenever a byte arrives, so a server that
-- drips bytes would outlast any timeout.
function Tcp:receive(n)
  local deadline = clock() + self.timeout
  while #self.buf < n do
    local left = deadline - clock()
    if left <= 0 then return nil, "timeout" end
    self.sock:settimeout(ms(left))
    local data, err = self.sock:receiveany(RECEIVE_CHUNK)
    if not data then return nil, io_error(err) end
    self.buf = self.buf .. data
  end
  local out = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return out
end

-- nginx's verification failures as net_socket words them.
local function tls_error(err, name)
  err = tostring(err)
  if err == "timeout" then return "tls: handshake timed out" end
  if err == "certificate host mismatch" then
    return "tls: the certificate is not for " .. name
  end
  local why = err:match("^%d+: (.+)$") -- OpenSSL's verify result: "20: unable to get ..."
  if why then return "tls: certificate verify failed (" .. why .. ")" end
  return "tls: " .. err
end

local function secure(sock, host, opts, deadline)
  local verify = opts.verify ~= false
  local name = unbracket(opts.sni or host)
  if verify and is_ip(name) then
    return nil, "tls: cannot verify a certificate for an IP address inside nginx"
      .. " (give the host name, or sni)"
  end
  sock:settimeout(ms(math.max(0, deadline - clock())))
  -- Older lua-resty-core (Debian 12 has 0.1.25; openresty/lua-resty-core
  -- issue #499) raises "assertion failed!" instead of returning nil, err
  -- when a handshake that completed at once fails certificate verification,
  -- and the reason (chain or name) is lost.  (Never pass reused_session =
  -- false there: that path returns true for such a failed handshake.)
  local done, session, err = pcall(sock.sslhandshake, sock, nil,
    not is_ip(name) and name or nil, verify)
  if not done then
    if not tostring(session):find("assertion failed", 1, true) then
      return nil, "tls: " .. tostring(session):match("^[^\n]*")
    end
    return nil, "tls: certificate verify failed (untrusted, or not for " .. name .. ")"
  end
  if not session then return nil, tls_error(err, name) end
  return true
end

---------------------------------------------------------------------------
-- the net table

-- A cosocket of kind "udp" or "tcp" connected to host:port; or nil, err.  A
-- connected UDP socket drops datagrams from other addresses, and an ICMP port
-- unreachable comes back as "connection refused".
local function open(kind, host, port, opts)
  local sock = ngx.socket[kind]()
  sock:settimeout(ms(opts.timeout))
  local connect = kind == "udp" and sock.setpeername or sock.connect
  local ok, err = connect(sock, target(host, port, opts.resolve), port)
  if not ok then
    sock:close()
    return nil, connect_error(err, unbracket(host))
  end
  return sock
end

local function udp(defaults, host, port, opts)
  opts = common.options(defaults, host, port, opts)
  local sock, err = open("udp", host, port, opts)
  if not sock then return nil, err end
  return setmetatable({ sock = sock, timeout = opts.timeout }, Udp)
end

local function tcp(defaults, host, port, opts)
  opts = common.options(defaults, host, port, opts)
  local deadline = clock() + opts.timeout
  local sock, err = open("tcp", host, port, opts)
  if not sock then return nil, err end
  if opts.tls then
    local ok
    ok, err = secure(sock, host, opts, deadline)
    if not ok then
      sock:close()
      return nil, err
    end
  end
  return setmetatable({ sock = sock, timeout = opts.timeout, buf = "" }, Tcp)
end

-- Every task in its own light thread; a task's error is raised once the
-- others are killed.
function M.run(tasks)
  common.check_tasks(tasks)
  local threads, results = {}, {}
  for i, task in ipairs(tasks) do threads[i] = ngx.thread.spawn(task) end
  for i, thread in ipairs(threads) do
    local ok, res = ngx.thread.wait(thread)
    if not ok then
      for j = i + 1, #threads do ngx.thread.kill(threads[j]) end
      error("net.run: task " .. i .. " failed: " .. tostring(res), 2)
    end
    results[i] = res
  end
  return results
end

-- M.new{resolve =, verify =, timeout =, cafile =}: a net table with those defaults.
return common.finish(M, udp, tcp)
