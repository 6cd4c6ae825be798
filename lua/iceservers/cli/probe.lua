--[[
`iceservers probe`: the answer a client would get, every URL of it probed
(iceservers.stun.probe over LuaSocket/LuaSec, all at once), printed as a table
or as JSON.  bin/iceservers hands it the arguments after "probe".

  iceservers probe [--user ID] [--provider LIST] [--timeout S] [--json]
  iceservers probe --url URL [--username U] [--timeout S] [--json]

With --url the credential comes from ICESERVERS_PROBE_CREDENTIAL (a password
on the command line would show in `ps`).  Returns the exit status: 0 when
every URL works, 1 when one fails, when there is no answer, or when the chain
fell back (degraded: no TURN server to probe), 2 on a usage error.  Nothing
printed holds a secret: a credential shows as its username only.
]]
local M = {}

M.USAGE = [=[
usage: iceservers probe [--user ID] [--provider LIST] [--timeout S] [--json]
       iceservers probe --url URL [--username U] [--timeout S] [--json]

Probes every STUN and TURN URL of the answer the main command prints (the
same configuration: TURN_PROVIDER, TURN_SECRET, ...), all at once: a STUN
Binding for stun: URLs; for turn:/turns: URLs an authenticated TURN Allocate
with that answer's credential, released right away.  With --url, one server,
with the username of --username and the password in ICESERVERS_PROBE_CREDENTIAL
(a TURN URL without them is probed up to the server's 401 challenge).

  --user ID        the user id of the credential (as for the main command)
  --provider LIST  provider chain, overrides TURN_PROVIDER
  --timeout S      seconds per URL (default 5)
  --json           one JSON array, an object per URL
  --url URL        probe this URL only

Exit status: 0 every URL works, 1 one does not (or no answer, or the chain
fell back to STUN only), 2 usage.  Name lookups block, outside the timeout.
]=]

local FIELDS = { "url", "ok", "stage", "code", "reason", "error", "rtt_ms", "mapped", "relayed" }

local function parse(argv)
  local opts = { timeout = 5 }
  local takes = { ["--user"] = "user", ["--provider"] = "provider", ["--timeout"] = "timeout",
    ["--url"] = "url", ["--username"] = "username" }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if takes[name] then
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then return nil, name .. " needs a value (see --help)" end
      end
      opts[takes[name]] = value
    elseif a == "--json" then
      opts.json = true
    elseif a == "--help" or a == "-h" then
      opts.help = true
    else
      return nil, "unknown argument '" .. a .. "' (see iceservers probe --help)"
    end
    i = i + 1
  end
  local t = tonumber(opts.timeout)
  if not t or t <= 0 or t > 300 then
    return nil, "--timeout must be seconds, above 0 and at most 300"
  end
  opts.timeout = t
  if opts.url and (opts.user or opts.provider) then
    return nil, "--url probes one server: --user and --provider go without it"
  end
  if opts.username and not opts.url then return nil, "--username goes with --url" end
  return opts
end

-- What the broker's answer gives to probe: each URL with its entry's credential.
local function items_of(servers)
  local items = {}
  for _, entry in ipairs(servers) do
    local cred = entry.username and { username = entry.username, credential = entry.credential }
    for _, url in ipairs(entry.urls) do items[#items + 1] = { url = url, credential = cred } end
  end
  return items
end

-- "host:port:address,..." as the broker reads ICESERVERS_RESOLVE.
local function pins(value)
  if not value or value == "" then return nil end
  local map = {}
  for item in value:gmatch("[^,%s]+") do
    local hostport, addr = item:match("^(.+:%d+):(.+)$")
    if hostport then map[hostport] = addr end
  end
  return map
end

local function detail(r)
  if r.ok and r.checked == false then return "reachable, credentials not checked" end
  if r.ok then return r.warning and ("ok (" .. r.warning .. ")") or "ok" end
  return r.error or r.stage
end

local function table_text(results)
  local rows = { { "URL", "VERDICT", "RTT", "ADDRESS", "DETAIL" } }
  for _, r in ipairs(results) do
    rows[#rows + 1] = { r.url, r.ok and "ok" or "FAIL",
      r.rtt_ms and ("%.1f ms"):format(r.rtt_ms) or "-",
      r.relayed and ("relayed " .. r.relayed) or (r.mapped and ("mapped " .. r.mapped)) or "-",
      detail(r) }
  end
  local width = {}
  for _, row in ipairs(rows) do
    for c = 1, 4 do width[c] = math.max(width[c] or 0, #row[c]) end
  end
  local out = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for c = 1, 4 do cells[c] = row[c] .. (" "):rep(width[c] - #row[c]) end
    cells[5] = row[5]
    out[#out + 1] = table.concat(cells, "  ")
  end
  return table.concat(out, "\n") .. "\n"
end

local function json_text(results, cjson)
  local out = {}
  for i, r in ipairs(results) do
    local o = {}
    for _, k in ipairs(FIELDS) do
      local v = r[k]
      if v == nil then v = cjson.null end
      o[#o + 1] = cjson.encode(k) .. ":" .. cjson.encode(v)
    end
    out[i] = "{" .. table.concat(o, ",") .. "}"
  end
  return "[" .. table.concat(out, ",") .. "]\n"
end

-- main(argv, env, out, err) -> exit status.  env: function(name) (os.getenv);
-- out, err: files (io.stdout, io.stderr).
function M.main(argv, env, out, err)
  env, out, err = env or os.getenv, out or io.stdout, err or io.stderr
  local function say(msg) err:write("iceservers probe: ", msg, "\n") end
  local opts, why = parse(argv)
  if not opts then say(why); return 2 end
  if opts.help then out:write(M.USAGE); return 0 end

  local ok_socket, net_socket = pcall(require, "iceservers.stun.net_socket")
  if not ok_socket then say(tostring(net_socket)); return 1 end
  local core, cjson = require "iceservers.core", require "cjson"
  local probe = require "iceservers.stun.probe"

  local items, degraded, label
  if opts.url then
    local password = env("ICESERVERS_PROBE_CREDENTIAL")
    local cred = opts.username and password and password ~= ""
      and { username = opts.username, credential = password } or nil
    if opts.username and not cred then
      say("--username needs the password in ICESERVERS_PROBE_CREDENTIAL; probing without it")
    end
    items = { { url = opts.url, credential = cred } }
    label = cred and ("credential of " .. opts.username) or "no credential"
  else
    local iceservers = require "iceservers"
    local lookup = env
    if opts.provider then
      lookup = function(name)
        if name == "TURN_PROVIDER" then return opts.provider end
        return env(name)
      end
    end
    local function log(level, msg)
      if level == "error" or level == "warn" then say(level .. ": " .. msg) end
    end
    local built, broker = pcall(iceservers.from_env, lookup, { log = log })
    if not built then
      say((tostring(broker):match("^[^\n]*"):gsub("^iceservers: ", "")))
      return 1
    end
    local servers, meta = broker:get(opts.user)
    if not servers then say(tostring(meta):match("^[^\n]*")); return 1 end
    items, degraded = items_of(servers), meta.degraded
    local user
    for _, e in ipairs(servers) do user = user or e.username end
    label = ("provider %s, %s"):format(meta.provider, user and ("username " .. user)
      or "no TURN credential")
  end

  local net = net_socket.new { resolve = pins(env("ICESERVERS_RESOLVE")),
    cafile = env("ICESERVERS_CA_FILE") ~= "" and env("ICESERVERS_CA_FILE") or nil }
  local results = probe.list(items, { net = net, crypto = core, now = core.monotonic,
    timeout = opts.timeout, run = net.run })

  local good = 0
  for _, r in ipairs(results) do if r.ok then good = good + 1 end end
  if opts.json then
    out:write(json_text(results, cjson))
  else
    out:write(table_text(results))
    out:write(("%d of %d URLs work (%s)\n"):format(good, #results, label))
  end
  if degraded then
    say("every provider failed and the STUN fallback served: the TURN servers were not probed, "
      .. "there were none to probe")
    return 1
  end
  return good == #results and #results > 0 and 0 or 1
end

return M
