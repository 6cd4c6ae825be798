--[[
Instructions per request of the benchmark nginx's worker (bench/nginx.conf,
bench/app.lua), counted by callgrind: the figure that does not depend on the
machine's load, next to B3's requests per second.

  lua5.4 bench/callgrind.lua [N] [LOCATION...]

N requests (2000 by default) of each location (B3's four by default), after
300 that warm LuaJIT's traces and the REST cache; prints one line per
location (a location whose name holds "guarded" gets the bench's JWT as
Bearer).  The worker runs alone (master_process off) under valgrind, with
one keep-alive client (curl); the upstream nginx runs natively.  Under
valgrind, OpenSSL's SHA-1 runs without the SHA extensions: signing counts
about three times what it costs natively.  Needs make bench's build of the
5.1 core (build/5.1).
]]
package.path = "spec/?.lua;spec/?/init.lua;lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath
local nginx = require "support.nginx"
local servers = require "bench.servers"
local sh = require "support.sh"
local common = require "bench.common"
local BEARER = common.jwt_token(require "iceservers.core", require "cjson")

local N = tonumber(arg[1]) or 2000
local WARM = 300
local locations = { table.unpack(arg, 2) }
if #locations == 0 then
  locations = { "/ceiling/coturn", "/ice-servers/coturn", "/ceiling/rest", "/ice-servers/rest" }
end

local up = servers.upstream()
local app = servers.app(up, 1)

-- The same configuration again, now in the foreground under callgrind.
local dir, port = app.dir, app.port
assert(sh.run("kill " .. app.pid))
local stop_by = nginx.now() + 10
while nginx.is_listening(port) do
  assert(nginx.now() < stop_by, "the native nginx did not stop")
  nginx.sleep(0.1)
end
local out = dir .. "/callgrind.out"
local q = sh.quote
assert(sh.run(("cd %s && exec valgrind --tool=callgrind --callgrind-out-file=%s nginx -p %s/ "
  .. "-c %s/nginx.conf -e %s/error.log -g 'daemon off; master_process off;' "
  .. ">%s/valgrind.log 2>&1 & echo $! >%s/valgrind.pid")
  :format(q(dir), q(out), q(dir), q(dir), q(dir), q(dir), q(dir))))
local valgrind_pid = assert(sh.read_file(dir .. "/valgrind.pid"):match("%d+"))
local started = nginx.now()
while not nginx.is_listening(port) do
  assert(nginx.now() - started < 60, "nginx under callgrind did not start")
  nginx.sleep(0.2)
end

-- n keep-alive GETs of loc by one curl, every answer a 200.  (A header line
-- of a curl config holds for every URL of it: written once.)
local function get(loc, n)
  local lines = {}
  for i = 1, n do
    lines[i] = ('url = "http://127.0.0.1:%d%s"\noutput = /dev/null\nwrite-out = "%%{http_code}\\n"')
      :format(port, loc)
  end
  if loc:find("guarded", 1, true) then
    table.insert(lines, 1, ('header = "Authorization: Bearer %s"'):format(BEARER))
  end
  sh.write_file(dir .. "/curl.conf", table.concat(lines, "\n") .. "\n")
  local ok, codes = sh.run("curl -s -K " .. q(dir .. "/curl.conf"))
  local _, twohundreds = codes:gsub("200\n", "")
  assert(ok and twohundreds == n, loc .. ": not every answer was a 200: " .. codes:sub(1, 80))
end

-- The instructions counted since the last zeroing: a dump, then its summary.
local dumps = 0
local function counted()
  assert(sh.run("callgrind_control -d " .. valgrind_pid .. " >/dev/null"))
  dumps = dumps + 1
  local text
  local by = nginx.now() + 10
  repeat
    nginx.sleep(0.2)
    text = sh.read_file(out .. "." .. dumps)
  until (text and text:find("\ntotals:")) or nginx.now() > by
  return assert(tonumber(text and text:match("\nsummary: (%d+)")), "no callgrind dump")
end

for _, loc in ipairs(locations) do
  get(loc, WARM)
  assert(sh.run("callgrind_control -z >/dev/null"))
  get(loc, N)
  print(("%-22s %8.0f instructions per request"):format(loc, counted() / N))
end

sh.run("kill " .. valgrind_pid)
nginx.sleep(1)
up:stop()
sh.rmrf(dir)
