--[==[
The soak test (scripts/soak.sh, `make soak`): wrk for SOAK_SECONDS against two
nginx with 2 workers each, both from examples/nginx/nginx.conf:

  coturn   TURN_PROVIDER=coturn: credentials signed locally, per request;
  chain    TURN_PROVIDER=metered,coturn: a cached REST provider (Metered,
           against soak/mock.lua over HTTPS, which fails every second call:
           500, 429, a stall past the HTTP timeout, or a body that is not
           JSON, at random), with coturn behind it in the chain.
           ICESERVERS_CACHE_TTL=60 (its floor) leaves the answer fresh for
           30 s and usable for 30 s (the cache never hands out an answer with
           less than 30 s left), so it is refreshed every 30 s; every other
           refresh fails, and while Metered is backed off coturn serves.  A
           run needs SOAK_WARMUP + SOAK_SECONDS of at least 35 s to see one.

After a warm-up (SOAK_WARMUP seconds of the same load) the workers' RSS and
every process's descriptors are measured while idle, then again after the soak.
RSS is read as it is, and again after each worker ran a full GC and dropped
LuaJIT's compiled code (soak/quiesce.lua, a location added to the soak's copy
of the example); the second is the one checked.  Under this varied load the
JIT keeps compiling new traces for a minute or two (about 100 per worker after
10 s, 200 after 30 s, 300 after 5 minutes on the chain endpoint), which grows
RSS by 5 to 9 % in a 60 s run after a 10 s warm-up while the live Lua heap
without the traces does not grow; hence the 30 s warm-up and the flush.  The
report shows both RSS figures, the traces and the live heap with and without
them.
Checks, each counted in the last line "N successes / N failures / N errors"
(busted's form, for scripts/test.sh):
  - every answer a 2xx, no socket error, and every answer holds a TURN
    credential (none degraded to STUN only);
  - the mock's failures did happen, and Metered and coturn both served the chain;
  - no nginx worker was replaced (crashed);
  - no growth in open descriptors of any nginx process (the keep-alive
    connections to the mock are counted apart: there are at most 16 per worker,
    the cosocket pool size);
  - no [error] (or worse) line in the endpoints' error logs but the expected
    provider failures: "lua tcp socket read timed out", which lua-nginx-module
    logs at error level when a provider call times out, at most one per stall
    the mock served (HTTP errors, 429s and bad bodies log nothing above info;
    a refresh that fails while a cached answer is still usable would log one
    warning);
  - none of the configured secrets (TURN secrets, API key; whole, their random
    part, their base64) in the endpoints' error and access logs, which are
    written at info level here (the template's warn level is raised) so the
    provider-call lines are checked too;
  - worker RSS growth under SOAK_RSS_LIMIT % (5) when SOAK_RSS=check (the
    default); SOAK_RSS=report only prints it.

Environment: SOAK_SECONDS (60), SOAK_WARMUP (30), SOAK_CONNECTIONS (16 per
endpoint), SOAK_RSS (check|report), SOAK_RSS_LIMIT (5), SOAK_OUT (build/soak:
the report, the error logs and wrk's output of the last run), SOAK_PIDFILE
(scripts/soak.sh's: every process started is listed there, for its trap).
Run with lua5.4 or luajit from the checkout's root.
]==]
local root = (arg and arg[0] or ""):match("^(.*)/soak/soak%.lua$") or "."
package.path = root .. "/spec/?.lua;" .. package.path
local sh = require "support.sh"
local nginx = require "support.nginx"

local quote, run, read_file, write_file = sh.quote, sh.run_clean, sh.read_file, sh.write_file

local function num_env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  local n = tonumber(v)
  if not n or n <= 0 then error(name .. " must be a positive number", 0) end
  return n
end

local SECONDS = math.floor(num_env("SOAK_SECONDS", 60))
local WARMUP = math.floor(num_env("SOAK_WARMUP", 30))
local CONNS = math.floor(num_env("SOAK_CONNECTIONS", 16))
local RSS_LIMIT = num_env("SOAK_RSS_LIMIT", 5)
local RSS_MODE = os.getenv("SOAK_RSS") or "check"
if RSS_MODE ~= "check" and RSS_MODE ~= "report" then
  error("SOAK_RSS must be check or report", 0)
end
local OUT = os.getenv("SOAK_OUT") or (root .. "/build/soak")
local PIDFILE = os.getenv("SOAK_PIDFILE")
local POOL_SIZE = 16 -- keep-alive connections per pool (iceservers.ngx.cosocket)
local TEMPLATE = root .. "/examples/nginx/nginx.conf"
local WRK_SCRIPT = root .. "/soak/wrk.lua"

-- sh.sleep, but a Ctrl-C ends the run: system() ignores SIGINT in this
-- process while the sleep runs, so the sleep's death by a signal is the sign.
local function sleep(seconds)
  local ok, how, code = os.execute(("sleep %.3f"):format(seconds))
  if how == "signal" or (type(ok) == "number" and ok % 256 ~= 0) then
    error(("interrupted (signal %s)"):format(tostring(code or ok % 128)), 0)
  end
end

---------------------------------------------------------------------------
-- output: everything said goes to the terminal and to OUT/report.txt

local report = {}
local function say(fmt, ...)
  local line = select("#", ...) > 0 and fmt:format(...) or fmt
  print(line)
  report[#report + 1] = line
  io.stdout:flush()
end

local passed, failed = 0, 0
local function check(ok, what, detail)
  if ok then passed = passed + 1 else failed = failed + 1 end
  say("%s %s%s", ok and "ok  " or "FAIL", what, detail and detail ~= "" and (": " .. detail) or "")
  return ok
end

local function remember_pid(kind, pid)
  if PIDFILE and pid then
    local f = io.open(PIDFILE, "a")
    if f then
      f:write(kind, " ", pid, "\n")
      f:close()
    end
  end
end

---------------------------------------------------------------------------
-- secrets: distinctive, fresh each run

local function random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(n)
  f:close()
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 1, 4 do
      local v = math.floor(n / 64 ^ (4 - k)) % 64
      q[k] = B64:sub(v + 1, v + 1)
    end
    if not b then q[3], q[4] = "=", "=" elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local SECRETS = {
  { name = "TURN_SECRET (coturn endpoint)", tail = random_hex(12) },
  { name = "TURN_SECRET (chain endpoint)", tail = random_hex(12) },
  { name = "TURN_API_KEY (Metered)", tail = random_hex(12) },
  { name = "ICESERVERS_JWT_KEY (guarded endpoint)", tail = random_hex(16) },
}
SECRETS[1].value = "SoakCoturnSecret-" .. SECRETS[1].tail
SECRETS[2].value = "SoakChainSecret-" .. SECRETS[2].tail
SECRETS[3].value = "SoakMeteredApiKey-" .. SECRETS[3].tail
SECRETS[4].value = "SoakJwtKey-" .. SECRETS[4].tail

-- An HS256 JWT of the application's for the guarded endpoint (openssl's HMAC:
-- the soak runs without the core).
local function b64url(str)
  return (b64(str):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end
local function hs256(key, sub, seconds)
  local input = b64url('{"alg":"HS256","typ":"JWT"}') .. "."
    .. b64url(('{"sub":"%s","exp":%d}'):format(sub, os.time() + seconds))
  local tmp = os.tmpname()
  write_file(tmp, input)
  local ok, mac = run(("openssl dgst -sha256 -binary -hmac %s %s | od -An -v -tx1")
    :format(quote(key), quote(tmp)))
  os.remove(tmp)
  assert(ok, "openssl dgst failed: " .. tostring(mac))
  local bytes = mac:gsub("%s+", ""):gsub("%x%x", function(h)
    return string.char(tonumber(h, 16))
  end)
  return input .. "." .. b64url(bytes)
end

---------------------------------------------------------------------------
-- HTTP/1.0 over bash's /dev/tcp: enough for a few requests of our own

local function fetch(port, path, token)
  local auth = token and ("Authorization: Bearer " .. token .. "\\r\\n") or ""
  local ok, out = run("bash -c " .. quote(("exec 3<>/dev/tcp/127.0.0.1/%d && printf "
    .. "'GET %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n%s\\r\\n' >&3 && timeout 10 cat <&3")
    :format(port, path, auth)))
  if not ok then return nil, out end
  local status = tonumber(out:match("^HTTP/%d%.%d (%d%d%d)"))
  local body = out:match("\r\n\r\n(.*)$") or ""
  return status, body
end

---------------------------------------------------------------------------
-- processes: workers, RSS, descriptors

local function ppid_of(pid)
  local s = read_file("/proc/" .. pid .. "/stat")
  return s and tonumber(s:match("^%d+ %b() %a (%d+)"))
end

local function children(pid)
  local out = {}
  local s = read_file(("/proc/%d/task/%d/children"):format(pid, pid))
  if s then
    for c in s:gmatch("%d+") do out[#out + 1] = tonumber(c) end
  else
    local _, ls = run("ls /proc")
    for c in ls:gmatch("%d+") do
      if ppid_of(c) == pid then out[#out + 1] = tonumber(c) end
    end
  end
  table.sort(out)
  return out
end

local function rss_kb(pid)
  local s = read_file("/proc/" .. pid .. "/status")
  return s and tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- inode -> remote port, for the TCP sockets in /proc/net/tcp{,6}
local function tcp_remote_ports()
  local out = {}
  for _, name in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local s = read_file(name) or ""
    for line in s:gmatch("[^\n]+") do
      local rport, inode = line:match("^%s*%d+:%s+%x+:%x+%s+%x+:(%x+)%s+%x+%s+%x+:%x+%s+%x+:%x+"
        .. "%s+%x+%s+%d+%s+%d+%s+(%d+)")
      if rport then out[inode] = tonumber(rport, 16) end
    end
  end
  return out
end

-- {total =, upstream =} open descriptors of pid; upstream: sockets to the mock
local function fds(pid, mock_ports)
  local _, out = run("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  local remote = tcp_remote_ports()
  local total, upstream = 0, 0
  for target in out:gmatch("%->%s*([^\n]+)") do
    total = total + 1
    local inode = target:match("^socket:%[(%d+)%]")
    if inode and mock_ports[remote[inode] or -1] then upstream = upstream + 1 end
  end
  return { total = total, upstream = upstream }
end

-- Established TCP connections to port (clients of an endpoint), to wait for
-- wrk's connections to be gone before measuring.
local function connections_to(port)
  local n = 0
  for _, name in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local s = read_file(name) or ""
    for line in s:gmatch("[^\n]+") do
      local lport, st = line:match("^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)")
      if lport and tonumber(lport, 16) == port and st == "01" then n = n + 1 end
    end
  end
  return n
end

-- The master, then the workers.
local function procs(m)
  local out = { m.master }
  for _, pid in ipairs(m.workers) do out[#out + 1] = pid end
  return out
end

-- Added to the soak's copy of the example (soak/quiesce.lua): a full GC
-- and a JIT flush in the worker that takes the request.
local QUIESCE = "location = /soak/quiesce { allow 127.0.0.1; deny all; "
  .. "content_by_lua_file ${root}/soak/quiesce.lua; }"

-- pid -> {traces =, heap =, heap_nojit =} for each worker: asked until every
-- worker answered (which worker accepts a connection is nginx's choice).
local function quiesce(ep, workers)
  local out, missing = {}, #workers
  for _ = 1, 300 do
    local status, body = fetch(ep.srv.port, "/soak/quiesce")
    local pid, traces, heap, nojit = tostring(body):match("^(%d+) (%d+) (%d+) (%d+)$")
    pid = tonumber(pid)
    if status == 200 and pid and not out[pid] then
      out[pid] = { traces = tonumber(traces), heap = tonumber(heap), heap_nojit = tonumber(nojit) }
      missing = missing - 1
      if missing == 0 then break end
    end
  end
  return out
end

-- One measurement of an endpoint, idle: every process's RSS as it is
-- (rss_raw), then, after quiesce, RSS (rss) and descriptors.
local function measure(ep, mock_ports)
  local m = { master = ep.srv.pid, workers = children(ep.srv.pid), rss_raw = {}, rss = {},
    fds = {} }
  for _, pid in ipairs(procs(m)) do m.rss_raw[pid] = rss_kb(pid) end
  m.lua = quiesce(ep, m.workers)
  sleep(0.2)
  for _, pid in ipairs(procs(m)) do
    m.rss[pid] = rss_kb(pid)
    m.fds[pid] = fds(pid, mock_ports)
  end
  return m
end

---------------------------------------------------------------------------
-- wrk

local wrk_running = {} -- pid -> true, for the cleanup after an error

local function start_wrk(ep, seconds, tag)
  local out = ("%s/wrk-%s-%s.txt"):format(OUT, ep.name, tag)
  -- (the guarded endpoint's token, for every request of soak/wrk.lua)
  local env = ep.token and ("SOAK_TOKEN=" .. quote(ep.token) .. " ") or ""
  local cmd = env
    .. ("wrk -t1 -c%d -d%ds --timeout 10s --latency -s %s %s >%s 2>&1 </dev/null & echo $!")
    :format(CONNS, seconds, quote(WRK_SCRIPT), quote(ep.srv:url("/ice-servers")), quote(out))
  local ok, pid = run(cmd)
  pid = ok and tonumber(pid:match("%d+"))
  assert(pid, "could not start wrk: " .. tostring(pid))
  remember_pid("wrk", pid)
  wrk_running[pid] = true
  return { pid = pid, out = out, ep = ep }
end

local function parse_wrk(text)
  local r = { text = text }
  r.requests = tonumber(text:match("(%d+) requests in"))
  r.rps = tonumber(text:match("Requests/sec:%s*([%d%.]+)"))
  r.non2xx = tonumber(text:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
  local c, rd, w, t = text:match(
    "Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
  r.socket_errors = c and (tonumber(c) + tonumber(rd) + tonumber(w) + tonumber(t)) or 0
  r.socket_text = c and ("connect %s, read %s, write %s, timeout %s"):format(c, rd, w, t) or "none"
  r.lat_avg, r.lat_max = text:match("Latency%s+(%S+)%s+%S+%s+(%S+)")
  r.p99 = text:match("\n%s*99%%%s+(%S+)")
  local line = text:match("soak%-wrk: ([^\n]*)")
  r.counts = {}
  for k, v in (line or ""):gmatch("(%w+)=(%d+)") do r.counts[k] = tonumber(v) end
  r.has_counts = line ~= nil
  return r
end

-- Runs wrk on every endpoint at once for `seconds`; sample() is called about
-- once a second meanwhile.  Returns endpoint name -> parsed result.
local function load(endpoints, seconds, tag, sample)
  local jobs = {}
  for _, ep in ipairs(endpoints) do jobs[#jobs + 1] = start_wrk(ep, seconds, tag) end
  local deadline = sh.now() + seconds + 30
  local t0 = sh.now()
  while true do
    local busy = false
    for _, j in ipairs(jobs) do
      if sh.alive(j.pid) then busy = true end
    end
    if not busy then break end
    if sh.now() > deadline then
      for _, j in ipairs(jobs) do sh.terminate(j.pid, 2) end
      error(("wrk did not finish within %d s"):format(seconds + 30), 0)
    end
    if sample then sample(sh.now() - t0) end
    sleep(1)
  end
  local results = {}
  for _, j in ipairs(jobs) do
    wrk_running[j.pid] = nil
    results[j.ep.name] = parse_wrk(read_file(j.out) or "")
  end
  return results
end

-- Waits (up to 10 s) for the clients' connections to be closed.
local function wait_idle(endpoints)
  local deadline = sh.now() + 10
  repeat
    local open = 0
    for _, ep in ipairs(endpoints) do open = open + connections_to(ep.srv.port) end
    if open == 0 then break end
    sleep(0.2)
  until sh.now() > deadline
  sleep(0.5)
end

---------------------------------------------------------------------------
-- logs

local BAD_LEVEL = { error = true, crit = true, alert = true, emerg = true }
local EXPECTED_ERROR = "lua tcp socket read timed out"

-- [level] counts, and the unexpected lines at error level or worse.
local function scan_log(text)
  local levels, expected, unexpected, warns = {}, 0, {}, {}
  for line in text:gmatch("[^\n]+") do
    local level = line:match("^%d+/%d+/%d+ %d+:%d+:%d+ %[(%a+)%]")
    if level then
      levels[level] = (levels[level] or 0) + 1
      if BAD_LEVEL[level] then
        if level == "error" and line:find(EXPECTED_ERROR, 1, true) then
          expected = expected + 1
        else
          unexpected[#unexpected + 1] = line
        end
      elseif level == "warn" then
        local msg = line:match("^%S+ %S+ %[%a+%] %d+#%d+: (.*)$") or line
        msg = msg:gsub("^%*%d+ ", ""):gsub(", client: .*$", "")
        warns[msg] = (warns[msg] or 0) + 1
      end
    end
  end
  return { levels = levels, expected = expected, unexpected = unexpected, warns = warns }
end

-- The secrets' forms to look for: whole, random part, base64 (with and
-- without padding).
local function needles()
  local out = {}
  for _, s in ipairs(SECRETS) do
    out[#out + 1] = { s.name .. " (as is)", s.value }
    out[#out + 1] = { s.name .. " (its random part)", s.tail }
    local enc = b64(s.value)
    out[#out + 1] = { s.name .. " (base64)", (enc:gsub("=+$", "")) }
  end
  return out
end

---------------------------------------------------------------------------
-- the run

local servers = {}

local function stop_all()
  for pid in pairs(wrk_running) do pcall(sh.terminate, pid, 2) end
  for i = #servers, 1, -1 do pcall(servers[i].stop, servers[i]) end
  servers = {}
end

local function copy(from, to)
  run(("cp %s %s 2>/dev/null"):format(quote(from), quote(to)))
end

local function kb(n) return n and ("%.1f MiB"):format(n / 1024) or "?" end

local function main()
  assert(run("mkdir -p " .. quote(OUT)))
  run("rm -f " .. quote(OUT) .. "/*.txt " .. quote(OUT) .. "/*.log")
  assert(run("command -v wrk"), "wrk is not installed (it is in scripts/deps.sh: make deps)")
  assert(read_file(root .. "/build/5.1/iceservers/core.so"),
    "build/5.1/iceservers/core.so is missing (make LUA_VERSION=5.1)")

  -- The example, with its error log at info so provider-call lines are
  -- checked for secrets too.
  local tpl_text = assert(read_file(TEMPLATE))
  local raised, hits = tpl_text:gsub("(error_log %${prefix}/error%.log) warn;", "%1 info;")
  assert(hits == 1, "examples/nginx/nginx.conf: no 'error_log ${prefix}/error.log warn;' line")
  raised, hits = raised:gsub("\n([ \t]*)location = /ice%-servers {", "\n%1" .. QUIESCE
    .. "\n%1location = /ice-servers {")
  assert(hits == 1, "examples/nginx/nginx.conf: no 'location = /ice-servers {' line")
  local tpl = OUT .. "/nginx.conf.template"
  write_file(tpl, raised)

  say("soak: %d s of wrk (-t1 -c%d per endpoint) after a %d s warm-up; RSS %s", SECONDS, CONNS,
    WARMUP, RSS_MODE == "check" and ("checked (growth < " .. RSS_LIMIT .. " %)") or "reported")

  local mock = nginx.start{
    workers = 1,
    main = "env SOAK_API_KEY; env SOAK_MOCK_STALL; env SOAK_MOCK_BLOCK; env SOAK_MOCK_FAIL_LAST;",
    http = [[
      lua_shared_dict soak_mock 1m;
      keepalive_requests 1000000;
      keepalive_timeout 300s;
      init_worker_by_lua_block { math.randomseed(ngx.now() * 1000 + ngx.worker.pid()) }
    ]],
    server = [[ location / { access_log off; content_by_lua_file ${root}/soak/mock.lua; } ]],
    env = { SOAK_API_KEY = SECRETS[3].value, SOAK_MOCK_STALL = "1.5", SOAK_MOCK_BLOCK = "2",
      SOAK_MOCK_FAIL_LAST = "1" },
  }
  servers[#servers + 1] = mock
  remember_pid("nginx", mock.pid)
  local mock_ports = { [mock.port] = true, [mock.tls_port] = true }

  local TURN_URLS = "turn:turn.soak.test:3478?transport=udp,turn:turn.soak.test:3478?transport=tcp,"
    .. "turns:turn.soak.test:5349?transport=tcp"
  local endpoints = {
    { name = "coturn", env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = SECRETS[1].value, TURN_URLS = TURN_URLS,
      TURN_TTL = "1h",
    } },
    { name = "chain", env = {
      TURN_PROVIDER = "metered,coturn",
      TURN_API_URL = ("https://mock.test:%d"):format(mock.tls_port),
      TURN_API_KEY = SECRETS[3].value,
      ICESERVERS_RESOLVE = ("mock.test:%d:127.0.0.1"):format(mock.tls_port),
      ICESERVERS_CACHE_TTL = "60", ICESERVERS_HTTP_TIMEOUT = "0.5",
      ICESERVERS_CONNECT_TIMEOUT = "0.5",
      TURN_SECRET = SECRETS[2].value, TURN_URLS = TURN_URLS, TURN_TTL = "1h",
    } },
    -- the application's JWT and both limits on, the limits above what one wrk sends
    { name = "guarded", token = hs256(SECRETS[4].value, "soak-user", 86400), env = {
      TURN_PROVIDER = "coturn", TURN_SECRET = SECRETS[1].value, TURN_URLS = TURN_URLS,
      TURN_TTL = "1h", ICESERVERS_JWT_KEY = SECRETS[4].value, ICESERVERS_JWT_ALGS = "HS256",
      ICESERVERS_LIMIT_PER_IP = "100000000/minute", ICESERVERS_LIMIT_PER_USER = "100000000/minute",
    } },
  }
  for _, ep in ipairs(endpoints) do
    ep.srv = nginx.start{ template = tpl, workers = 2, env = ep.env, ca_file = mock.ca_file }
    servers[#servers + 1] = ep.srv
    remember_pid("nginx", ep.srv.pid)
    say("soak: %s endpoint %s (TURN_PROVIDER=%s), nginx %d", ep.name,
      ep.srv:url("/ice-servers"), ep.env.TURN_PROVIDER, ep.srv.pid)
  end
  say("soak: mock Metered API https://mock.test:%d (127.0.0.1), nginx %d", mock.tls_port, mock.pid)

  -- Warm: an answer with TURN from each; Metered's answer in the chain's cache.
  for _, ep in ipairs(endpoints) do
    local want = ep.name == "chain" and "metered.ca" or "turn.soak.test"
    local deadline, status, body = sh.now() + 10
    repeat
      status, body = fetch(ep.srv.port, "/ice-servers", ep.token)
      if status == 200 and body:find(want, 1, true) then break end
      sleep(0.2)
    until sh.now() > deadline
    assert(status == 200 and body:find(want, 1, true),
      ("the %s endpoint did not answer with %s: %s %s"):format(ep.name, want, tostring(status),
        tostring(body)))
  end

  say("soak: warm-up, %d s", WARMUP)
  local warm = load(endpoints, WARMUP, "warmup")
  wait_idle(endpoints)
  local before = {}
  for _, ep in ipairs(endpoints) do before[ep.name] = measure(ep, mock_ports) end

  say("soak: load, %d s", SECONDS)
  local peak, trace = {}, {}
  local next_trace = 0
  local results = load(endpoints, SECONDS, "soak", function(t)
    local line = {}
    for _, ep in ipairs(endpoints) do
      for _, pid in ipairs(before[ep.name].workers) do
        local r = rss_kb(pid)
        if r and (not peak[pid] or r > peak[pid]) then peak[pid] = r end
        line[#line + 1] = r and ("%.1f"):format(r / 1024) or "-"
      end
    end
    if t >= next_trace then
      trace[#trace + 1] = ("  t=%3ds  worker RSS (MiB): %s"):format(math.floor(t),
        table.concat(line, " "))
      next_trace = next_trace + math.max(5, math.floor(SECONDS / 6))
    end
  end)
  wait_idle(endpoints)
  local after = {}
  for _, ep in ipairs(endpoints) do after[ep.name] = measure(ep, mock_ports) end
  local _, stats = fetch(mock.port, "/stats")
  local ms = {}
  for k, v in tostring(stats):gmatch('"(%w+)":(%d+)') do ms[k] = tonumber(v) end
  local metrics = {}
  for _, ep in ipairs(endpoints) do
    local _, body = fetch(ep.srv.port, "/ice-servers/metrics")
    metrics[ep.name] = body
  end

  -------------------------------------------------------------------------
  say("")
  say("== load (the %d s after the warm-up)", SECONDS)
  for _, ep in ipairs(endpoints) do
    local r, c = results[ep.name], results[ep.name].counts
    say("%s: %s requests, %s req/s; latency avg %s, p99 %s, max %s; non-2xx %d; socket errors %s",
      ep.name, tostring(r.requests), tostring(r.rps), tostring(r.lat_avg), tostring(r.p99),
      tostring(r.lat_max), r.non2xx, r.socket_text)
    say("%s: answers from metered %d, coturn %d, other %d; degraded %d, without TURN %d",
      ep.name, c.metered or 0, c.coturn or 0, c.other or 0, c.degraded or 0, c.noturn or 0)
    say("%s: metrics %s", ep.name, tostring(metrics[ep.name]))
  end
  say("mock: %d calls: %d ok, %d failed (500: %d, 429: %d, stall: %d, garbage: %d); "
    .. "401: %d, 404: %d",
    ms.calls or 0, ms.ok or 0, (ms["500"] or 0) + (ms["429"] or 0) + (ms.timeout or 0)
      + (ms.garbage or 0), ms["500"] or 0, ms["429"] or 0, ms.timeout or 0, ms.garbage or 0,
    ms["401"] or 0, ms["404"] or 0)

  say("")
  say("== checks")
  for _, ep in ipairs(endpoints) do
    local r, w = results[ep.name], warm[ep.name]
    check(r.has_counts and r.requests and r.requests > 0 and r.counts.responses > 0,
      ep.name .. ": wrk ran and counted the answers", r.has_counts and "" or r.text)
    check(r.non2xx == 0 and w.non2xx == 0,
      ep.name .. ": 0 non-2xx responses", ("%d (warm-up %d)"):format(r.non2xx, w.non2xx))
    check(r.socket_errors == 0 and w.socket_errors == 0, ep.name .. ": 0 socket errors",
      r.socket_text)
    local c = r.counts
    check((c.degraded or 0) == 0 and (c.noturn or 0) == 0 and (c.other or 0) == 0,
      ep.name .. ": every answer holds TURN credentials (none degraded)",
      ("degraded %d, without TURN %d, unknown %d"):format(c.degraded or 0, c.noturn or 0,
        c.other or 0))
  end
  local chain = results.chain.counts
  local mock_failed = (ms["500"] or 0) + (ms["429"] or 0) + (ms.timeout or 0) + (ms.garbage or 0)
  check(mock_failed > 0 and (ms.ok or 0) > 0 and (ms["401"] or 0) == 0 and (ms["404"] or 0) == 0,
    "the mock provider was called, and failed some calls",
    ("%d ok, %d failed, %d 401, %d 404"):format(ms.ok or 0, mock_failed, ms["401"] or 0,
      ms["404"] or 0))
  check((chain.metered or 0) > 0 and (chain.coturn or 0) > 0,
    "chain: Metered served, and coturn while Metered failed",
    ("metered %d, coturn %d"):format(chain.metered or 0, chain.coturn or 0))

  -- workers: same ones, descriptors, RSS
  say("")
  say("== processes (idle, after the warm-up -> after the soak; RSS after a full GC and")
  say("   a JIT flush in each worker, and as it was before them)")
  local rss_ok, rss_worst = true, -math.huge
  for _, ep in ipairs(endpoints) do
    local b, a = before[ep.name], after[ep.name]
    check(table.concat(b.workers, ",") == table.concat(a.workers, ",") and #b.workers == 2,
      ep.name .. ": the same 2 workers throughout (none crashed)",
      table.concat(b.workers, ",") .. " -> " .. table.concat(a.workers, ","))
    local fd_ok, fd_lines = true, {}
    for _, pid in ipairs(procs(b)) do
      local fb, fa = b.fds[pid], a.fds[pid] or { total = -1, upstream = 0 }
      local role = pid == b.master and "master" or "worker"
      local rb, ra = b.rss[pid], a.rss[pid]
      local growth = rb and ra and (ra - rb) / rb * 100
      say("%s %s %d: RSS %s -> %s (%+.2f %%); fds %d -> %d (to the mock %d -> %d)",
        ep.name, role, pid, kb(rb), kb(ra), growth or 0 / 0, fb.total, fa.total, fb.upstream,
        fa.upstream)
      if role == "worker" then
        local none = setmetatable({}, { __index = function() return "?" end })
        local lb, la = b.lua[pid] or none, a.lua[pid] or none
        say("    as it was: RSS %s -> %s (peak under load %s); JIT traces %s -> %s; "
          .. "live Lua heap %s -> %s KiB (without the traces %s -> %s KiB)",
          kb(b.rss_raw[pid]), kb(a.rss_raw[pid]), kb(peak[pid]), tostring(lb.traces),
          tostring(la.traces), tostring(lb.heap), tostring(la.heap), tostring(lb.heap_nojit),
          tostring(la.heap_nojit))
      end
      if fa.total - fa.upstream > fb.total - fb.upstream or fa.upstream > POOL_SIZE then
        fd_ok = false
      end
      fd_lines[#fd_lines + 1] = ("%d->%d"):format(fb.total, fa.total)
      if role == "worker" then
        if not growth then rss_ok = false elseif growth > rss_worst then rss_worst = growth end
        if growth and growth >= RSS_LIMIT then rss_ok = false end
      end
    end
    check(fd_ok, ep.name .. ": no growth in open descriptors", table.concat(fd_lines, ", "))
  end
  for _, l in ipairs(trace) do say("%s", l) end
  local rss_detail = ("largest worker growth %+.2f %% (limit %s %%)"):format(rss_worst, RSS_LIMIT)
  if RSS_MODE == "check" then
    check(rss_ok, "worker RSS growth under " .. RSS_LIMIT .. " %", rss_detail)
  else
    say("info worker RSS growth (reported, not checked): %s", rss_detail)
  end

  -- logs
  say("")
  say("== logs")
  for _, ep in ipairs(endpoints) do
    local s = scan_log(ep.srv:error_log())
    local lv = {}
    for _, name in ipairs { "emerg", "alert", "crit", "error", "warn", "notice", "info" } do
      if s.levels[name] then lv[#lv + 1] = name .. " " .. s.levels[name] end
    end
    say("%s error.log: %s", ep.name, #lv > 0 and table.concat(lv, ", ") or "empty")
    for msg, n in pairs(s.warns) do say("  [warn] x%d %s", n, msg) end
    local allowed = ep.name == "chain" and (ms.timeout or 0) or 0
    local detail = ("%d expected (%q, at most %d: the stalls the mock served)"):format(s.expected,
      EXPECTED_ERROR, allowed)
    if #s.unexpected > 0 then
      detail = detail .. "; unexpected:\n    " .. table.concat(s.unexpected, "\n    ", 1,
        math.min(#s.unexpected, 5))
    end
    check(#s.unexpected == 0 and s.expected <= allowed,
      ep.name .. ": no [error] line but the expected provider failures", detail)
  end
  local files = {}
  for _, ep in ipairs(endpoints) do
    files[#files + 1] = ep.srv.dir .. "/error.log"
    files[#files + 1] = ep.srv.dir .. "/access.log"
  end
  local quoted = {}
  for i, f in ipairs(files) do quoted[i] = quote(f) end
  quoted = table.concat(quoted, " ")
  local function grep_l(list) -- the files holding any of list's strings
    local e = {}
    for i, n in ipairs(list) do e[i] = "-e " .. quote(n[2]) end
    local _, out = run(("grep -l -F %s %s 2>/dev/null"):format(table.concat(e, " "), quoted))
    return out
  end
  local leaks = {}
  if grep_l(needles()):find("%S") then -- one pass over the logs; names only then
    for _, n in ipairs(needles()) do
      for f in grep_l({ n }):gmatch("[^\n]+") do leaks[#leaks + 1] = n[1] .. " in " .. f end
    end
  end
  local sizes = {}
  for _, f in ipairs(files) do
    local _, out = run("wc -c < " .. quote(f))
    sizes[#sizes + 1] = (out:match("%d+") or "?")
  end
  check(#leaks == 0, "no secret in the endpoints' error and access logs",
    #leaks == 0 and ("%d forms of %d secrets, %s bytes of logs"):format(#needles(), #SECRETS,
      table.concat(sizes, "+")) or table.concat(leaks, "; "))

  for _, ep in ipairs(endpoints) do
    copy(ep.srv.dir .. "/error.log", OUT .. "/" .. ep.name .. "-error.log")
  end
  copy(mock.dir .. "/error.log", OUT .. "/mock-error.log")
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  say("soak: ERROR %s", tostring(err))
  for _, srv in ipairs(servers) do
    copy(srv.dir .. "/error.log", OUT .. "/" .. tostring(srv.pid) .. "-error.log")
  end
end
stop_all()
say("")
say("soak: %d checks passed, %d failed%s; logs, wrk output and this report in %s", passed,
  failed, ok and "" or ", and an error", OUT)
say("%d successes / %d failures / %d errors", passed, failed, ok and 0 or 1)
write_file(OUT .. "/report.txt", table.concat(report, "\n") .. "\n")
-- closing the state runs support.nginx's cleanup: the test CA's directory goes too
os.exit((ok and failed == 0) and 0 or 1, true)
