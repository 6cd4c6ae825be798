--[==[
A real coturn (`turnserver`) on a loopback port, for specs that prove TURN REST
API credentials (username `expiry[:user]`, password base64(HMAC-SHA1(secret,
username))) against the server that checks them.

  local coturn = require "support.coturn"
  local t = coturn.start{
    secrets = { "s1", "s2" },   -- one static-auth-secret line each (required)
    realm = "iceservers.test",  -- default "iceservers.test"
    verbose = true,             -- default true: session lines in the log
    tls = true,                 -- default false: also a TLS listener (turns:)
    ips = { "127.0.0.1", "127.0.0.2" }, -- default { "127.0.0.1" }: listening
                                -- addresses (loopback), all on t.port
    port = 34567,               -- default: a free port (to start one again where
                                -- a stopped one listened)
  }
  t.port, t.dir, t.pid, t.min_port, t.max_port, t.ips
  t.tls_port, t.ca_file, t.cert_file, t.key_file  -- with tls (else nil)
  t:log()                 -- the server log (turn.log) so far
  t:accepted(username)    -- true once the log records an ALLOCATE success for it
                          -- (needs verbose, the default)
  t:rejected(username)    -- true once the log records an auth refusal of that user
  t:bad_username(username) -- true once the log records coturn refusing that
                          -- username itself (is_secure_string: "wrong username")
  t:stop()                -- in teardown; bounded; removes t.dir; safe twice

  local ok, output, info = coturn.allocate{
    port = t.port, user = USERNAME, password = PASSWORD,
    tcp = false,      -- true: TCP to the server (-t); the relay is UDP either way
    host = "127.0.0.1",
    timeout = 30,     -- seconds; the client is killed after that
  }
  -- ok: the client allocated relays, bound channels and moved traffic through
  -- them; info = { code = exit status, sent = N, received = N, seconds = S }
  local results = coturn.allocate_all{ opts1, opts2, ... }
  -- the same for each, run at once: { {ok, output, info}, ... } in order

Credentials are not made here: they come from the library under test.

tls = true gives coturn a TLS listener (`tls-listening-port`, TCP only: no
DTLS) on t.tls_port with a certificate of spec/support/nginx.lua's test CA
for its default names (localhost, mock.test, 127.0.0.1); tls = { names = {...} }
adds names to it, and tls = { cert_file =, key_file = } uses that pair
instead (t.ca_file is then nil unless tls.ca_file is given).  `start` then
also waits for the TLS port to listen.

The server runs in the foreground of a background shell job with a generated
config in its own temp dir (its own sqlite userdb, pid file and log, no TLS
unless asked, no CLI), listening on opts.ips (127.0.0.1), relaying on 127.0.0.1
from a random 1000-port window of 40000-60000.  `start` returns once the UDP and TCP
listeners are bound (deadline 10 s; the error carries the log tail).  Every
command runs without LD_PRELOAD and *SAN_OPTIONS (sh.run_clean), so a
sanitizer run of the specs does not leak into coturn.  Servers still running
when the interpreter closes are stopped then.  ICESERVERS_KEEP_COTURN=1 keeps
the temp dirs.  Also: coturn.free_port(), coturn.now(), coturn.sleep(seconds)
(from support.sh, which holds the shell, file, process and port helpers).
]==]
local sh = require "support.sh"

local M = {}

local START_DEADLINE = 10 -- seconds until a started coturn must listen
local STOP_DEADLINE = 5
local ALLOCATE_TIMEOUT = 30

-- State that must outlive busted's per-file insulation (which drops modules
-- from package.loaded): the servers still running when the interpreter closes.
-- Made at the end of this file (the cleanup needs Server).
local REG_KEY = "iceservers.spec.support.coturn"
local state

local quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file
local run = sh.run_clean

M.now = sh.now
M.sleep = sh.sleep

local tail = sh.tail

---------------------------------------------------------------------------
-- ports

local function owned(inodes, mine)
  for inode in pairs(inodes or {}) do
    if not mine or mine[inode] then return true end
  end
  return false
end

-- Is `port` bound for UDP and listening for TCP (by process `pid`, if given)?
-- With tcp_only, listening for TCP is enough (the TLS port, without DTLS).
function M.is_listening(port, pid, tcp_only)
  local _, udp = sh.sockets("udp")
  local _, tcp = sh.sockets("tcp")
  local mine = pid and sh.socket_inodes(pid)
  return (tcp_only or owned(udp[port], mine)) and owned(tcp[port], mine)
end

-- A port below the relay windows that no UDP or TCP socket uses now; never
-- the same one twice in a process.
M.free_port = sh.free_port

---------------------------------------------------------------------------
-- the server

local Server = {}
Server.__index = Server

function Server:__tostring()
  return ("support.coturn server (port %d%s, dir %s)"):format(self.port,
    self.tls_port and (", TLS " .. self.tls_port) or "", self.dir)
end

function Server:log()
  return read_file(self.dir .. "/turn.log") or ""
end

-- Did coturn refuse `username` for its credentials?  (coturn 4.6 logs
-- "check_stun_auth: Cannot find credentials of user <name>" for a wrong MAC
-- and for an expired timestamp alike.)
function Server:rejected(username)
  local needle = "<" .. username .. ">"
  for line in self:log():gmatch("[^\n]+") do
    if line:find("check_stun_auth", 1, true) and line:find(needle, 1, true) then
      return true
    end
  end
  return false
end

-- Did coturn refuse `username` itself, before any credential check?  (4.6
-- logs "check_stun_auth: wrong username: <name>", no brackets, and answers
-- 400, for a name its is_secure_string refuses.)
function Server:bad_username(username)
  local needle = "check_stun_auth: wrong username: " .. username
  for line in self:log():gmatch("[^\n]+") do
    local at = line:find(needle, 1, true)
    if at and at + #needle - 1 == #line then return true end
  end
  return false
end

-- Did coturn allocate a relay for `username`?  (verbose: "session ...: realm
-- <r> user <name>: incoming packet ALLOCATE processed, success")
function Server:accepted(username)
  local needle = "user <" .. username .. ">: incoming packet ALLOCATE processed, success"
  return self:log():find(needle, 1, true) ~= nil
end

-- TERM (coturn exits within a second), bounded, then KILL.  Removes the
-- directory unless ICESERVERS_KEEP_COTURN is set.  Safe to call twice.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  state.running[self] = nil
  sh.terminate(self.pid, STOP_DEADLINE)
  if not os.getenv("ICESERVERS_KEEP_COTURN") then sh.rmrf(self.dir) end
end

local function config(srv, opts)
  local lines = {
    "# written by spec/support/coturn.lua",
    -- TURN REST API: long-term credentials derived from the secrets below.
    -- (No lt-cred-mech: use-auth-secret alone selects the long-term mechanism.)
    "use-auth-secret",
  }
  for _, secret in ipairs(opts.secrets) do
    lines[#lines + 1] = "static-auth-secret=" .. secret
  end
  for _, ip in ipairs(srv.ips) do lines[#lines + 1] = "listening-ip=" .. ip end
  local more = {
    "realm=" .. srv.realm,
    "relay-ip=127.0.0.1",
    "listening-port=" .. srv.port,
    "min-port=" .. srv.min_port,
    "max-port=" .. srv.max_port,
    "allow-loopback-peers",     -- the relays and peers are all on 127.0.0.1
    "no-multicast-peers",
    "no-dtls",
    "no-cli",
    "no-rfc5780",
    "fingerprint",
    "userdb=" .. srv.dir .. "/turndb", -- never /var/lib/turn/turndb
    "pidfile=" .. srv.dir .. "/turn.pid",
    "log-file=" .. srv.dir .. "/turn.log",
    "simple-log",               -- exactly that file name, no rollover
    "no-stdout-log",
  }
  if srv.tls_port then
    more[#more + 1] = "tls-listening-port=" .. srv.tls_port
    more[#more + 1] = "cert=" .. srv.cert_file
    more[#more + 1] = "pkey=" .. srv.key_file
  else
    more[#more + 1] = "no-tls"
  end
  if opts.verbose ~= false then more[#more + 1] = "verbose" end
  for _, l in ipairs(more) do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

-- The certificate and key of a TLS listener (opts.tls: true or a table).
local function tls_files(srv, tls)
  if not tls then return end
  assert(tls == true or type(tls) == "table", "support.coturn: tls must be true or a table")
  if tls ~= true and tls.cert_file then
    assert(tls.key_file, "support.coturn: tls.cert_file needs tls.key_file")
    srv.cert_file, srv.key_file, srv.ca_file = tls.cert_file, tls.key_file, tls.ca_file
    return
  end
  -- required here, not at the top: specs without TLS never need openssl
  local certs = require("support.nginx").certs(tls ~= true and tls.names or nil)
  srv.cert_file, srv.key_file, srv.ca_file = certs.cert_file, certs.key_file, certs.ca_file
end

function M.start(opts)
  opts = opts or {}
  assert(type(opts.secrets) == "table" and #opts.secrets > 0,
    "support.coturn: start{secrets = {...}} needs at least one secret")
  for _, secret in ipairs(opts.secrets) do
    assert(type(secret) == "string" and secret:match("^[^%s#]+$"),
      "support.coturn: secrets must be non-empty strings without blanks or '#'")
  end
  local realm = opts.realm or "iceservers.test"
  assert(type(realm) == "string" and realm:match("^[%w%.%-]+$"), "support.coturn: bad realm")
  local ips = opts.ips or { "127.0.0.1" }
  for _, ip in ipairs(ips) do
    assert(type(ip) == "string" and (ip:match("^127%.%d+%.%d+%.%d+$") or ip == "::1"),
      "support.coturn: ips must be loopback addresses")
  end
  local dir = sh.tmpdir("coturn")
  local srv = setmetatable({ dir = dir, realm = realm, ips = ips }, Server)
  tls_files(srv, opts.tls)
  local last_log
  for attempt = 1, 4 do
    srv.port = opts.port or M.free_port()
    srv.tls_port = opts.tls and M.free_port() or nil
    srv.min_port = sh.random_int(40, 59) * 1000
    srv.max_port = srv.min_port + 999
    write_file(dir .. "/turnserver.conf", config(srv, opts))
    write_file(dir .. "/turn.log", "")
    local ok, out = run(("exec turnserver -c %s/turnserver.conf >%s/stdout.log 2>&1 & echo $!")
      :format(quote(dir), quote(dir)))
    srv.pid = ok and tonumber(out:match("(%d+)%s*$"))
    assert(srv.pid, "support.coturn: could not start turnserver: " .. out)

    local deadline = M.now() + START_DEADLINE
    local up = false
    while true do
      if M.is_listening(srv.port, srv.pid)
        and (not srv.tls_port or M.is_listening(srv.tls_port, srv.pid, true)) then
        up = true
        break
      end
      -- A taken port: coturn logs "Cannot bind ..." and keeps trying; move on.
      if not sh.alive(srv.pid) or M.now() > deadline
        or srv:log():find("Cannot bind", 1, true) then
        break
      end
      M.sleep(0.05)
    end
    if up and sh.alive(srv.pid) then
      state.running[srv] = true
      return srv
    end
    last_log = srv:log() .. "\n" .. (read_file(dir .. "/stdout.log") or "")
    if sh.alive(srv.pid) then
      run("kill -KILL " .. srv.pid)
      sh.wait_gone(srv.pid, 2)
    end
    -- Retry on another port only when a bind failed (someone took the port).
    if attempt == 4 or not last_log:find("Cannot bind", 1, true) then break end
  end
  srv.stopped = true
  if not os.getenv("ICESERVERS_KEEP_COTURN") then sh.rmrf(dir) end
  error(("support.coturn: turnserver did not come up on 127.0.0.1:%d%s within %d s:\n%s")
    :format(srv.port, srv.tls_port and (" (TLS " .. srv.tls_port .. ")") or "", START_DEADLINE,
      tail(last_log, 30)), 2)
end

---------------------------------------------------------------------------
-- the client

-- One client-to-client run of turnutils_uclient: two allocations on the
-- server (UDP relays), a channel bound between them, one 64-byte message each
-- way.  The flags:
--   -y      client-to-client: the peer is the other relay, no turnutils_peer
--   -c      no RTCP pair (two sessions instead of four)
--   -n 1    one message per session; -l 64 bytes (the minimum is ~40)
--   -m 1    one client pair
--   -t      TCP to the server instead of UDP
-- uclient waits a random 1-6 s before the first message (its own jitter), so
-- a success takes 1-6 s; a refused allocation ends at once with status 255
-- and "ERROR: Cannot complete Allocation".
local function uclient_command(opts)
  assert(type(opts) == "table" and opts.port and opts.user and opts.password,
    "support.coturn: allocate{port =, user =, password =}")
  local host = opts.host or "127.0.0.1"
  local timeout = opts.timeout or ALLOCATE_TIMEOUT
  return ("timeout -k 2 %d turnutils_uclient -y -c%s -n 1 -m 1 -l 64 -p %d"
    .. " -u %s -w %s -e %s %s"):format(timeout, opts.tcp and " -t" or "",
    tonumber(opts.port), quote(opts.user), quote(opts.password), quote(host), quote(host))
end

local function uclient_result(out, code, seconds)
  local sent, received = out:match("tot_send_msgs=(%d+), tot_recv_msgs=(%d+)%s*\n[^\n]*"
    .. "tot_send_bytes")
  local info = { code = code, sent = tonumber(sent), received = tonumber(received),
    seconds = seconds }
  local ok = code == 0
    and info.received ~= nil and info.received > 0
    and out:find("Total lost packets", 1, true) ~= nil
    and not out:find("ERROR", 1, true)
  return ok, out, info
end

function M.allocate(opts)
  local cmd = "exec " .. uclient_command(opts)
  local t0 = M.now()
  local _, out, code = run(cmd)
  return uclient_result(out, code, M.now() - t0)
end

-- allocate for each of a list of option tables, all at once (uclient's
-- jitter is sleep, so N runs take about as long as one); a list of
-- { ok, output, info } in the same order.
function M.allocate_all(list)
  local dir = sh.tmpdir("uclient")
  local script = {}
  for i, opts in ipairs(list) do
    local base = quote(("%s/%d"):format(dir, i))
    script[i] = ("( %s >%s.out 2>&1; echo $? >%s.rc ) &"):format(uclient_command(opts),
      base, base)
  end
  script[#script + 1] = "wait"
  local t0 = M.now()
  run(table.concat(script, "\n"))
  local seconds = M.now() - t0
  local results = {}
  for i = 1, #list do
    local base = ("%s/%d"):format(dir, i)
    local code = tonumber((read_file(base .. ".rc") or ""):match("%d+"))
    results[i] = { uclient_result(read_file(base .. ".out") or "", code, seconds) }
  end
  sh.rmrf(dir)
  return results
end

---------------------------------------------------------------------------
-- process-wide state and the cleanup when the interpreter closes

state = sh.process_state(REG_KEY, function() return { running = {} } end, function(st)
  for srv in pairs(st.running) do pcall(Server.stop, srv) end
end)

return M
