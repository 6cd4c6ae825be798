--[==[
A real nginx (with the lua-nginx-module loaded) on loopback ports, for specs.

  local nginx = require "support.nginx"
  local srv = nginx.start{
    server = [[ location = /hi { return 200 "hi"; } ]], -- inside every server{}
    http   = [[ lua_shared_dict calls 1m; ]],           -- http{} context (optional)
    main   = [[ env HOME; ]],                           -- main context (optional)
    tls    = true,        -- default true: also a TLS server on srv.tls_port
    names  = { "api.test" }, -- extra certificate names (localhost, mock.test and
                             -- 127.0.0.1 are always in it)
    workers = 1,
    log_level = "warn",
  }
  srv:url("/hi")                    --> "http://127.0.0.1:PORT/hi"
  srv:tls_url("/hi")                --> "https://localhost:TLSPORT/hi"
  srv:tls_url("/hi", "mock.test")   --> "https://mock.test:TLSPORT/hi" (needs resolve)
  srv:silent_url("/x")              --> a server that reads the request, never answers
  srv.port, srv.tls_port, srv.silent_port, srv.ca_file, srv.cert_file, srv.key_file,
  srv.dir, srv.pid, srv:error_log(), srv:access_log()
  srv:stop()                        -- in teardown; bounded; removes srv.dir

The server, http and main texts may use ${port}, ${tls_port}, ${silent_port},
${dir}, ${root} (this checkout), ${ca_file}, ${cert_file}, ${key_file}; any
other ${name} is left alone for nginx ($request_method, ${host}...).

Also: nginx.free_port() (a loopback port nobody listens on, so connecting is
refused; nginx.refused_port is the same function), nginx.is_listening(port),
nginx.now() (monotonic seconds, for time bounds), nginx.sleep(seconds),
nginx.certs(names) (the CA and a server certificate, made once per process),
nginx.run(cmd) (sh with a clean environment: ok, output, exit code).
Servers still running when the interpreter closes are stopped then, and the
certificates removed; set ICESERVERS_KEEP_NGINX=1 to keep the directories.

Shell, file, process and port helpers come from support.sh.  Every command
runs without LD_PRELOAD and *SAN_OPTIONS (sh.run_clean), so a sanitizer run of
the specs does not leak into nginx or openssl.  nginx runs as a daemon: the
start command returns once its sockets are bound (or failed to bind: then
other ports are tried).
]==]
local sh = require "support.sh"

local M = {}

local MODULES = "/usr/lib/nginx/modules"
local START_DEADLINE = 10 -- seconds until a started nginx must accept
local STOP_DEADLINE = 5

-- State that must outlive busted's per-file insulation (which drops modules
-- from package.loaded): the certificates are made once per process, and the
-- servers still running when the interpreter closes are stopped then.  Made
-- at the end of this file (the cleanup needs Server).
local REG_KEY = "iceservers.spec.support.nginx"
local state

local quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file
local run = sh.run_clean

M.run = run
M.now = sh.now
M.sleep = sh.sleep

---------------------------------------------------------------------------
-- ports

function M.is_listening(port)
  local _, listening, readable = sh.sockets("tcp")
  if readable then return listening[port] ~= nil end
  return sh.connects(port)
end

-- A loopback port that nothing uses now (nothing listens: connecting to it is
-- refused until someone binds it); never the same one twice in a process.
M.free_port = sh.free_port
M.refused_port = M.free_port

---------------------------------------------------------------------------
-- certificates: one EC P-256 CA per process, one server cert per name set

local DEFAULT_NAMES = { "localhost", "mock.test", "127.0.0.1" }

local function alt_names(names)
  local seen, list = {}, {}
  local function add(n)
    assert(type(n) == "string" and n:match("^[%w%.%-%*:]+$"), "bad certificate name")
    if not seen[n] then
      seen[n] = true
      list[#list + 1] = n
    end
  end
  for _, n in ipairs(DEFAULT_NAMES) do add(n) end
  for _, n in ipairs(names or {}) do add(n) end
  local san = {}
  for i, n in ipairs(list) do
    san[i] = (n:match("^%d+%.%d+%.%d+%.%d+$") or n:find(":", 1, true)) and ("IP:" .. n)
      or ("DNS:" .. n)
  end
  return table.concat(san, ",")
end

-- A CA (ca.key, ca.crt) in dir: the one that signs the test certificates, or
-- another that signed none of them (for "untrusted" cases).
local function openssl_ca(dir, name)
  local ok, out = run(("set -e; cd %s; "
    .. "openssl ecparam -name prime256v1 -genkey -noout -out ca.key; "
    .. "openssl req -x509 -new -key ca.key -sha256 -days 3 -subj '/CN=%s' "
    .. "-addext 'basicConstraints=critical,CA:TRUE' "
    .. "-addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.crt"):format(quote(dir),
      name or "iceservers test CA"))
  assert(ok, "support.nginx: making the test CA failed:\n" .. out)
  return dir .. "/ca.crt"
end
M.make_ca = openssl_ca

local function openssl_server(dir, n, san)
  local base = "server" .. n
  write_file(dir .. "/" .. base .. ".ext", table.concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=" .. san,
  }, "\n") .. "\n")
  local ok, out = run(("set -e; cd %s; "
    .. "openssl ecparam -name prime256v1 -genkey -noout -out %s.key; "
    .. "openssl req -new -key %s.key -subj '/CN=localhost' -out %s.csr; "
    .. "openssl x509 -req -in %s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 "
    .. "-sha256 -extfile %s.ext -out %s.crt"):format(quote(dir), base, base, base, base, base,
      base))
  assert(ok, "support.nginx: making a server certificate failed:\n" .. out)
  return dir .. "/" .. base .. ".crt", dir .. "/" .. base .. ".key"
end

-- Returns { ca_file, cert_file, key_file } for the default names plus `names`.
function M.certs(names)
  local san = alt_names(names)
  if not state.certs_dir then
    state.certs_dir = sh.tmpdir("certs")
    openssl_ca(state.certs_dir)
    state.certs = {}
  end
  local c = state.certs[san]
  if not c then
    state.cert_count = (state.cert_count or 0) + 1
    local crt, key = openssl_server(state.certs_dir, state.cert_count, san)
    c = { ca_file = state.certs_dir .. "/ca.crt", cert_file = crt, key_file = key }
    state.certs[san] = c
  end
  return c
end

---------------------------------------------------------------------------
-- nginx

-- The checkout this file lives in: <root>/spec/support/nginx.lua.
local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:match("^(.*)/spec/support/[^/]*$") or "."
  if root:sub(1, 1) ~= "/" then
    local _, cwd = run("pwd")
    cwd = cwd:gsub("%s+$", "")
    root = root == "." and cwd or (cwd .. "/" .. root)
  end
  return root
end

-- Temp path directives for the modules this nginx was built with.
local function temp_paths(dir)
  if not state.nginx_v then
    local _, out = run("nginx -V")
    state.nginx_v = out
  end
  local lines = { ("client_body_temp_path %s/tmp/body;"):format(dir) }
  for _, m in ipairs{ "proxy", "fastcgi", "uwsgi", "scgi" } do
    if not state.nginx_v:find("--without-http_" .. m .. "_module", 1, true) then
      lines[#lines + 1] = ("%s_temp_path %s/tmp/%s;"):format(m, dir, m)
    end
  end
  return table.concat(lines, "\n  ")
end

local function expand(text, vars)
  return (tostring(text or ""):gsub("%${([%w_]+)}", function(k)
    local v = vars[k]
    return v ~= nil and tostring(v) or nil
  end))
end

local CONF = [[
# written by spec/support/nginx.lua
${user}
daemon on;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${log_level};
load_module ${modules}/ndk_http_module.so;
load_module ${modules}/ngx_http_lua_module.so;

events {
  worker_connections 256;
}

${main}

http {
  access_log ${dir}/access.log;
  default_type application/octet-stream;
  ${temp_paths}
  lua_package_path "${root}/lua/?.lua;${root}/lua/?/init.lua;${root}/spec/?.lua;;";
  lua_package_cpath "${root}/build/5.1/?.so;;";
  client_body_buffer_size 2m;
  client_max_body_size 2m;

  ${http}

  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    ${server}
  }
${tls_server}
  server {
    listen 127.0.0.1:${silent_port};
    server_name silent;
    location / {
      lua_check_client_abort on;
      content_by_lua_block { ngx.sleep(3600) }
    }
  }
}
]]

local TLS_SERVER = [[

  server {
    listen 127.0.0.1:${tls_port} ssl;
    server_name localhost;
    ssl_certificate ${cert_file};
    ssl_certificate_key ${key_file};
    ${server}
  }
]]

local Server = {}
Server.__index = Server

function Server:__tostring()
  return ("support.nginx server (http %s, https %s, dir %s)"):format(self.port,
    tostring(self.tls_port), self.dir)
end

function Server:url(path, host)
  return ("http://%s:%d%s"):format(host or "127.0.0.1", self.port, path or "/")
end

function Server:tls_url(path, host)
  assert(self.tls_port, "this server was started with tls = false")
  return ("https://%s:%d%s"):format(host or "localhost", self.tls_port, path or "/")
end

function Server:silent_url(path)
  return ("http://127.0.0.1:%d%s"):format(self.silent_port, path or "/")
end

function Server:error_log()
  return read_file(self.dir .. "/error.log") or ""
end

function Server:access_log()
  return read_file(self.dir .. "/access.log") or ""
end

-- Fast shutdown (TERM: a sleeping silent request does not delay it), bounded,
-- then KILL for the master and its workers.  Removes the directory unless
-- ICESERVERS_KEEP_NGINX is set.  Safe to call twice.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  state.running[self] = nil
  sh.terminate(self.pid, STOP_DEADLINE, true) -- the master and its workers
  if not os.getenv("ICESERVERS_KEEP_NGINX") then sh.rmrf(self.dir) end
end

local function read_pid(dir)
  local s = read_file(dir .. "/nginx.pid")
  return s and tonumber(s:match("%d+"))
end

--[[
M.start(opts) starts one nginx and returns a Server.  opts:
  server, http, main   text for the generated config (placeholders ${port} ...)
  tls (true), names, workers (1), log_level ("warn")
  template   instead: a whole nginx.conf to fill in, such as the example
             examples/nginx/nginx.conf (${port} ${root} ${prefix} ${workers}
             ${user} ${resolver} ${ca_file}); no TLS or silent server then
  env        {NAME = value}: environment of nginx (listed with `env` in the
             template, workers see them)
]]
function M.start(opts)
  opts = opts or {}
  local tls = opts.tls ~= false and not opts.template
  local certs = tls and M.certs(opts.names) or {}
  local root = repo_root()
  local dir = sh.tmpdir("nginx")
  assert(run("mkdir -p " .. quote(dir .. "/tmp") .. " " .. quote(dir .. "/html")))
  local _, uid = run("id -u")

  local srv = setmetatable({ dir = dir, root = root, ca_file = certs.ca_file,
    cert_file = certs.cert_file, key_file = certs.key_file }, Server)
  for attempt = 1, 6 do
    srv.port, srv.silent_port = M.free_port(), M.free_port()
    srv.tls_port = tls and M.free_port() or nil
    local vars = {
      port = srv.port, tls_port = srv.tls_port, silent_port = srv.silent_port, dir = dir,
      root = root, ca_file = srv.ca_file, cert_file = srv.cert_file, key_file = srv.key_file,
    }
    local conf_vars = setmetatable({
      user = uid:match("^0%s*$") and "user root;" or "",
      workers = tonumber(opts.workers) or 1,
      log_level = opts.log_level or "warn",
      modules = MODULES,
      temp_paths = temp_paths(dir),
      main = expand(opts.main, vars),
      http = expand(opts.http, vars),
      server = expand(opts.server, vars),
    }, { __index = vars })
    conf_vars.tls_server = tls and expand(TLS_SERVER, conf_vars) or ""
    if opts.template then
      local text = assert(read_file(opts.template))
      write_file(dir .. "/nginx.conf", expand(text, setmetatable({
        prefix = dir, user = uid:match("^0%s*$") and "root" or "nobody",
        resolver = opts.resolver or "127.0.0.1", ca_file = opts.ca_file or certs.ca_file
          or M.certs().ca_file,
      }, { __index = conf_vars })))
    else
      write_file(dir .. "/nginx.conf", expand(CONF, conf_vars))
    end
    write_file(dir .. "/error.log", "")
    local env = {}
    for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. quote(v) end
    local ok, out = run(("%snginx -p %s/ -c %s/nginx.conf -e %s/error.log >%s/start.log 2>&1")
      :format(#env > 0 and ("env " .. table.concat(env, " ") .. " ") or "",
        quote(dir), quote(dir), quote(dir), quote(dir)))
    if ok then break end
    local log = out .. (read_file(dir .. "/start.log") or "") .. srv:error_log()
    if attempt == 6 or not log:find("in use", 1, true) then -- else: a port was taken
      sh.rmrf(dir)
      error("support.nginx: nginx did not start:\n" .. log, 2)
    end
  end

  -- The daemon has bound its sockets before the start command returned; wait
  -- for the pid file and for every port to accept, within a deadline.
  local deadline = M.now() + START_DEADLINE
  while true do
    srv.pid = srv.pid or read_pid(dir)
    if srv.pid and M.is_listening(srv.port)
      and (opts.template or M.is_listening(srv.silent_port))
      and (not tls or M.is_listening(srv.tls_port)) then
      break
    end
    if M.now() > deadline or (srv.pid and not sh.alive(srv.pid)) then
      local log = srv:error_log()
      srv:stop()
      error("support.nginx: nginx did not come up within " .. START_DEADLINE .. " s:\n" .. log, 2)
    end
    M.sleep(0.05)
  end
  state.running[srv] = true
  return srv
end

---------------------------------------------------------------------------
-- process-wide state and the cleanup when the interpreter closes

state = sh.process_state(REG_KEY, function() return { running = {} } end, function(st)
  for srv in pairs(st.running) do pcall(Server.stop, srv) end
  if st.certs_dir and not os.getenv("ICESERVERS_KEEP_NGINX") then pcall(sh.rmrf, st.certs_dir) end
end)

return M
