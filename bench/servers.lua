--[[
The nginx servers of the benchmarks (spec/support/nginx.lua), for bench/run.lua
and bench/callgrind.lua alike:

  servers.upstream(b5_body)  -> the provider API mock (bench/upstream.lua) and,
                                with b5_body, B5's fixed answer at /b5
  servers.app(up, workers)   -> the benchmark nginx (bench/nginx.conf, the
                                locations of bench/app.lua), whose brokers call up
]]
local nginx = require "support.nginx"

local M = {}

function M.upstream(b5_body)
  return nginx.start {
    http = [[
      lua_shared_dict bench_upstream 1m;
      init_by_lua_block { package.path = "${root}/?.lua;" .. package.path }
    ]],
    server = (b5_body and ([[
      location = /b5 { default_type application/json; return 200 '%s'; }
    ]]):format(b5_body) or "") .. [[
      keepalive_requests 100000000;
      location / { content_by_lua_file ${root}/bench/upstream.lua; }
    ]],
  }
end

-- location -> the handler of bench/app.lua it calls
local LOCATIONS = {
  { "= /ice-servers/coturn", "coturn" }, { "= /ice-servers/rest", "rest" },
  { "= /ceiling/coturn", "ceiling_coturn" }, { "= /ceiling/rest", "ceiling_rest" },
  { "= /ceiling/bare", "ceiling_bare" }, { "= /ice-servers/pool", "pool" },
  { "= /ice-servers/user", "user" }, { "= /ice-servers/guarded", "guarded" },
  { "= /ceiling/guarded", "ceiling_guarded" }, { "= /b8", "verify_rate" },
  { "= /b1", "sign" }, { "^~ /b4/", "b4" },
  { "= /drive", "drive" }, { "= /b5", "b5" }, { "= /b7", "probe" }, { "= /b7round", "round" },
  { "= /lua-heap", "lua_heap" }, { "= /versions", "versions" },
}

function M.app(up, workers)
  local server = {}
  for i, l in ipairs(LOCATIONS) do
    server[i] = ('location %s { content_by_lua_block { require("bench.app").%s() } }')
      :format(l[1], l[2])
  end
  return nginx.start { template = "bench/nginx.conf", workers = workers, ca_file = up.ca_file,
    http = ([[
      init_worker_by_lua_block {
        require("bench.app").init { upstream = "https://mock.test:%d",
          resolve = "mock.test:%d:127.0.0.1" }
      }
    ]]):format(up.tls_port, up.tls_port),
    server = table.concat(server, "\n") }
end

return M
