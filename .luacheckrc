std = "max"
color = false -- plain output, for scripts that read the summary line
max_line_length = 100
include_files = {
  "lua", "spec/**/*.lua", "bin", "bench/**/*.lua", "examples/**/*.lua",
  "scripts/*.lua", "soak/*.lua",
  "rockspec/*.rockspec", ".busted", ".luacheckrc",
}
exclude_files = { "build", ".luarocks", "**/node_modules" }
files["spec"] = { std = "+busted" }
files["rockspec/*.rockspec"] = { std = "+rockspec" }
-- Files that run inside nginx see OpenResty's ngx API.
for _, f in ipairs { "lua/iceservers/ngx.lua", "lua/iceservers/ngx/*.lua",
    "lua/iceservers/runtime/http.lua", "lua/iceservers/stun/net_ngx.lua" } do
  files[f] = { std = "max+ngx_lua" }
end
files["soak/mock.lua"] = { std = "max+ngx_lua" }
files["soak/quiesce.lua"] = { std = "max+ngx_lua" }
-- wrk runs this file with its own globals, and each thread keeps its counts in one.
files["soak/wrk.lua"] = {
  globals = { "wrk", "setup", "init", "request", "response", "done", "counts" },
}
