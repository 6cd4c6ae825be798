std = "max"
max_line_length = 100
include_files = {
  "lua", "spec", "bin", "bench/*.lua", "examples", "scripts/*.lua",
  "rockspec/*.rockspec", ".busted", ".luacheckrc",
}
exclude_files = { "build", ".luarocks", "node_modules" }
files["spec"] = { std = "+busted" }
files["rockspec/*.rockspec"] = { std = "+rockspec" }
files["lua/iceservers/ngx*.lua"] = { read_globals = { "ngx" } }
files["lua/iceservers/transport/*.lua"] = { read_globals = { "ngx" } }
