--[==[
A real Janus WebRTC server (Debian's `janus`) on a loopback port, for specs
that prove what Janus does with a TURN REST API endpoint: it asks the endpoint
while it sets up a PeerConnection and gathers through the TURN servers it got.

  local janus = require "support.janus"
  local j = janus.start{
    general = { interface = "..." }, -- more lines of janus.jcfg's general: {}
    nat = {                          -- lines of janus.jcfg's nat: {} (optional)
      turn_rest_api = "http://127.0.0.1:PORT/ice-servers",
      turn_rest_api_key = "k",
      turn_rest_api_method = "GET",  -- unset: Janus POSTs
    },
    debug_level = 5,                 -- default 5 (verbose): the TURN REST lines
  }
  j.port, j.dir, j.pid
  j:log()                            -- Janus' log (janus.log) so far
  j:url(path)                        -- "http://127.0.0.1:PORT/janus" .. path
  j:call(path, method, msg, timeout) -- one Janus API request: the decoded
                                     -- reply, or nil, err
  local answer, err = j:echotest(janus.offer(), { opaque_id = "alice" })
    -- a session, a handle on janus.plugin.echotest (opaque_id: the username
    -- Janus sends the TURN REST API), the offer as {"audio":true,"video":false}
    -- with jsep; then long polls for the event that carries the answer's jsep:
    -- the answer SDP, or nil, err (err has the events seen)
  j:stop()                           -- in teardown; bounded; removes j.dir; safe twice

  janus.offer()          -- a minimal audio offer (fresh ICE credentials and
                         -- DTLS fingerprint each call), half trickle
  janus.candidates(sdp)  -- the a=candidate lines: { {foundation=, component=,
                         -- transport=, priority=, address=, port=, type=,
                         -- raddr=, rport=, line=} ... }

Janus runs in the foreground of a background shell job (its log in its own
temp dir) with a minimal configuration: only the echotest plugin and the HTTP
transport (folders holding only those two libraries), HTTP on 127.0.0.1, no
HTTPS, no admin API, no event handlers or loggers.  `start` returns once the
HTTP port listens (deadline 15 s; another port is tried when Janus could not
bind).  Every command runs without LD_PRELOAD, *SAN_OPTIONS and proxy
variables (Janus' libcurl would honour http_proxy), so a sanitizer run of the
specs does not reach Janus and the TURN REST request stays on loopback.
Servers still running when the interpreter closes are stopped then.
ICESERVERS_KEEP_JANUS=1 keeps the temp dirs.

Janus gathers nothing on loopback, so a spec that wants a relay candidate
runs Janus, coturn and nginx in a network namespace of its own:

  local results = janus.turn_rest{       -- in a fresh network namespace
    cases = { { name = "post" }, { name = "get", method = "GET" },
              { name = "bad key", wrong_key = true } },
  }                 -- a case: name, method (turn_rest_api_method), wrong_key,
                    -- opaque_id (the username Janus sends)
  -- results.relay = { address = "127.0.0.1", min_port =, max_port = }
  -- results.host = the Janus host address (NS_ADDRESS); results[name] = {
  --   answer = SDP or nil, error = why not, janus_log =, access_log = (this
  --   case's lines), error_log = nginx's (this case's lines), turn_log = coturn's
  --   (this case's lines), key_in_access_log = bool }

It runs a child interpreter under `unshare -n` (`unshare -rn` when not root)
that brings `lo` up, makes a veth pair (NS_IFACE 198.18.0.1/30 and its peer
198.18.0.2/30, a benchmarking range nothing routes), then starts coturn on
127.0.0.1, the example nginx (examples/nginx/nginx.conf, TURN_PROVIDER=coturn,
ICESERVERS_API_KEY) and, per case, a Janus whose nat section points
turn_rest_api at it (ice_enforce_list = NS_IFACE), and sends each an offer.
Why the namespace (Debian's janus 1.1.2 and libnice 0.1.21): Janus skips
IFF_LOOPBACK interfaces when it lists host addresses, and with loopback alone
libnice has none ("Error gathering candidates"); libnice pins each host socket
to its interface (IP_UNICAST_IF), so an ALLOCATE from eth0's address to a TURN
server on 127.0.0.1 leaves by eth0 and is lost.  In the namespace it leaves by
NS_IFACE and comes back in by the peer, which accepts it with route_localnet=1
and accept_local=1.  A namespace that cannot be made raises, with the output
of the commands (needs root, or unprivileged user namespaces, and iproute2).
Every process started in it is stopped by pid afterwards, even when the child
was killed at its deadline.
]==]
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"

local M = {}

local LIB = "/usr/lib/x86_64-linux-gnu/janus"
local START_DEADLINE = 15 -- seconds until a started Janus must listen
local STOP_DEADLINE = 10  -- Janus tears sessions down on TERM before it exits
local ANSWER_DEADLINE = 60 -- the answer waits for gathering (and the REST call)
local NO_PROXY = "env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY"
  .. " -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY"

local REG_KEY = "iceservers.spec.support.janus"
local state

local quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file
local run = sh.run_clean

M.now = sh.now
M.sleep = sh.sleep

local tail = sh.tail

-- The multiarch library folder of Janus (plugins/, transports/ under it).
local function lib_dir()
  if read_file(LIB .. "/plugins/libjanus_echotest.so") then return LIB end
  local _, out = run("dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine")
  return "/usr/lib/" .. out:gsub("%s+$", "") .. "/janus"
end

---------------------------------------------------------------------------
-- configuration (Janus' libconfig-like jcfg)

local function value(v)
  if type(v) == "string" then return '"' .. v:gsub('[\\"]', "\\%0") .. '"' end
  if type(v) == "boolean" or type(v) == "number" then return tostring(v) end
  error("support.janus: bad config value " .. tostring(v), 3)
end

-- One jcfg section; keys in sorted order so the file is stable.
local function section(name, t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = { name .. ": {" }
  for _, k in ipairs(keys) do
    assert(type(k) == "string" and k:match("^[%w_]+$"), "support.janus: bad config key")
    lines[#lines + 1] = ("  %s = %s"):format(k, value(t[k]))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

-- base with the keys of extra (optional) set over it.
local function merge(base, extra)
  for k, v in pairs(extra or {}) do base[k] = v end
  return base
end

local function write_config(srv, opts)
  local dir = srv.dir
  write_file(dir .. "/janus.jcfg", table.concat({
    "# written by spec/support/janus.lua",
    section("general", merge({
      configs_folder = dir,
      plugins_folder = dir .. "/plugins",
      transports_folder = dir .. "/transports",
      events_folder = dir .. "/none",
      loggers_folder = dir .. "/none",
      debug_level = opts.debug_level or 5,
      debug_colors = false,
      session_timeout = 120,
    }, opts.general)),
    section("certificates", {}),
    section("media", {}),
    section("nat", opts.nat or {}),
    section("plugins", {}),
    section("transports", {}),
    section("events", { broadcast = false }),
  }, "\n") .. "\n")
  write_file(dir .. "/janus.transport.http.jcfg", table.concat({
    "# written by spec/support/janus.lua",
    section("general", {
      json = "compact", base_path = "/janus", http = true, port = srv.port,
      ip = "127.0.0.1", https = false,
    }),
    section("admin", { admin_http = false, admin_https = false }),
    section("cors", {}),
  }, "\n") .. "\n")
  write_file(dir .. "/janus.plugin.echotest.jcfg", "general: {\n}\n")
end

---------------------------------------------------------------------------
-- the server

local Server = {}
Server.__index = Server

function Server:__tostring()
  return ("support.janus server (http %d, dir %s)"):format(self.port, self.dir)
end

function Server:log()
  return read_file(self.dir .. "/janus.log") or ""
end

function Server:url(path)
  return ("http://127.0.0.1:%d/janus%s"):format(self.port, path or "")
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  state.running[self] = nil
  sh.terminate(self.pid, STOP_DEADLINE)
  if not os.getenv("ICESERVERS_KEEP_JANUS") then sh.rmrf(self.dir) end
end

local function listening(port, pid)
  local _, tcp = sh.sockets("tcp")
  local mine = sh.socket_inodes(pid)
  for inode in pairs(tcp[port] or {}) do
    if mine[inode] then return true end
  end
  return false
end

-- Janus exits when its only transport cannot bind (no Janus API left).
local function bind_failed(log)
  return log:find("Couldn't start webserver", 1, true) or log:find("in use", 1, true)
end

local function spawn(srv, opts)
  write_config(srv, opts)
  write_file(srv.dir .. "/janus.log", "")
  local ok, out = run(("exec %s janus -F %s -C %s/janus.jcfg -L %s/janus.log -N -o"
    .. " >%s/stdout.log 2>&1 & echo $!"):format(NO_PROXY, quote(srv.dir), quote(srv.dir),
    quote(srv.dir), quote(srv.dir)))
  srv.pid = ok and tonumber(out:match("(%d+)%s*$"))
  assert(srv.pid, "support.janus: could not start janus: " .. out)
  local deadline = M.now() + START_DEADLINE
  while M.now() < deadline and sh.alive(srv.pid) do
    if listening(srv.port, srv.pid) then return true end
    M.sleep(0.1)
  end
  return false
end

function M.start(opts)
  opts = opts or {}
  local lib = lib_dir()
  for _, f in ipairs{ "/plugins/libjanus_echotest.so", "/transports/libjanus_http.so" } do
    assert(read_file(lib .. f), "support.janus: " .. lib .. f
      .. " is missing: install Debian's janus (make deps)")
  end
  local dir = sh.tmpdir("janus")
  assert(run(("set -e; cd %s; mkdir plugins transports none;"
    .. " ln -s %s plugins/; ln -s %s transports/"):format(quote(dir),
      quote(lib .. "/plugins/libjanus_echotest.so"), quote(lib .. "/transports/libjanus_http.so"))))
  local srv = setmetatable({ dir = dir }, Server)
  local last_log
  for attempt = 1, 4 do
    srv.port = sh.free_port()
    if spawn(srv, opts) then
      state.running[srv] = true
      return srv
    end
    last_log = srv:log() .. "\n" .. (read_file(dir .. "/stdout.log") or "")
    sh.terminate(srv.pid, 2)
    if attempt == 4 or not bind_failed(last_log) then break end
  end
  srv.stopped = true
  if not os.getenv("ICESERVERS_KEEP_JANUS") then sh.rmrf(dir) end
  error(("support.janus: janus did not come up on 127.0.0.1:%d within %d s:\n%s")
    :format(srv.port, START_DEADLINE, tail(last_log, 40)), 2)
end

---------------------------------------------------------------------------
-- the Janus API over HTTP

local function transaction() return core.hex(core.random_bytes(8)) end

-- One Janus API call; returns the decoded reply or nil, err.
function Server:call(path, method, msg, timeout)
  local res, err = core.http_request{
    url = self:url(path), method = method, proxy = "", timeout = timeout or 10,
    headers = msg and { ["Content-Type"] = "application/json" } or nil,
    body = msg and cjson.encode(msg) or nil,
  }
  if not res then return nil, err end
  if res.status ~= 200 then return nil, ("HTTP %d: %s"):format(res.status, res.body) end
  local ok, doc = pcall(cjson.decode, res.body)
  if not ok or type(doc) ~= "table" then return nil, "not JSON: " .. res.body end
  return doc
end

-- A request that must succeed with {"janus": "success", "data": {"id": N}}.
local function create(self, path, msg)
  msg.transaction = transaction()
  local doc, err = self:call(path, "POST", msg)
  if not doc then return nil, err end
  if doc.janus ~= "success" or type(doc.data) ~= "table" then
    return nil, msg.janus .. " failed: " .. cjson.encode(doc)
  end
  return ("%.0f"):format(doc.data.id)
end

-- Long polls the session until an event carries a jsep (or the deadline).
local function wait_jsep(self, session, deadline)
  local seen = {}
  while M.now() < deadline do
    local doc, err = self:call("/" .. session .. "?maxev=10", "GET", nil, 40)
    if not doc then return nil, err end
    for _, ev in ipairs(doc[1] and doc or { doc }) do
      if ev.janus ~= "keepalive" then seen[#seen + 1] = cjson.encode(ev) end
      if type(ev.jsep) == "table" then return ev.jsep end
      if ev.janus == "hangup" or ev.janus == "error" then break end
    end
  end
  return nil, "no answer from Janus; events: " .. table.concat(seen, "\n")
end

function Server:echotest(offer_sdp, opts)
  opts = opts or {}
  local session, err = create(self, "", { janus = "create" })
  if not session then return nil, err end
  local handle
  handle, err = create(self, "/" .. session, { janus = "attach",
    plugin = "janus.plugin.echotest", opaque_id = opts.opaque_id })
  if not handle then return nil, err end
  local doc
  doc, err = self:call("/" .. session .. "/" .. handle, "POST", { janus = "message",
    transaction = transaction(), body = { audio = true, video = false },
    jsep = { type = "offer", sdp = offer_sdp, trickle = false } })
  if not doc then return nil, err end
  if doc.janus ~= "ack" and doc.janus ~= "success" then
    return nil, "message refused: " .. cjson.encode(doc)
  end
  local jsep
  jsep, err = wait_jsep(self, session, M.now() + ANSWER_DEADLINE)
  if not jsep then return nil, err end
  if jsep.type ~= "answer" or type(jsep.sdp) ~= "string" then
    return nil, "not an answer: " .. cjson.encode(jsep)
  end
  self:call("/" .. session, "POST", { janus = "destroy", transaction = transaction() })
  return jsep.sdp
end

---------------------------------------------------------------------------
-- SDP

local function fingerprint()
  local hex = core.hex(core.random_bytes(32)):upper()
  return (hex:gsub("(%x%x)", "%1:"):gsub(":$", ""))
end

-- A browser-like audio-only offer (opus, BUNDLE, rtcp-mux, DTLS actpass)
-- without candidates: Janus answers it once its own gathering is done.
function M.offer()
  local ufrag = core.hex(core.random_bytes(4))
  local pwd = core.hex(core.random_bytes(12))
  return table.concat({
    "v=0",
    "o=- " .. sh.random_int(1, 999999999) .. " 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic: WMS",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:" .. ufrag,
    "a=ice-pwd:" .. pwd,
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 " .. fingerprint(),
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "",
  }, "\r\n")
end

function M.candidates(sdp)
  local list = {}
  for line in sdp:gmatch("a=candidate:[^\r\n]+") do
    local f, comp, tr, prio, addr, port, typ, rest = line:match(
      "^a=candidate:(%S+) (%d+) (%S+) (%d+) (%S+) (%d+) typ (%S+)(.*)$")
    if f then
      list[#list + 1] = { foundation = f, component = tonumber(comp), transport = tr:lower(),
        priority = tonumber(prio), address = addr, port = tonumber(port), type = typ,
        raddr = rest:match("raddr (%S+)"), rport = tonumber(rest:match("rport (%d+)")),
        line = line }
    end
  end
  return list
end

---------------------------------------------------------------------------
-- the TURN REST scenario, in a network namespace of its own

M.NS_IFACE = "ice0"
M.NS_ADDRESS = "198.18.0.1"
local NS_PEER = "ice1"
local NS_DEADLINE = 240 -- seconds for the whole child run (it is killed then)
local NS_READY = "support.janus: network namespace ready"

-- Run inside the new namespace, before the child interpreter: sh -e.
local NS_SETUP = table.concat({
  "ip link set lo up",
  "ip link add %s type veth peer name %s",
  "ip addr add %s/30 dev %s",
  "ip addr add 198.18.0.2/30 dev %s",
  "ip link set %s up",
  "ip link set %s up",
  -- what leaves NS_IFACE for 127.0.0.1 (libnice's IP_UNICAST_IF) comes in by
  -- the peer: accept a loopback destination and a local source there
  "echo 1 > /proc/sys/net/ipv4/conf/%s/route_localnet",
  "echo 1 > /proc/sys/net/ipv4/conf/%s/accept_local",
  "echo " .. NS_READY,
}, "; "):format(M.NS_IFACE, NS_PEER, M.NS_ADDRESS, M.NS_IFACE, NS_PEER, M.NS_IFACE, NS_PEER,
  NS_PEER, NS_PEER)

local function token(n) return core.hex(core.random_bytes(n)) end

-- The part of `text` after the first `from` bytes.
local function since(text, from) return text:sub(from + 1) end

-- The network namespace of process pid ("net:[N]"), or "" once it is gone.
local function netns_of(pid)
  local _, out = run("readlink /proc/" .. tonumber(pid) .. "/ns/net 2>/dev/null")
  return (out:gsub("%s+$", ""))
end

-- Appends a started server's pid, namespace and temp dir to the file the
-- parent cleans leftovers up from: a pid whose namespace differs is another
-- process by then.
local function record(file, srv)
  local f = assert(io.open(file, "a"))
  f:write(srv.pid, " ", netns_of(srv.pid), " ", srv.dir, "\n")
  f:close()
end

local function stop_leftovers(file)
  for pid, ns, dir in (read_file(file) or ""):gmatch("(%d+) (%S+) (%S+)") do
    if netns_of(pid) == ns then sh.terminate(tonumber(pid), 5, true) end
    if not os.getenv("ICESERVERS_KEEP_JANUS") then sh.rmrf(dir) end
  end
end

-- One case in the child: a Janus pointed at the endpoint, one offer.
local function run_case(c, env, endpoint, turn, pids_file)
  local marks = { access = #endpoint:access_log(), error = #endpoint:error_log(),
    turn = #turn:log() }
  -- interface: the address for the SDP's o= and c= lines (without it Janus
  -- looks for a default route, which the namespace has not, and warns)
  local j = M.start{ general = { interface = M.NS_ADDRESS }, nat = {
    turn_rest_api = endpoint:url("/ice-servers"),
    turn_rest_api_key = c.wrong_key and ("wrong-" .. token(6)) or env.ICESERVERS_API_KEY,
    turn_rest_api_method = c.method,
    ice_enforce_list = M.NS_IFACE,
  } }
  record(pids_file, j)
  local ok, answer, err = pcall(j.echotest, j, M.offer(), { opaque_id = c.opaque_id })
  if not ok then answer, err = nil, answer end
  local r = { answer = answer, error = err, janus_log = j:log() }
  j:stop()
  M.sleep(0.2) -- nginx writes the access log line after the response
  r.access_log = since(endpoint:access_log(), marks.access)
  r.error_log = since(endpoint:error_log(), marks.error)
  r.turn_log = since(turn:log(), marks.turn)
  r.key_in_access_log = endpoint:access_log():find(env.ICESERVERS_API_KEY, 1, true) ~= nil
  return r
end

-- The child's work: coturn and the example nginx once, then every case.
function M.turn_rest_child(p)
  local coturn = require "support.coturn"
  local nginx = require "support.nginx"
  local secret = token(16) -- coturn's and nginx's only: never in the results
  local turn = coturn.start{ secrets = { secret } }
  record(p.pids_file, turn)
  local env = {
    TURN_PROVIDER = "coturn", TURN_SECRET = secret, STUN_URLS = "",
    TURN_URLS = ("turn:127.0.0.1:%d?transport=udp"):format(turn.port),
    ICESERVERS_API_KEY = token(12),
  }
  local results = { relay = { address = "127.0.0.1", min_port = turn.min_port,
    max_port = turn.max_port }, host = M.NS_ADDRESS }
  -- the system bundle: no test CA to make (coturn's provider calls no API)
  local endpoint = nginx.start{ template = "examples/nginx/nginx.conf", workers = 1, env = env,
    ca_file = "/etc/ssl/certs/ca-certificates.crt" }
  record(p.pids_file, endpoint)
  for _, c in ipairs(p.cases) do
    results[c.name] = run_case(c, env, endpoint, turn, p.pids_file)
  end
  endpoint:stop()
  turn:stop()
  return results
end

-- The child interpreter's entry: runs M[fn](params) and writes
-- {ok = true, value = ...} or {ok = false, err = ...} to result_file.
function M.netns_child(fn, params_file, result_file)
  local params = cjson.decode(assert(read_file(params_file)))
  local ok, res = xpcall(M[fn], debug.traceback, params)
  write_file(result_file, cjson.encode(ok and { ok = true, value = res }
    or { ok = false, err = tostring(res) }))
end

local function interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

-- Runs M[fn](params) in a child interpreter in a new network namespace and
-- returns its value; raises when the namespace cannot be made or the child
-- fails.  What the child started is stopped by pid afterwards.
local function in_netns(fn, params)
  local dir = sh.tmpdir("janus-ns")
  params.pids_file = dir .. "/pids"
  write_file(params.pids_file, "")
  write_file(dir .. "/params.json", cjson.encode(params))
  local build = os.getenv("ICESERVERS_BUILD") or ("build/" .. _VERSION:match("%d+%.%d+"))
  if rawget(_G, "jit") then build = os.getenv("ICESERVERS_BUILD") or "build/5.1" end
  local boot = ("package.path = 'lua/?.lua;lua/?/init.lua;spec/?.lua;' .. package.path; "
    .. "package.cpath = %q .. '/?.so;' .. package.cpath; "
    .. "require('support.janus').netns_child(%q, %q, %q)"):format(build, fn,
      dir .. "/params.json", dir .. "/result.json")
  local _, uid = run("id -u")
  local unshare = uid:match("^0%s*$") and "unshare -n" or "unshare -rn"
  local ok, out, code = run(("exec timeout -k 5 %d %s sh -ec %s"):format(NS_DEADLINE, unshare,
    quote(NS_SETUP .. "; exec " .. interpreter() .. " -e " .. quote(boot))))
  stop_leftovers(params.pids_file) -- the child was killed at the deadline, say
  local text = read_file(dir .. "/result.json")
  if not os.getenv("ICESERVERS_KEEP_JANUS") then sh.rmrf(dir) end
  if not out:find(NS_READY, 1, true) then
    error(("support.janus: could not make a network namespace with %s (it needs root or"
      .. " unprivileged user namespaces, and iproute2's ip): exit %s: %s"):format(unshare,
      tostring(code), out), 3)
  end
  if not text then
    error(("support.janus: the child in the network namespace died (exit %s%s): %s"):format(
      tostring(code), code == 124 and ", killed at the deadline" or "", out), 3)
  end
  local result = cjson.decode(text)
  if not result.ok then error("support.janus: in the network namespace: " .. result.err, 3) end
  if not ok then io.stderr:write("support.janus: child output: ", out, "\n") end
  return result.value
end

function M.turn_rest(opts)
  assert(type(opts) == "table" and type(opts.cases) == "table", "support.janus: turn_rest{cases =}")
  local results = in_netns("turn_rest_child", { cases = opts.cases })
  return results
end

---------------------------------------------------------------------------
-- process-wide state and the cleanup when the interpreter closes

state = sh.process_state(REG_KEY, function() return { running = {} } end, function(st)
  for srv in pairs(st.running) do pcall(Server.stop, srv) end
end)

return M
