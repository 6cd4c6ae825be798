--[[
The broker's top-level settings, declared once: from this list come the
check of a config table (a misspelt key is an error), the variables
from_env reads, the error messages ("cache_ttl (ICESERVERS_CACHE_TTL): ..."),
and the documentation's tables (scripts/doc-tables.lua; spec/docs_spec.lua
checks the docs hold every row).

  { name =, env = "VAR" (none: config only), type = a coercion of
    iceservers.options or one below, default =, empty = "value" (a variable
    set but empty is a value, not unset), sep = (a list's separator), doc = }

A config key that is not declared is a provider's sub-table of options
(`coturn = {...}`): it must be a table.
]]
local options = require "iceservers.options"
local normalize = require "iceservers.normalize"

local M = {}

local DEFAULT_STUN = "stun:stun.l.google.com:19302"

-- doc: markdown, one paragraph (its line breaks and indentation are blanks).
M.LIST = {
  { name = "providers", env = "TURN_PROVIDER", type = "list", default = "stun",
    doc = [[a provider name or a comma-separated chain (`"metered,coturn"`, or an array);
    default `stun`; the CLI's `--provider` overrides the variable]] },
  { name = "stun_urls", env = "STUN_URLS", type = "stun_urls", default = DEFAULT_STUN,
    empty = "value", doc = [[comma list or array of `stun:`/`stuns:` URLs; default
    `stun:stun.l.google.com:19302`; empty for none]] },
  { name = "fallback", env = "TURN_FALLBACK", type = "fallback", default = "stun",
    doc = [[`stun` (default): serve STUN only when every provider fails; `none`: return
    `nil, err`]] },
  { name = "providers_dir", env = "ICESERVERS_PROVIDERS_DIR", type = "list", sep = ":",
    doc = [[directories (`:`-separated string, or an array) searched for `<name>.lua`
    before the built-ins]] },
  { name = "ca_file", env = "ICESERVERS_CA_FILE", type = "string", doc = [[a PEM CA bundle
    to verify provider APIs against (TLS is always verified)]] },
  { name = "http_timeout", env = "ICESERVERS_HTTP_TIMEOUT", type = "seconds", default = 5,
    doc = [[seconds for a whole provider call; default `5`]] },
  { name = "connect_timeout", env = "ICESERVERS_CONNECT_TIMEOUT", type = "seconds",
    default = 2, doc = [[seconds to connect (TLS handshake included); default `2`]] },
  { name = "resolve", env = "ICESERVERS_RESOLVE", type = "resolve", doc = [[`host:port:address`
    entries, comma-separated (a table `{["host:port"] = "address"}` in config): connect there
    while TLS still checks the name, as curl's `--resolve`; to pin a provider's address]] },
  { name = "cache_ttl", env = "ICESERVERS_CACHE_TTL", type = "ttl", default = 3600,
    doc = [[lifetime assumed for an answer that carries none and for which none can be
    asked (Metered with an API key, Xirsys): seconds, or with an `s`/`m`/`h`/`d` suffix,
    60 s .. 7 d (outside is an error); default `3600`]] },
  { name = "allow_http", env = "ICESERVERS_ALLOW_HTTP", type = "boolean", default = false,
    doc = [[`1` lets the built-in providers' base URLs (`*_API_URL`) be `http://`, for
    tests against a local mock; otherwise they must be `https://`. A provider's own
    `ctx.http` calls are not affected]] },
  { name = "max_urls", env = "ICESERVERS_MAX_URLS", type = "max_urls", default = 4,
    doc = [[the most URLs an answer holds, STUN included (`rest`: its TURN URIs); default
    `4` (Firefox warns above 2 and has problems from 5); `0`: no cap. The cap keeps one
    URL of each class in turn: STUN, TURN over UDP, TURN over TLS (port 443 first), TURN
    over TCP (docs/shaping.md)]] },
  { name = "rest_ipv6", env = "ICESERVERS_REST_IPV6", type = "boolean", default = false,
    doc = [[`1` keeps TURN URLs with an IPv6 literal host in the `rest` format; by default
    they are left out of it, as Janus splits its URIs on `:` (the `webrtc` format keeps
    them)]] },
  { name = "log", type = "function", doc = [[`function(level, msg)`, level `error`,
    `warn`, `info` or `debug`; default: warnings and errors on stderr]] },
  { name = "http", type = "function", doc = [[the HTTP transport handed to providers as
    `ctx.http` (default: cosockets in the nginx phases that have them, else a libcurl
    client of `iceservers.core`)]] },
  { name = "now", type = "function",
    doc = [[the clock, `function() -> Unix seconds` (default `os.time`); for tests]] },
  { name = "clock", type = "function", doc = [[a monotonic clock, `function() -> seconds`,
    to time provider calls (default `core.monotonic`)]] },
  { name = "on_event", type = "function", doc = [[`function(event, provider, value)`,
    called for `hit`, `miss`, `stale` (cached answers), `upstream` (a provider's HTTP
    call; `value` its milliseconds), `failure` and `degraded`; `iceservers.ngx` counts
    them for `metrics()`]] },
  { name = "health", type = "health", doc = [[`function(url) -> false when the URL is
    down` (anything else: up), or `{up = that function, version = function() -> a value
    that changes when any URL's state does}` (then the broker asks again only then):
    answers leave down URLs out, and a TURN provider all of whose TURN URLs are down
    counts as failed (docs/health.md); `iceservers.ngx` sets it from the prober's
    state]] },
  { name = "cache", type = "backend", doc = [[the cache backend, `{get = function(self,
    key), set = function(self, key, value)}` (and optionally `lock`/`unlock`); default: a
    Lua table in this process]] },
}

local BY_NAME = {}
for _, s in ipairs(M.LIST) do BY_NAME[s.name] = s end
M.BY_NAME = BY_NAME

-- How an error names a setting: with its variable, if it has one.
function M.label(s)
  if s.env then return ("%s (%s)"):format(s.name, s.env) end
  return "config." .. s.name
end

-- The STUN URLs, checked and in canonical form, duplicates dropped.
local function stun_urls(v, spec)
  local list, err = options.coerce.list(v, spec)
  if not list then return nil, err end
  return normalize.canonical_urls(list, false)
end

-- "host:port:address,..." -> {["host:port"] = "address"}
local function resolve_map(v)
  if type(v) == "table" then
    for k, addr in pairs(v) do
      if type(k) ~= "string" or type(addr) ~= "string" then
        return nil, "must map \"host:port\" strings to address strings"
      end
    end
    return v
  end
  if type(v) ~= "string" then return nil, "must be a table or a string" end
  local map = {}
  for item in v:gmatch("[^,%s]+") do
    local hostport, addr = item:match("^([^:]+:%d+):(.+)$")
    if not hostport then return nil, ("entry %q is not host:port:address"):format(item) end
    map[hostport] = addr
  end
  return map
end

local function max_urls(v)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < 0 or n > 1000 then
    return nil, "must be a whole number of URLs, 0 (no cap) to 1000"
  end
  return n
end

local function fallback(v)
  if v ~= "stun" and v ~= "none" then
    return nil, ("must be \"stun\" or \"none\", not %q"):format(tostring(v))
  end
  return v
end

local function backend(v)
  if type(v) ~= "table" or type(v.get) ~= "function" or type(v.set) ~= "function" then
    return nil, "must be a backend with get and set methods"
  end
  return v
end

-- A health source as the broker reads it: {up = function(url), version =
-- function() -> a value that changes whenever a URL's state may have}.  A bare
-- function(url) gets a version that is new on every call: every URL is asked
-- on every request.
local function health(v)
  if type(v) == "function" then return { up = v, version = function() return {} end } end
  if type(v) ~= "table" or type(v.up) ~= "function" or type(v.version) ~= "function" then
    return nil, "must be a function(url) or a table {up = function, version = function}"
  end
  return v
end

M.TYPES = setmetatable({ stun_urls = stun_urls, resolve = resolve_map, fallback = fallback,
  backend = backend, health = health, max_urls = max_urls }, { __index = options.coerce })

-- The config of the variables that lookup(name) gives (unset and empty ones
-- left out, but for a setting where empty is a value).
function M.from_env(lookup)
  local config = {}
  for _, s in ipairs(M.LIST) do
    if s.env then
      local v = lookup(s.env)
      if v == "" and s.empty ~= "value" then v = nil end
      config[s.name] = v
    end
  end
  return config
end

-- Each declared setting of config through its type's coercion (or its
-- default); raises a one-line error naming the first bad one.
function M.resolve(config)
  for key, value in pairs(config) do
    if type(key) ~= "string" or (not BY_NAME[key] and type(value) ~= "table") then
      error(("iceservers: unknown config key '%s'"):format(tostring(key)), 0)
    end
  end
  local out, err = options.settle(M.LIST, config, M.TYPES, M.label)
  if not out then error("iceservers: " .. err, 0) end
  return out
end

return M
