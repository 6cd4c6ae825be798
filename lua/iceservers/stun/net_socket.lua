--[[
The probe's transport (`net`) for plain Lua and the CLI: UDP and TCP from
LuaSocket, TLS from LuaSec, with the certificate's host name checked by
iceservers.core (LuaSec 1.2.0 verifies the chain only: lunarmodules/luasec#161).

  local net = require "iceservers.stun.net_socket"  -- or .new{ resolve =, cafile = }
  local conn, err = net.udp(host, port, { timeout = 5 })
  local conn, err = net.tcp(host, port, { timeout = 5, tls = true, sni = name,
                                           verify = true, cafile = path })
  conn:send(bytes) -> true | nil, err
  conn:receive(n)  -> bytes | nil, err   UDP: one datagram (n ignored); TCP: n bytes
  conn:settimeout(seconds)               for the next send and receive
  conn:close()
  local results = net.run(tasks)         each task a function; its results in order

Errors are one line and start with their stage: "resolve: ...", "connect: ...",
"tls: ...", "timeout", "refused" (ICMP port unreachable on UDP, a TCP reset on
connect) or "closed" (the peer closed or reset an established connection).
The timeout of net.udp / net.tcp bounds the connection set-up (TCP connect and
the TLS handshake together); conn:settimeout bounds each send and receive.

Name lookups use the system resolver through LuaSocket and block, outside any
timeout; `resolve = { ["host:port"] = "address" }` pins names as
ICESERVERS_RESOLVE does.  UDP uses the first address; TCP tries the next
address when one fails at once (refused, unreachable), not when it times out.

TLS: the peer's chain is verified against `cafile` (ICESERVERS_CA_FILE) or,
without one, the system store (core.x509_default_paths); SNI is the host name
(or `sni`), never an IP address; then the certificate must name `sni`, or the
host (a DNS name or an IP literal).  verify = false skips both checks.

Concurrency: inside net.run every task is a coroutine, and a send, receive,
connect or handshake that would block yields to the scheduler, which waits in
one socket.select for all of them up to the nearest deadline; so N probes of
silent servers take about one timeout, not N.  Outside net.run the same calls
block (select on the one socket).
]]
local has_socket, socket = pcall(require, "socket")
if not has_socket then
  error("iceservers.stun.net_socket needs LuaSocket (Debian: lua-socket)", 0)
end
local core = require "iceservers.core"

local M = {}


local now = core.monotonic
local YIELD = {} -- what a waiting conn yields to M.run
local scheduled = setmetatable({}, { __mode = "k" }) -- coroutines M.run drives

---------------------------------------------------------------------------
-- waiting

-- Returns once sock may be ready for mode ("r" or "w") or deadline has
-- passed; the caller retries its call and looks at the clock.
local function wait(sock, mode, deadline)
  local co = coroutine.running()
  if co and scheduled[co] then
    coroutine.yield(YIELD, sock, mode, deadline)
    return
  end
  local left = deadline - now()
  if left <= 0 then return end
  if mode == "r" then
    socket.select({ sock }, nil, left)
  else
    socket.select(nil, { sock }, left)
  end
end

-- LuaSocket and LuaSec's "not yet" answers of a non-blocking call, as the
-- mode to wait for.
local PENDING = { timeout = "r", wantread = "r", wantwrite = "w" }

-- A send or receive failure in the contract's words.  (LuaSocket's UDP says
-- "refused" for its IO_CLOSED, a closed socket; ECONNREFUSED is "connection
-- refused".)
local function io_error(err)
  if err == "connection refused" then return "refused" end
  if err == "closed" or err == "refused" then return "closed" end
  return "closed: " .. tostring(err)
end

---------------------------------------------------------------------------
-- names

local common = require "iceservers.stun.net_common"
local unbracket, is_ip, pinned = common.unbracket, common.is_ip, common.pinned


-- The addresses of host: a list of { addr =, family = "inet"|"inet6" }.
local function resolve(host, port, pins)
  local name = unbracket(pinned(pins, host, port) or host)
  local list, err = socket.dns.getaddrinfo(name)
  if not list or #list == 0 then
    return nil, ("resolve: %s: %s"):format(unbracket(host), tostring(err or "no address"))
  end
  return list
end

---------------------------------------------------------------------------
-- UDP

local Udp = {}
Udp.__index = Udp

Udp.settimeout = common.settimeout

-- op(sock, arg) again until it gives a result, fails otherwise than by a
-- timeout, or the conn's timeout has passed; waiting (mode "r" or "w") between.
local function until_done(conn, mode, op, arg)
  local deadline = now() + conn.timeout
  while true do
    local res, err = op(conn.sock, arg)
    if res then return res end
    if err ~= "timeout" then return nil, io_error(err) end
    if now() >= deadline then return nil, "timeout" end
    wait(conn.sock, mode, deadline)
  end
end

function Udp:send(bytes)
  local n, err = until_done(self, "w", self.sock.send, bytes)
  if not n then return nil, err end
  return true
end

function Udp:receive()
  return until_done(self, "r", self.sock.receive)
end

Udp.close = common.close

---------------------------------------------------------------------------
-- TCP and TLS

local Tcp = {}
Tcp.__index = Tcp
Tcp.settimeout = Udp.settimeout

function Tcp:send(bytes)
  local deadline, from = now() + self.timeout, 1
  while true do
    local last, err, sent = self.sock:send(bytes, from)
    if last then return true end
    if not PENDING[err] then return nil, io_error(err) end
    from = (sent or from - 1) + 1
    if now() >= deadline then return nil, "timeout" end
    wait(self.sock, err == "wantread" and "r" or "w", deadline) -- "timeout": a full buffer
  end
end

function Tcp:receive(n)
  local deadline, got = now() + self.timeout, ""
  while true do
    local data, err, partial = self.sock:receive(n - #got)
    got = got .. (data or partial or "")
    if #got >= n then return got end
    if not PENDING[err] then return nil, io_error(err) end
    if now() >= deadline then return nil, "timeout" end
    wait(self.sock, PENDING[err], deadline)
  end
end

function Tcp:close()
  self.sock:close()
end

-- A non-blocking connect to one address: the socket, or nil, err.
local function connect_one(a, port, deadline)
  local sock, err = (a.family == "inet6" and socket.tcp6 or socket.tcp4)()
  if not sock then return nil, "connect: " .. tostring(err) end
  sock:settimeout(0)
  local ok
  ok, err = sock:connect(a.addr, port)
  while not ok and err ~= "already connected" do
    if err ~= "timeout" and err ~= "Operation already in progress" then
      sock:close()
      return nil, err == "connection refused" and "refused" or ("connect: " .. tostring(err))
    end
    if now() >= deadline then
      sock:close()
      return nil, "connect: timed out"
    end
    wait(sock, "w", deadline)
    ok, err = sock:connect(a.addr, port)
  end
  return sock
end

local function connect(list, port, deadline)
  local sock, err
  for _, a in ipairs(list) do
    sock, err = connect_one(a, port, deadline)
    if sock or err == "connect: timed out" then break end
  end
  return sock, err
end

local ssl -- LuaSec, loaded on the first TLS connection
local contexts = {} -- "verify|cafile" -> a LuaSec context

local function tls_context(verify, cafile)
  local key = tostring(verify) .. "|" .. tostring(cafile)
  if contexts[key] then return contexts[key] end
  local params = { mode = "client", protocol = "any", verify = verify and "peer" or "none",
    verifyext = verify and { "lsec_continue" } or nil,
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
  if verify and cafile then
    -- LuaSec's own message for this is "error loading CA locations ((null))"
    local f, ferr = io.open(cafile, "r")
    if not f then return nil, "cannot read the CA file: " .. tostring(ferr) end
    f:close()
    params.cafile = cafile
  elseif verify then
    local file, dir = core.x509_default_paths()
    local f = io.open(file, "r")
    if f then
      f:close()
      params.cafile = file
    end
    params.capath = dir
  end
  local ctx, err = ssl.newcontext(params)
  if not ctx then return nil, err end
  contexts[key] = ctx
  return ctx
end

-- With verify, the context has LuaSec's "lsec_continue": OpenSSL completes
-- the handshake whatever the chain, and this check decides, so the verdict can
-- say why (LuaSec alone answers "certificate verify failed" for every cause).
-- Nothing is sent on the connection before it.
local function check_chain(conn)
  local ok, errors = conn:getpeerverification()
  if ok then return true end
  local depth, why = math.huge, nil
  for d, list in pairs(type(errors) == "table" and errors or {}) do
    if type(d) == "number" and d < depth and type(list) == "table" and list[1] then
      depth, why = d, list[1]
    end
  end
  return nil, "tls: certificate verify failed" .. (why and (" (" .. why .. ")") or "")
end

local function handshake(conn, deadline)
  while true do
    local ok, err = conn:dohandshake()
    if ok then return true end
    if err ~= "wantread" and err ~= "wantwrite" and err ~= "timeout" then
      return nil, "tls: " .. tostring(err)
    end
    if now() >= deadline then return nil, "tls: handshake timed out" end
    wait(conn, err == "wantwrite" and "w" or "r", deadline)
  end
end

-- The certificate must name `name` (LuaSec checks the chain only).
local function check_name(conn, name)
  local cert = conn:getpeercertificate()
  if not cert then return nil, "tls: the server sent no certificate" end
  local match, why = core.x509_check_host(cert:pem(), name)
  if not match then return nil, "tls: " .. tostring(why) end
  return true
end

-- The TLS connection over sock, or nil, err (sock closed).
local function secure(sock, host, opts, deadline)
  if not ssl then
    local has_ssl, mod = pcall(require, "ssl")
    if not has_ssl then
      sock:close()
      return nil, "tls: LuaSec is not installed (Debian: lua-sec)"
    end
    ssl = mod
  end
  local verify = opts.verify ~= false
  local ctx, err = tls_context(verify, opts.cafile)
  local conn
  if ctx then conn, err = ssl.wrap(sock, ctx) end
  if not conn then
    sock:close()
    return nil, "tls: " .. tostring(err)
  end
  conn:settimeout(0)
  local name = unbracket(opts.sni or host)
  if not is_ip(name) then conn:sni(name) end
  local ok, herr = handshake(conn, deadline)
  if ok and verify then ok, herr = check_chain(conn) end
  if ok and verify then ok, herr = check_name(conn, name) end
  if not ok then
    conn:close()
    return nil, herr
  end
  return conn
end

---------------------------------------------------------------------------
-- the net table

local function udp(defaults, host, port, opts)
  opts = common.options(defaults, host, port, opts)
  local list, err = resolve(host, port, opts.resolve)
  if not list then return nil, err end
  for _, a in ipairs(list) do
    local sock, serr = (a.family == "inet6" and socket.udp6 or socket.udp4)()
    if not sock then return nil, "connect: " .. tostring(serr) end
    sock:settimeout(0)
    -- A connected socket: the kernel drops datagrams from any other address,
    -- and an ICMP port unreachable comes back as "connection refused".
    local ok, perr = sock:setpeername(a.addr, port)
    if ok then return setmetatable({ sock = sock, timeout = opts.timeout }, Udp) end
    sock:close()
    err = "connect: " .. tostring(perr)
  end
  return nil, err
end

local function tcp(defaults, host, port, opts)
  opts = common.options(defaults, host, port, opts)
  local deadline = now() + opts.timeout
  local list, err = resolve(host, port, opts.resolve)
  if not list then return nil, err end
  local sock
  sock, err = connect(list, port, deadline)
  if not sock then return nil, err end
  sock:setoption("tcp-nodelay", true)
  if opts.tls then
    sock, err = secure(sock, host, opts, deadline)
    if not sock then return nil, err end
  end
  return setmetatable({ sock = sock, timeout = opts.timeout }, Tcp)
end

---------------------------------------------------------------------------
-- concurrency

-- The other tasks will never be resumed: their sockets are closed now,
-- not whenever the collector gets to them.
local function abandon(waiting, why)
  for _, w in pairs(waiting) do pcall(w.sock.close, w.sock) end
  error(why, 0)
end

-- Resumes task i; records its result when it ends, or what it waits for.
local function step(co, i, results, waiting)
  local ok, a, sock, mode, deadline = coroutine.resume(co)
  if not ok then
    waiting[i] = nil
    abandon(waiting, ("net.run: task %d failed: %s"):format(i, tostring(a)))
  end
  if coroutine.status(co) == "dead" then
    results[i], waiting[i] = a, nil
  elseif a == YIELD then
    waiting[i] = { co = co, sock = sock, mode = mode, deadline = deadline }
  else
    waiting[i] = nil
    abandon(waiting, ("net.run: task %d yielded outside a net call"):format(i))
  end
end

function M.run(tasks)
  common.check_tasks(tasks)
  local results, waiting = {}, {}
  for i, task in ipairs(tasks) do
    local co = coroutine.create(task)
    scheduled[co] = true
    step(co, i, results, waiting)
  end
  while next(waiting) do
    local reads, writes, nearest = {}, {}, math.huge
    for _, w in pairs(waiting) do
      local set = w.mode == "r" and reads or writes
      set[#set + 1] = w.sock
      if w.deadline < nearest then nearest = w.deadline end
    end
    local readable, writable = socket.select(reads, writes, math.max(0, nearest - now()))
    local t, ready = now(), {}
    for i, w in pairs(waiting) do
      local set = w.mode == "r" and readable or writable
      if t >= w.deadline or (set and set[w.sock]) then ready[#ready + 1] = i end
    end
    for _, i in ipairs(ready) do step(waiting[i].co, i, results, waiting) end
  end
  return results
end

-- M.new{resolve =, verify =, timeout =, cafile =}: a net table with those defaults.
return common.finish(M, udp, tcp)
