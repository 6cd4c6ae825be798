--[[
make bench: the benchmarks of bench/README (B1..B8), every
figure taken RUNS times (5 by default), the variants compared against each
other run one after another inside each round, so that a slow moment of this
shared machine hits all of them.  Prints the table and writes
bench/RESULTS.md: the machine, the date, the versions, min / median / max of
every figure, and each ratio as the median of its per-round ratios with their
spread.  Everything runs on loopback: an upstream nginx (the provider API
mock and the HTTPS server), an nginx with one worker (B1 inside nginx, B3,
B5's cosocket client, B6, B7's prober), an nginx with two workers (B4);
B7 starts ten coturns.

  lua5.4 bench/run.lua [--runs N] [--only B1,B3] [--seconds S] [--out FILE]
  lua5.4 bench/run.lua --serve SECONDS

--seconds scales every timed run (default 1).  --serve starts the servers,
prints their URLs and directories, and keeps them up that long, or until a
file named stop appears in the first directory printed (to profile a
location by hand; bench/callgrind.lua counts B3's instructions).  Needs the
cores of both ABIs built, build/bench/ceiling, and the packages of scripts/bench-deps.sh (the
Makefile's bench target does all that first).
]]
package.path = "spec/?.lua;lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath

local servers = require "bench.servers"
local sh = require "support.sh"
local core = require "iceservers.core"
local cjson = require "cjson"
local common = require "bench.common"

---------------------------------------------------------------------------
-- options

local opt = { runs = 5, seconds = 1, out = "bench/RESULTS.md" }
do
  local i = 1
  while arg[i] do
    local a, v = arg[i], arg[i + 1]
    if a == "--runs" then opt.runs = assert(tonumber(v), "--runs N"); i = i + 2
    elseif a == "--seconds" then opt.seconds = assert(tonumber(v), "--seconds S"); i = i + 2
    elseif a == "--only" then opt.only = {}; for b in v:gmatch("[^,]+") do opt.only[b] = true end
      i = i + 2
    elseif a == "--out" then opt.out = v; i = i + 2
    elseif a == "--serve" then opt.serve = assert(tonumber(v), "--serve SECONDS"); i = i + 2
    else error("unknown argument " .. a .. " (see the head of bench/run.lua)") end
  end
end
local function wanted(b) return not opt.only or opt.only[b] end

---------------------------------------------------------------------------
-- helpers

local function log(fmt, ...) io.stderr:write(os.date("%H:%M:%S "), fmt:format(...), "\n") end

-- Runs a shell command; raises with its output unless it succeeds.
local function run(cmd)
  local ok, out = sh.run(cmd)
  if not ok then error("bench: `" .. cmd .. "` failed:\n" .. out, 2) end
  return out
end

-- "rate=123 n=4" -> {rate = 123, n = 4}; raises when `key` is missing.
local function fields(text, key)
  local t = {}
  for k, v in text:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  if key and t[key] == nil then error("bench: no " .. key .. "= in:\n" .. text, 2) end
  return t
end

local function fetch(url, req)
  req = req or {}
  req.url = url
  req.timeout = req.timeout or 60
  local res, err = core.http_request(req)
  if not res then error("bench: " .. tostring(err), 2) end
  if res.status ~= 200 then error(("bench: %s -> %d %s"):format(url, res.status, res.body), 2) end
  return res.body
end

local function sorted(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s
end

local function median(list)
  local s = sorted(list)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function stats(list)
  local s = sorted(list)
  return { min = s[1], median = median(s), max = s[#s], n = #s, values = list }
end

-- wrk on one URL for `seconds`: requests per second (raises on errors or
-- non-2xx answers, which would make a fast failure look like throughput).
-- On a machine of two cores or more, wrk runs on the last and the measured
-- nginx worker on the first (pin_worker): the two never take turns on one
-- core, which made B3's ratios swing by ±10 % from one slice to the next.
local CPUS = tonumber((select(2, sh.run("nproc")) or ""):match("%d+")) or 1
local WRK = CPUS >= 2 and ("taskset -c %d wrk"):format(CPUS - 1) or "wrk"

local function wrk(url, seconds, connections, header)
  local out = run((WRK .. " -t1 -c%d -d%ds %s%s"):format(connections or 16, math.max(1,
    math.floor(seconds + 0.5)), header and ("-H " .. sh.quote(header) .. " ") or "",
    sh.quote(url)))
  if out:find("Non%-2xx") or out:find("Socket errors") then
    error("bench: wrk " .. url .. " saw errors:\n" .. out)
  end
  return assert(tonumber(out:match("Requests/sec:%s*([%d.]+)")), out)
end

local function worker_pids(srv)
  local out = run("pgrep -P " .. srv.pid)
  local pids = {}
  for pid in out:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  return pids
end

local function pin_worker(srv)
  if CPUS < 2 then return end
  for _, pid in ipairs(worker_pids(srv)) do run("taskset -pc 0 " .. pid .. " >/dev/null") end
end

local function rss_kb(pid)
  local status = assert(sh.read_file("/proc/" .. pid .. "/status"))
  return assert(tonumber(status:match("VmRSS:%s*(%d+)")))
end

local function first_line(cmd)
  local ok, out = sh.run(cmd)
  return ok and (out:match("[^\n]+") or "?") or "?"
end

---------------------------------------------------------------------------
-- results

local results = {}  -- id -> {bench, label, unit, stats}
local order = {}    -- ids in the order they were measured
local ratios = {}   -- {bench, label, stats of per-round ratios, target, met}
local notes = {}    -- bench -> extra lines
local failures = {} -- benchmarks that could not run

local function record(id, bench, label, unit, values)
  results[id] = { bench = bench, label = label, unit = unit, stats = stats(values) }
  order[#order + 1] = id
  return results[id]
end

-- The per-round ratios a/b (same round, so the same moment of the machine).
local function ratio(bench, label, a, b, target, check)
  local va, vb = results[a].stats.values, results[b].stats.values
  local r = {}
  for i = 1, math.min(#va, #vb) do r[i] = va[i] / vb[i] end
  local s = stats(r)
  ratios[#ratios + 1] = { bench = bench, label = label, stats = s, target = target,
    met = check and check(s) }
  return s
end

-- Rounds of `variants` ({id, fn} each; fn returns one figure): round i runs
-- every variant once, in the listed order.
local function rounds(variants)
  local values = {}
  for _, v in ipairs(variants) do values[v[1]] = {} end
  for r = 1, opt.runs do
    for _, v in ipairs(variants) do
      local x = v[2](r)
      values[v[1]][#values[v[1]] + 1] = x
    end
  end
  return values
end

---------------------------------------------------------------------------
-- the servers

local up, app, app2

local UPSTREAM_B5_BODY = common.METERED_ANSWER

local function start_servers()
  log("starting the upstream nginx (provider API mock, HTTPS server)")
  up = servers.upstream(UPSTREAM_B5_BODY)
  log("starting the benchmark nginx (one worker) and the B4 nginx (two workers)")
  app = servers.app(up, 1)
  app2 = servers.app(up, 2)
  pin_worker(app)
end

local function stop_servers()
  for _, srv in ipairs { app2, app, up } do
    if srv then
      local log_text = srv:error_log()
      if log_text:find("%[error%]") or log_text:find("%[crit%]") or log_text:find("%[alert%]") then
        io.stderr:write("bench: errors in an nginx log:\n", log_text, "\n")
      end
      srv:stop()
    end
  end
end

---------------------------------------------------------------------------
-- the benchmarks

local S = function(x) return x * opt.seconds end

-- B1: credentials per second on one core.
local function b1()
  -- every implementation must compute the same password for user-1
  local check = core.b64encode(core.hmac("sha1", common.SECRET, common.EXPIRY .. ":user-1"))
  local function rate(text)
    local f = fields(text, "rate")
    if f.check ~= check then error("bench: B1 wrong password: " .. text) end
    return f.rate
  end
  local function lua(interp, impl)
    return function()
      return rate(run(("%s bench/sign.lua %s %.2f"):format(interp, impl, S(1))))
    end
  end
  local function in_nginx(impl)
    return function()
      return rate(fetch(app:url(("/b1?impl=%s&s=%.2f"):format(impl, S(1)))))
    end
  end
  local v = rounds {
    { "b1.c", function() return rate(run(("build/bench/ceiling %.2f"):format(S(1)))) end },
    { "b1.ice54", lua("lua5.4", "iceservers") },
    { "b1.ossl54", lua("lua5.4", "luaossl") },
    { "b1.icejit", lua("luajit", "iceservers") },
    { "b1.icengx", in_nginx("iceservers") },
    { "b1.ngx", in_nginx("ngx") },
  }
  record("b1.c", "B1", "plain C loop, OpenSSL (the ceiling)", "cred/s", v["b1.c"])
  record("b1.ice54", "B1", "iceservers signer, Lua 5.4", "cred/s", v["b1.ice54"])
  record("b1.icejit", "B1", "iceservers signer, LuaJIT", "cred/s", v["b1.icejit"])
  record("b1.icengx", "B1", "iceservers signer, inside nginx (LuaJIT)", "cred/s", v["b1.icengx"])
  record("b1.ossl54", "B1", "luaossl HMAC + LuaSocket mime.b64, Lua 5.4", "cred/s",
    v["b1.ossl54"])
  record("b1.ngx", "B1", "ngx.hmac_sha1 + ngx.encode_base64, inside nginx", "cred/s", v["b1.ngx"])
  local at_least = function(x) return function(s) return s.median >= x end end
  ratio("B1", "iceservers (Lua 5.4) / luaossl + mime.b64 (Lua 5.4)", "b1.ice54", "b1.ossl54",
    "≥ 3×", at_least(3))
  ratio("B1", "iceservers (inside nginx) / ngx.hmac_sha1 + ngx.encode_base64", "b1.icengx",
    "b1.ngx", "≥ 3×", at_least(3))
  ratio("B1", "iceservers (Lua 5.4) / ngx.hmac_sha1 + ngx.encode_base64", "b1.ice54", "b1.ngx",
    "≥ 3×", at_least(3))
  ratio("B1", "iceservers (LuaJIT) / plain C ceiling", "b1.icejit", "b1.c")
  ratio("B1", "iceservers (Lua 5.4) / plain C ceiling", "b1.ice54", "b1.c")
  local r = results["b1.ice54"].stats
  ratios[#ratios + 1] = { bench = "B1", label = "iceservers on Lua 5.4, credentials/s (median)",
    absolute = r.median, target = "≥ 1.6 M/s", met = r.median >= 1.6e6 }
end

-- B2 (and B6's Lua side): broker:get per second; the Lua heap around 1 M gets.
local function b2()
  local calls = 1000000
  local function get(interp, provider)
    return function()
      return fields(run(("%s bench/get.lua %s %.2f %d"):format(interp, provider, S(1), calls)),
        "rate")
    end
  end
  local v = rounds {
    { "b2.coturn54", get("lua5.4", "coturn") },
    { "b2.rest54", get("lua5.4", "rest") },
    { "b2.coturnjit", get("luajit", "coturn") },
    { "b2.restjit", get("luajit", "rest") },
  }
  local names = {
    ["b2.coturn54"] = "coturn provider, Lua 5.4", ["b2.rest54"] = "cached REST (Metered), Lua 5.4",
    ["b2.coturnjit"] = "coturn provider, LuaJIT", ["b2.restjit"] = "cached REST (Metered), LuaJIT",
  }
  for _, id in ipairs { "b2.coturn54", "b2.rest54", "b2.coturnjit", "b2.restjit" } do
    local rates, growth = {}, {}
    for i, f in ipairs(v[id]) do
      rates[i] = f.rate
      growth[i] = (f.kb_after - f.kb_before) / f.kb_before * 100
    end
    record(id, "B2", names[id], "get/s", rates)
    record("b6." .. id, "B6", "Lua heap growth over 1 M gets: " .. names[id], "%", growth)
    notes.B6 = notes.B6 or {}
    notes.B6[#notes.B6 + 1] = ("%s: Lua heap %.0f KiB before, %.0f KiB after 1 M gets "
      .. "(last run, after a full collection)"):format(names[id], v[id][#v[id]].kb_before,
      v[id][#v[id]].kb_after)
  end
  local within = function(s) return s.median <= 1.1 end
  ratio("B2", "time per get: cached REST / coturn, Lua 5.4", "b2.coturn54", "b2.rest54",
    "≤ 1.1×", within)
  ratio("B2", "time per get: cached REST / coturn, LuaJIT", "b2.coturnjit", "b2.restjit",
    "≤ 1.1×", within)
end

-- B3: /ice-servers requests per second, one worker, wrk with keep-alive.
local function b3()
  local paths = { "/ice-servers/coturn", "/ice-servers/rest", "/ceiling/coturn",
    "/ceiling/rest", "/ceiling/bare", "/ice-servers/pool", "/ice-servers/user" }
  for _, p in ipairs(paths) do fetch(app:url(p)) end -- warm: the REST cache, the ceilings
  -- the guarded endpoint's token: the application's HS256 JWT, the same each time
  local bearer = "Authorization: Bearer " .. common.jwt_token(core, cjson)
  local guarded_body = fetch(app:url("/ice-servers/guarded"),
    { headers = { Authorization = bearer:match("^Authorization: (.*)$") } })
  assert(guarded_body:find(":" .. common.JWT_USER, 1, true), "the guarded answer: " .. guarded_body)
  assert(#guarded_body == #fetch(app:url("/ceiling/guarded")), "the guarded ceiling differs")
  -- the same answers (but for the seconds in ttl and expires, of the same length)
  local coturn_body, rest_body = fetch(app:url("/ice-servers/coturn")),
    fetch(app:url("/ice-servers/rest"))
  assert(#coturn_body == #fetch(app:url("/ceiling/coturn")), "the coturn ceiling differs")
  assert(#rest_body == #fetch(app:url("/ceiling/rest")), "the REST ceiling differs")
  local pool_body = fetch(app:url("/ice-servers/pool"))
  assert(pool_body:find("turn1.example.com", 1, true) or pool_body:find("turn2.example.com", 1,
    true) or pool_body:find("turn3.example.com", 1, true), "the pool answer has no host")
  for _, p in ipairs(paths) do wrk(app:url(p), 1) end -- warm: LuaJIT's traces
  -- A run of a location is the mean of SLICES one-second wrk runs, each next
  -- to one of the location it is compared with (ceiling, endpoint, ceiling,
  -- endpoint...), so that both see the same moments of the machine.
  local SLICES = 5
  local v = { ["b3.ceiling_coturn"] = {}, ["b3.coturn"] = {}, ["b3.ceiling_rest"] = {},
    ["b3.rest"] = {}, ["b3.bare"] = {}, ["b3.coturn2"] = {}, ["b3.user"] = {},
    ["b3.pool"] = {}, ["b3.ceiling_guarded"] = {}, ["b3.guarded"] = {} }
  local pairs_of = { { "b3.ceiling_coturn", "/ceiling/coturn", "b3.coturn", "/ice-servers/coturn" },
    { "b3.ceiling_rest", "/ceiling/rest", "b3.rest", "/ice-servers/rest" },
    { "b3.user", "/ice-servers/user", "b3.pool", "/ice-servers/pool" },
    { "b3.ceiling_guarded", "/ceiling/guarded", "b3.guarded", "/ice-servers/guarded", bearer },
    { "b3.bare", "/ceiling/bare", "b3.coturn2", "/ice-servers/coturn" } }
  for _ = 1, opt.runs do
    for _, pr in ipairs(pairs_of) do
      local a, b = 0, 0
      for _ = 1, SLICES do
        a = a + wrk(app:url(pr[2]), S(1), nil, pr[5])
        b = b + wrk(app:url(pr[4]), S(1), nil, pr[5])
      end
      table.insert(v[pr[1]], a / SLICES)
      table.insert(v[pr[3]], b / SLICES)
    end
  end
  record("b3.ceiling_coturn", "B3", "ceiling: precomputed string (coturn's answer)", "req/s",
    v["b3.ceiling_coturn"])
  record("b3.coturn", "B3", "/ice-servers, coturn provider", "req/s", v["b3.coturn"])
  record("b3.ceiling_rest", "B3", "ceiling: precomputed string (Metered's answer)", "req/s",
    v["b3.ceiling_rest"])
  record("b3.rest", "B3", "/ice-servers, cached REST provider (Metered)", "req/s", v["b3.rest"])
  record("b3.user", "B3", "/ice-servers, coturn provider, a user id (checked, signed in)",
    "req/s", v["b3.user"])
  record("b3.pool", "B3", "/ice-servers, coturn pool of 3 hosts, TURN_PICK=1 per user", "req/s",
    v["b3.pool"])
  record("b3.bare", "B3", "for comparison: the coturn body with no header set", "req/s",
    v["b3.bare"])
  record("b3.coturn2", "B3", "/ice-servers, coturn provider (next to the above)", "req/s",
    v["b3.coturn2"])
  local at_least = function(s) return s.median >= 0.9 end
  ratio("B3", "coturn endpoint / its ceiling", "b3.coturn", "b3.ceiling_coturn", "≥ 90 %",
    at_least)
  ratio("B3", "cached REST endpoint / its ceiling", "b3.rest", "b3.ceiling_rest", "≥ 90 %",
    at_least)
  record("b3.ceiling_guarded", "B3", "ceiling: precomputed string (the guarded answer)", "req/s",
    v["b3.ceiling_guarded"])
  record("b3.guarded", "B3", "/ice-servers, coturn, the app's JWT (repeated) and both limits",
    "req/s", v["b3.guarded"])
  ratio("B3", "guarded endpoint (JWT and limits) / its ceiling", "b3.guarded",
    "b3.ceiling_guarded", "≥ 85 %", function(s) return s.median >= 0.85 end)
  ratio("B3", "pool of 3 hosts, TURN_PICK=1 per user / the same user without a pool",
    "b3.pool", "b3.user")
  ratio("B3", "coturn endpoint / a body with no header set (not the same response)",
    "b3.coturn2", "b3.bare")
  notes.B3 = { ("bodies: coturn %d bytes, Metered %d bytes; wrk -t1 -c16; a run is %d "
    .. "one-second slices of the location, alternating with its ceiling; the endpoints read "
    .. "the health state on every request (iceservers.ngx's source, mode filter, as with "
    .. "health on) and count every request for the metrics (in a table of the worker's, "
    .. "added to the dict once a second); every answer is shaped (the "
    .. "default cap of 4 cuts Metered's 6 URLs to 4; the pool's 6 TURN URLs over 3 hosts are "
    .. "picked per user: an HMAC-SHA256 per host and request, the one shaping step done per "
    .. "request; a request with a user id also has it checked, by the broker and by coturn's "
    .. "rules)"):format(#coturn_body,
    #rest_body, SLICES) }
end

-- B4: upstream calls for 200 concurrent requests on a cold cache, 2 workers.
local function b4()
  local n = 200
  local function drive(kind, r)
    local tag = ("b4%s%d-%d-d300"):format(kind:sub(1, 1), r, os.time())
    local got = cjson.decode(fetch(app:url("/drive"), { method = "POST",
      body = cjson.encode { url = app2:url("/b4/" .. kind .. "/" .. tag), n = n } }))
    if #got.errors > 0 or got.statuses["200"] ~= n or got.turn ~= n then
      error("bench: B4 " .. kind .. " did not answer every request: " .. cjson.encode(got))
    end
    return tonumber(fetch(up:url("/count/" .. tag)))
  end
  local v = rounds {
    { "b4.cached", function(r) return drive("cached", r) end },
    { "b4.naive", function(r) return drive("naive", r) end },
  }
  record("b4.cached", "B4", "iceservers, shared-dict cache and refresh lock", "calls",
    v["b4.cached"])
  record("b4.naive", "B4", "naive: the provider called per request (no cache)", "calls",
    v["b4.naive"])
  local r = results["b4.cached"].stats
  ratios[#ratios + 1] = { bench = "B4", label = "upstream calls for 200 concurrent requests "
    .. "(cold cache, upstream answering in 300 ms)", absolute = r.max, target = "exactly 1",
    met = r.min == 1 and r.max == 1, unit = "calls" }
  notes.B4 = { ("each run: a new cache key, %d concurrent GETs from light threads of another "
    .. "nginx, every answer 200 with the provider's TURN entry"):format(n) }
end

-- B5: HTTPS requests per second to a local nginx.
local function b5()
  local url = ("https://localhost:%d/b5"):format(up.tls_port)
  local function lua(mode)
    return function()
      return fields(run(("lua5.4 bench/https.lua %s %s %s %.2f"):format(mode, sh.quote(url),
        sh.quote(up.ca_file), S(1.5))), "rate").rate
    end
  end
  local v = rounds {
    { "b5.reuse", lua("reuse") },
    { "b5.oneshot", lua("oneshot") },
    { "b5.cosocket", function()
      return fields(fetch(app:url(("/b5?s=%.2f&url=%s"):format(S(1.5), url))), "rate").rate
    end },
    { "b5.luasec", lua("luasec") },
    { "b5.luasec_default", lua("luasec-default") },
  }
  record("b5.reuse", "B5", "core.http_client (connections reused), Lua 5.4", "req/s",
    v["b5.reuse"])
  record("b5.oneshot", "B5", "core.http_request (one-shot), Lua 5.4", "req/s", v["b5.oneshot"])
  record("b5.cosocket", "B5", "cosocket transport inside nginx (kept alive)", "req/s",
    v["b5.cosocket"])
  record("b5.luasec", "B5", "LuaSocket + LuaSec, one request per connection, Lua 5.4", "req/s",
    v["b5.luasec"])
  record("b5.luasec_default", "B5", "ssl.https.request as it is (no TCP_NODELAY), Lua 5.4",
    "req/s", v["b5.luasec_default"])
  ratio("B5", "core.http_client reuse / LuaSec", "b5.reuse", "b5.luasec", "≥ 3×",
    function(s) return s.median >= 3 end)
  ratio("B5", "core.http_request one-shot / LuaSec", "b5.oneshot", "b5.luasec")
  ratio("B5", "cosocket transport / LuaSec", "b5.cosocket", "b5.luasec")
  notes.B5 = { "every client verifies the server certificate (a test CA made for the run); "
    .. ("the answer is %d bytes of JSON. The LuaSec anchor sets TCP_NODELAY: without it "
    .. "(ssl.https.request as it is) each request waits for a delayed ACK"):format(
    #UPSTREAM_B5_BODY) }
end

-- B6: nginx worker RSS before and after 1 M requests (half to each endpoint).
local function b6()
  local per_run = 1000000
  local pid = assert(worker_pids(app)[1], "no worker")
  local script = sh.tmpdir("bench") .. "/count.lua"
  -- wrk alternating the two endpoints, its thread stopping after B6_LIMIT
  -- answers (wrk itself still waits for -d to pass, so -d is sized from the
  -- rate measured in the warm-up)
  sh.write_file(script, [[
local paths = { "/ice-servers/coturn", "/ice-servers/rest" }
local i, done, limit = 0, 0, tonumber(os.getenv("B6_LIMIT"))
request = function() i = i + 1; return wrk.format(nil, paths[i % 2 + 1]) end
response = function(status)
  if status ~= 200 then error("status " .. status) end
  done = done + 1
  if done >= limit then wrk.thread:stop() end
end
]])
  local rate
  local function wrk_count(limit, seconds)
    local out = run(("B6_LIMIT=%d " .. WRK .. " -t1 -c16 -d%ds -s %s %s"):format(limit, seconds,
      sh.quote(script), sh.quote(app:url("/"))))
    local n = tonumber(out:match("(%d+) requests in"))
    if not n or out:find("Non%-2xx") or out:find("Socket errors") then
      error("bench: B6 load:\n" .. out)
    end
    return n
  end
  local function load()
    local total = 0
    while total < per_run do
      local left = per_run - total
      total = total + wrk_count(left, math.ceil(left / rate * 1.3) + 1)
    end
    return total
  end
  rate = wrk_count(per_run * 10, 5) / 5 -- warm up: traces, pools, the allocator's steady state
  local growth, before0, after_last = {}, nil, nil
  local heap0 = tonumber(fetch(app:url("/lua-heap")))
  for r = 1, opt.runs do
    local before = rss_kb(pid)
    before0 = before0 or before
    load()
    local after = rss_kb(pid)
    after_last = after
    growth[r] = (after - before) / before * 100
  end
  local heap1 = tonumber(fetch(app:url("/lua-heap")))
  sh.rmrf(script:match("^(.*)/"))
  record("b6.rss", "B6", "nginx worker RSS growth over 1 M requests", "%", growth)
  local s = results["b6.rss"].stats
  ratios[#ratios + 1] = { bench = "B6", label = "nginx worker RSS growth per 1 M requests (max "
    .. "over the runs)", absolute = s.max, unit = "%", target = "< 5 %", met = s.max < 5 }
  for _, id in ipairs { "b6.b2.coturn54", "b6.b2.rest54", "b6.b2.coturnjit", "b6.b2.restjit" } do
    local st = results[id] and results[id].stats
    if st then
      ratios[#ratios + 1] = { bench = "B6", label = results[id].label .. " (max over the runs)",
        absolute = st.max, unit = "%", target = "< 5 %", met = st.max < 5 }
    end
  end
  notes.B6 = notes.B6 or {}
  table.insert(notes.B6, 1, ("nginx worker RSS: %d KiB after warm-up, %d KiB after %d M more "
    .. "requests; its Lua heap %.0f KiB then %.0f KiB (not collected)"):format(before0, after_last,
    opt.runs, heap0, heap1))
end

-- B7: the prober.  Real coturns on loopback (several addresses each), silent
-- UDP sockets (held by this process, never read) for servers that never answer.
-- B8: distinct-token JWT verifications per second inside the benchmark
-- nginx's one worker (iceservers.jwt, no cache), against PyJWT verifying the
-- same tokens in this run (bench/jwt_rate.py; OpenSSL does the work in both).
local function b8()
  local ok, out = sh.run("/usr/bin/python3 bench/jwt_rate.py make 300")
  if not ok then error("bench: B8 needs python3-jwt (make deps): " .. out) end
  local doc = cjson.decode(out)
  local file = os.tmpname()
  sh.write_file(file, out)
  local ALGS = { "HS256", "RS256", "ES256" }
  local ours, theirs = {}, {}
  for _, alg in ipairs(ALGS) do ours[alg], theirs[alg] = {}, {} end
  for _ = 1, opt.runs do
    for _, alg in ipairs(ALGS) do
      local d = doc[alg]
      local got = cjson.decode(fetch(app:url("/b8"), { method = "POST", body = cjson.encode {
        alg = alg, key = d.key, pem = d.pem, tokens = d.tokens, seconds = S(1) } }))
      table.insert(ours[alg], got.rate)
    end
    local _, py = sh.run(("/usr/bin/python3 bench/jwt_rate.py verify %s %s")
      :format(sh.quote(file), tostring(S(1))))
    local rates = cjson.decode(py)
    for _, alg in ipairs(ALGS) do table.insert(theirs[alg], rates[alg]) end
  end
  os.remove(file)
  for _, alg in ipairs(ALGS) do
    record("b8.ours_" .. alg, "B8", alg .. ": iceservers.jwt inside nginx (one worker)",
      "verif/s", ours[alg])
    record("b8.pyjwt_" .. alg, "B8", alg .. ": PyJWT (python3-jwt)", "verif/s", theirs[alg])
  end
  local at_least = function(x) return function(st) return st.median >= x end end
  ratio("B8", "HS256: iceservers / PyJWT", "b8.ours_HS256", "b8.pyjwt_HS256", "≥ 3×",
    at_least(3))
  ratio("B8", "RS256: iceservers / PyJWT", "b8.ours_RS256", "b8.pyjwt_RS256", "≥ 1×",
    at_least(1))
  ratio("B8", "ES256: iceservers / PyJWT", "b8.ours_ES256", "b8.pyjwt_ES256", "≥ 1×",
    at_least(1))
  notes.B8 = { ("300 distinct tokens per algorithm (made by PyJWT: RSA 2048, P-256), each "
    .. "verified in full (signature, exp) by a verifier without the endpoint's cache; PyJWT's "
    .. "jwt.decode over the same tokens, in the same round; %g s each") :format(S(1)) }
end

local function b7()
  local coturn = require "support.coturn"
  local socket = require "socket"
  local SECRET = common.SECRET
  local IPS = { "127.0.0.1", "127.0.0.2", "127.0.0.3" }
  local NGX_TIMEOUT, CLI_TIMEOUT = 1, 2
  local coturns, silent = {}, {}
  local signer = core.hmac_key("sha1", SECRET)
  local n_user = 0
  local function cred()
    n_user = n_user + 1
    local username = ("%d:b7-%d"):format(os.time() + 3600, n_user)
    return username, signer:b64digest(username)
  end
  local ok, err = pcall(function()
    for i = 1, 10 do
      coturns[i] = coturn.start { secrets = { SECRET }, verbose = false, ips = IPS }
    end
    for i = 1, 10 do
      local u = assert(socket.udp())
      assert(u:setsockname("127.0.0.1", 0))
      silent[i] = u
    end
    local function silent_port(i) return select(2, silent[i]:getsockname()) end

    -- one probe at a time, as the CLI probes (LuaSocket)
    local single = {}
    for _, interp in ipairs { "lua5.4", "luajit" } do
      single[interp] = function()
        return fields(run(("%s bench/probe.lua %d %s 50"):format(interp, coturns[1].port,
          sh.quote(SECRET))), "cpu_ms")
      end
    end
    -- 100 URLs inside nginx: 90 on the coturns (TURN over UDP and TCP, STUN), 10 silent
    local items = {}
    for _, srv in ipairs(coturns) do
      for _, ip in ipairs(IPS) do
        for _, url in ipairs { ("turn:%s:%d?transport=udp"):format(ip, srv.port),
          ("turn:%s:%d?transport=tcp"):format(ip, srv.port),
          ("stun:%s:%d"):format(ip, srv.port) } do
          local item = { url = url }
          if url:find("^turn") then item.username, item.credential = cred() end
          items[#items + 1] = item
        end
      end
    end
    for i = 1, 10 do
      local u, c = cred()
      items[#items + 1] = { url = ("turn:127.0.0.1:%d?transport=udp"):format(silent_port(i)),
        username = u, credential = c }
    end
    local function in_nginx()
      local got = cjson.decode(fetch(app:url("/b7"), { method = "POST",
        body = cjson.encode { items = items, timeout = NGX_TIMEOUT } }))
      local good, timed_out = 0, 0
      for i, r in ipairs(got.results) do
        if i <= 90 and r.ok then good = good + 1 end
        if i > 90 and not r.ok and r.stage == "timeout" then timed_out = timed_out + 1 end
      end
      if good ~= 90 or timed_out ~= 10 then
        error(("bench: B7 in nginx: %d of 90 probes worked, %d of 10 silent ones timed out")
          :format(good, timed_out))
      end
      return got
    end
    -- the CLI: 12 URLs of the configured chain, 4 of them silent
    local a, b = coturns[1], coturns[2]
    local turn = { ("turn:127.0.0.1:%d?transport=udp"):format(a.port),
      ("turn:127.0.0.1:%d?transport=tcp"):format(a.port),
      ("turn:127.0.0.2:%d?transport=udp"):format(b.port),
      ("turn:127.0.0.2:%d?transport=tcp"):format(b.port),
      ("turn:127.0.0.1:%d?transport=udp"):format(silent_port(1)),
      ("turn:127.0.0.1:%d?transport=udp"):format(silent_port(2)) }
    local stun = { ("stun:127.0.0.1:%d"):format(a.port), ("stun:127.0.0.3:%d"):format(a.port),
      ("stun:127.0.0.2:%d"):format(b.port), ("stun:127.0.0.3:%d"):format(b.port),
      ("stun:127.0.0.1:%d"):format(silent_port(3)), ("stun:127.0.0.1:%d"):format(silent_port(4)) }
    -- (ICESERVERS_MAX_URLS=0: every configured URL, not the 4 of a shaped answer)
    local cli_cmd = ("env -i PATH=/usr/bin:/bin ICESERVERS_MAX_URLS=0 TURN_PROVIDER=coturn "
      .. "TURN_SECRET=%s "
      .. "TURN_URLS=%s STUN_URLS=%s lua5.4 bin/iceservers probe --user bench --timeout %d")
      :format(sh.quote(SECRET), sh.quote(table.concat(turn, ",")),
        sh.quote(table.concat(stun, ",")), CLI_TIMEOUT)
    local function cli()
      local t0 = core.monotonic()
      local _, out, code = sh.run(cli_cmd)
      local took = core.monotonic() - t0
      if code ~= 1 or not out:find("8 of 12 URLs work", 1, true) then
        error(("bench: B7 CLI (exit %s):\n%s"):format(tostring(code), out))
      end
      return took
    end
    -- one health round of 20 TURN URLs (10 coturns, UDP and TCP), inside nginx
    local round_urls = {}
    for _, srv in ipairs(coturns) do
      round_urls[#round_urls + 1] = ("turn:127.0.0.1:%d?transport=udp"):format(srv.port)
      round_urls[#round_urls + 1] = ("turn:127.0.0.1:%d?transport=tcp"):format(srv.port)
    end
    local function round()
      local got = cjson.decode(fetch(app:url("/b7round"), { method = "POST",
        body = cjson.encode { urls = round_urls, secret = SECRET } }))
      if got.ok ~= 20 or got.n ~= 20 then
        error("bench: B7 health round: " .. cjson.encode(got))
      end
      return got.cpu_ms
    end
    -- for context only: coturn's own clients
    local function uclient()
      local u, c = cred()
      local done, out, info = coturn.allocate { port = a.port, user = u, password = c }
      if not done then error("bench: B7 turnutils_uclient failed:\n" .. tostring(out)) end
      return info.seconds
    end
    local function stunclient()
      local t0 = core.monotonic()
      local done, out = sh.run(("turnutils_stunclient -p %d 127.0.0.1 2>&1"):format(a.port))
      if not done then error("bench: B7 turnutils_stunclient failed:\n" .. out) end
      return core.monotonic() - t0
    end

    local v = { udp54 = {}, tcp54 = {}, cpu54 = {}, udpjit = {}, tcpjit = {}, cpujit = {},
      exchanges = {}, ngx_took = {}, ngx_cpu = {}, cli_took = {}, uclient = {}, stunclient = {},
      round = {} }
    local lo, hi, retried = math.huge, 0, 0
    for _ = 1, opt.runs do
      for interp, key in pairs { ["lua5.4"] = "54", luajit = "jit" } do
        local f = single[interp]()
        table.insert(v["udp" .. key], f.udp_ms)
        table.insert(v["tcp" .. key], f.tcp_ms)
        table.insert(v["cpu" .. key], f.cpu_ms)
        if f.udp_ok ~= 50 or f.tcp_ok ~= 50 then
          error("bench: B7 single probes did not all allocate and release: " .. cjson.encode(f))
        end
        retried = retried + f.udp_retried + f.tcp_retried
        for x in (f.udp_exchanges .. "-" .. f.tcp_exchanges):gmatch("%d+") do
          lo, hi = math.min(lo, tonumber(x)), math.max(hi, tonumber(x))
        end
      end
      local got = in_nginx()
      table.insert(v.ngx_took, got.took / NGX_TIMEOUT)
      table.insert(v.ngx_cpu, got.cpu_ms / #items)
      table.insert(v.cli_took, cli() / CLI_TIMEOUT)
      table.insert(v.round, round())
      table.insert(v.uclient, uclient())
      table.insert(v.stunclient, stunclient() * 1000)
    end
    record("b7.udp54", "B7", "one TURN probe over UDP (3 exchanges), Lua 5.4", "ms", v.udp54)
    record("b7.tcp54", "B7", "one TURN probe over TCP (3 exchanges), Lua 5.4", "ms", v.tcp54)
    record("b7.udpjit", "B7", "one TURN probe over UDP (3 exchanges), LuaJIT", "ms", v.udpjit)
    record("b7.tcpjit", "B7", "one TURN probe over TCP (3 exchanges), LuaJIT", "ms", v.tcpjit)
    record("b7.cpu54", "B7", "CPU per TURN probe, Lua 5.4 (LuaSocket)", "ms", v.cpu54)
    record("b7.cpujit", "B7", "CPU per TURN probe, LuaJIT (LuaSocket)", "ms", v.cpujit)
    record("b7.ngx_cpu", "B7", "CPU per probe inside nginx (100 at once, 10 silent)", "ms",
      v.ngx_cpu)
    record("b7.round", "B7", "CPU of one health round of 20 TURN URLs inside nginx", "ms",
      v.round)
    record("b7.ngx_took", "B7", "inside nginx: 100 URLs (10 silent), time / the timeout",
      "× timeout", v.ngx_took)
    record("b7.cli_took", "B7", "iceservers probe: 12 URLs (4 silent), time / the timeout",
      "× timeout", v.cli_took)
    record("b7.stunclient", "B7", "for context: turnutils_stunclient, one Binding (the process)",
      "ms", v.stunclient)
    record("b7.uclient", "B7", "for context: turnutils_uclient -y -n 1 -m 1 (waits 1-6 s first)",
      "s", v.uclient)
    ratios[#ratios + 1] = { bench = "B7", label = "exchanges of one TURN probe on loopback "
      .. "(every probe of every run, UDP and TCP, but those retried)", absolute = hi,
      unit = "exchanges",
      target = "exactly 3", met = lo == 3 and hi == 3 }
    local ngx_max = results["b7.ngx_took"].stats.max
    ratios[#ratios + 1] = { bench = "B7", label = "inside nginx, 100 URLs, 10 never answer: "
      .. "time / the timeout (max over the runs)", absolute = ngx_max, unit = "× timeout",
      target = "< 1.5×", met = ngx_max < 1.5 }
    local cli_max = results["b7.cli_took"].stats.max
    ratios[#ratios + 1] = { bench = "B7", label = "iceservers probe, 12 URLs, 4 never answer: "
      .. "time / the timeout (max over the runs)", absolute = cli_max, unit = "× timeout",
      target = "about 1× (not 4×): < 1.5×", met = cli_max < 1.5 }
    notes.B7 = { ("10 coturns, each on %s; nginx probes with a %d s timeout (ngx threads, "
      .. "cosockets), the CLI with %d s (one socket.select loop); a single probe is the median "
      .. "of 50 in a row, each a new allocation, released; %d of the %d single probes met a "
      .. "437 on their first Allocate (the system gave the socket an earlier probe's port, "
      .. "whose allocation coturn still held) and were retried from another port (probe.md's "
      .. "retried)"):format(table.concat(IPS, ", "), NGX_TIMEOUT, CLI_TIMEOUT, retried,
      opt.runs * 200) }
  end)
  for _, u in ipairs(silent) do u:close() end
  for _, srv in ipairs(coturns) do srv:stop() end
  if not ok then error(err, 0) end
end

---------------------------------------------------------------------------
-- the report

local function human(x, unit)
  if unit == "%" then return ("%.2f %%"):format(x) end
  if unit == "ms" or unit == "s" then return ("%.2f"):format(x) end
  if unit == "× timeout" then return ("%.2f×"):format(x) end
  if unit == "exchanges" then return ("%d"):format(x) end
  if unit == "calls" then return ("%d"):format(x) end
  if x >= 1e6 then return ("%.2f M"):format(x / 1e6) end
  if x >= 1e4 then return ("%.1f k"):format(x / 1e3) end
  return ("%.0f"):format(x)
end

local function ratio_text(r)
  if r.absolute then return human(r.absolute, r.unit) end
  local s = r.stats
  return ("%.2f× (%.2f–%.2f)"):format(s.median, s.min, s.max)
end

local function machine()
  local cpu = (sh.read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local cores = first_line("nproc")
  local versions = {}
  local ok, v = pcall(function() return cjson.decode(fetch(app:url("/versions"))) end)
  if ok then versions = v end
  local function dpkg(p) return first_line("dpkg-query -W -f='${Version}' " .. p) end
  return {
    { "date", os.date("!%Y-%m-%d %H:%M UTC") },
    { "machine", ("%s, %s cores, Linux %s"):format(cpu, cores, first_line("uname -r")) },
    { "load average (1 min) at start / end", "" },
    { "Lua", first_line("lua5.4 -v"):match("^Lua %S+") or "?" },
    { "LuaJIT", first_line("luajit -v"):match("^LuaJIT %S+") or "?" },
    { "nginx", first_line("nginx -v 2>&1"):gsub("^nginx version: ", "") .. (versions.ngx_lua
      and (", lua-nginx-module %d.%d.%d, %s"):format(versions.ngx_lua // 1000000,
        versions.ngx_lua // 1000 % 1000, versions.ngx_lua % 1000, versions.luajit or "") or "") },
    { "OpenSSL", core.version.openssl },
    { "libcurl", core.version.curl },
    { "anchors", ("lua-luaossl %s, lua-socket %s, lua-sec %s, lua-resty-core %s, wrk %s"):format(
      dpkg("lua-luaossl"), dpkg("lua-socket"), dpkg("lua-sec"), dpkg("lua-resty-core"),
      dpkg("wrk")) },
    { "iceservers", core._VERSION .. " (this checkout)" },
  }
end

local function loadavg()
  return (sh.read_file("/proc/loadavg") or "?"):match("^(%S+)") or "?"
end

local function report(info, load_start, load_end, elapsed)
  local md, txt = {}, {}
  local function both(line) md[#md + 1] = line end
  both("# Benchmark results")
  both("")
  both("Written by `make bench` (bench/run.lua); see bench/README.md for what each figure "
    .. "measures and how. Each figure is taken " .. opt.runs .. " times; the variants "
    .. "compared run one after another within each round, and a ratio is the median of "
    .. "the per-round ratios, with their min–max spread in brackets. This machine is "
    .. "shared and noisy: read the ratios, not the absolute figures.")
  both("")
  both("| | |")
  both("|---|---|")
  for _, row in ipairs(info) do
    local value = row[2]
    if row[1]:find("^load average") then value = load_start .. " / " .. load_end end
    both(("| %s | %s |"):format(row[1], value))
  end
  both(("| total time | %.0f s |"):format(elapsed))
  both("")
  both("## Targets")
  both("")
  both("| # | measure | result (median, [min–max]) | target | met |")
  both("|---|---|---|---|---|")
  for _, r in ipairs(ratios) do
    if r.target then
      both(("| %s | %s | %s | %s | %s |"):format(r.bench, r.label, ratio_text(r), r.target,
        r.met and "yes" or "**no**"))
    end
  end
  both("")
  both("## Every figure")
  both("")
  both("| # | variant | min | median | max | unit |")
  both("|---|---|---|---|---|---|")
  for _, id in ipairs(order) do
    local r = results[id]
    both(("| %s | %s | %s | %s | %s | %s |"):format(r.bench, r.label, human(r.stats.min, r.unit),
      human(r.stats.median, r.unit), human(r.stats.max, r.unit), r.unit))
  end
  both("")
  both("Other ratios (no target):")
  both("")
  for _, r in ipairs(ratios) do
    if not r.target then both(("- %s %s: %s"):format(r.bench, r.label, ratio_text(r))) end
  end
  for _, b in ipairs { "B3", "B4", "B5", "B6", "B7" } do
    for _, line in ipairs(notes[b] or {}) do both(("- %s %s"):format(b, line)) end
  end
  for _, f in ipairs(failures) do both("- **failed**: " .. f) end
  both("")
  local extra = sh.read_file("bench/OPTIMISATIONS.md")
  if extra then both(extra) end

  -- the terminal: the same tables, aligned
  txt[#txt + 1] = ("%-4s %-62s %12s %12s %12s  %s"):format("#", "variant", "min", "median",
    "max", "unit")
  for _, id in ipairs(order) do
    local r = results[id]
    txt[#txt + 1] = ("%-4s %-62s %12s %12s %12s  %s"):format(r.bench, r.label:sub(1, 62),
      human(r.stats.min, r.unit), human(r.stats.median, r.unit), human(r.stats.max, r.unit),
      r.unit)
  end
  txt[#txt + 1] = ""
  for _, r in ipairs(ratios) do
    txt[#txt + 1] = ("%-4s %-70s %-22s %-10s %s"):format(r.bench, r.label:sub(1, 70),
      ratio_text(r), r.target or "", r.target and (r.met and "met" or "MISSED") or "")
  end
  return table.concat(md, "\n"), table.concat(txt, "\n")
end

---------------------------------------------------------------------------
-- main

if opt.serve then
  start_servers()
  for _, srv in ipairs { up, app, app2 } do print(srv:url("/"), srv.tls_port or "", srv.dir) end
  io.stdout:flush()
  local deadline = core.monotonic() + opt.serve
  while core.monotonic() < deadline and not sh.read_file(up.dir .. "/stop") do sh.sleep(1) end
  stop_servers()
  return
end

local t0 = core.monotonic()
local load_start = loadavg()
if tonumber(load_start) and tonumber(load_start) > 1 then
  log("load average is %s: other work on this machine will add noise", load_start)
end
local ok, err = pcall(function()
  start_servers()
  for _, b in ipairs { { "B1", b1 }, { "B2", b2 }, { "B3", b3 }, { "B4", b4 }, { "B5", b5 },
    { "B6", b6 }, { "B7", b7 }, { "B8", b8 } } do
    if wanted(b[1]) then
      log("%s: %d runs", b[1], opt.runs)
      local done, why = pcall(b[2])
      if not done then
        failures[#failures + 1] = b[1] .. ": " .. tostring(why)
        log("%s failed: %s", b[1], tostring(why))
      end
    end
  end
end)
local info = app and machine() or {}
stop_servers()
if not ok then error(err, 0) end
local md, txt = report(info, load_start, loadavg(), core.monotonic() - t0)
print(txt)
sh.write_file(opt.out, md .. "\n")
log("wrote %s", opt.out)
if #failures > 0 then os.exit(1) end
