-- The broker: a validated configuration, the provider chain, and get(), which
-- tries each provider in order (through the cache and backoff for providers
-- whose answers are shared), normalizes the answer, puts the STUN servers
-- first, and falls back to STUN only when every provider fails.
local cache = require "iceservers.cache"
local context = require "iceservers.context"
local encode = require "iceservers.encode"
local loader = require "iceservers.loader"
local normalize = require "iceservers.normalize"
local options = require "iceservers.options"
local rest = require "iceservers.rest"

local M = {}

local Broker = {}
Broker.__index = Broker

local concat, floor = table.concat, math.floor
local quote = encode.string
local WEAK_KEYS = { __mode = "k" }
local NOTHING = {} -- the provider list of a fallback answer (never modified)

local DEFAULT_STUN = { "stun:stun.l.google.com:19302" }
local TOP_KEYS = {
  providers = true, stun_urls = true, fallback = true, providers_dir = true,
  log = true, http = true, now = true, clock = true, cache = true, on_event = true,
  ca_file = true, http_timeout = true, connect_timeout = true, resolve = true, cache_ttl = true,
  allow_http = true,
}

local function fail(fmt, ...)
  error("iceservers: " .. fmt:format(...), 0)
end

local function strip(msg)
  return (tostring(msg):gsub("^iceservers: ", ""))
end

local function first_line(s)
  return (tostring(s):match("^[^\r\n]*"))
end

local function list_of(value, what, sep)
  if type(value) == "string" then
    local out = {}
    for item in value:gmatch("[^" .. sep .. "]+") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then out[#out + 1] = item end
    end
    return out
  end
  local out, err = options.parse_list(value)
  if not out then fail("%s %s", what, err) end
  return out
end

local function stun_entry(urls)
  local canonical, seen = {}, {}
  for _, raw in ipairs(urls) do
    local url, err = normalize.parse_url(raw)
    if not url then fail("stun_urls: invalid URL %q: %s", raw, err) end
    if url.turn then
      fail("stun_urls holds a TURN URL (%s); TURN URLs belong to a provider", url.url)
    end
    if not seen[url.url] then
      seen[url.url] = true
      canonical[#canonical + 1] = url.url
    end
  end
  if #canonical == 0 then return nil, seen end
  return { urls = canonical }, seen
end

-- ICESERVERS_RESOLVE "host:port:address,..." -> {["host:port"] = "address"}
local function resolve_map(value)
  if value == nil or type(value) == "table" then return value end
  if type(value) ~= "string" then fail("resolve must be a table or a string") end
  local map = {}
  for item in value:gmatch("[^,%s]+") do
    local hostport, addr = item:match("^([^:]+:%d+):(.+)$")
    if not hostport then
      fail("resolve (ICESERVERS_RESOLVE) entry %q is not host:port:address", item)
    end
    map[hostport] = addr
  end
  return map
end

-- cache_ttl is parsed as TURN_TTL is: the cache's safety margin (at least
-- 30 s) would leave nothing to cache in a shorter lifetime.
local function ttl_setting(value, what, default)
  if value == nil then return default end
  local secs, err = options.parse_ttl(value)
  if not secs then fail("%s: %s", what, err) end
  return secs
end

local function flag(value, what)
  if value == nil then return false end
  local b = options.parse_boolean(value)
  if b == nil then fail("%s must be a boolean (true/false, 1/0)", what) end
  return b
end

local function positive(value, what, default)
  if value == nil then return default end
  local n = tonumber(value)
  if not n or n <= 0 then fail("%s must be a positive number of seconds", what) end
  return n
end

-- Secrets under 4 bytes would blank out ordinary words of the message.
local function redact(s, secrets)
  return rest.redact(s, secrets, 4)
end

-- The values a provider declared secret, and any its configure() added.
local function secrets_of(decl, opts)
  local out = {}
  for key, spec in pairs(decl) do
    if spec.secret and type(opts[key]) == "string" then out[#out + 1] = opts[key] end
  end
  for _, v in ipairs(type(opts.redact) == "table" and opts.redact or {}) do
    out[#out + 1] = v
  end
  return out
end

-- A value as text no other value has: each scalar with its type and length
-- ("s5:hello"), a table as its entries sorted by their keys' text.
local function serialize(v, out)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = serialize(k, {}) end
    table.sort(keys)
    local index = {}
    for k, value in pairs(v) do index[serialize(k, {})] = value end
    out[#out + 1] = ("t%d{"):format(#keys)
    for i = 1, #keys do
      out[#out + 1] = keys[i]
      serialize(index[keys[i]], out)
    end
    out[#out + 1] = "}"
  else
    local text = t == "number" and ("%.17g"):format(v) or tostring(v)
    out[#out + 1] = ("%s%d:%s"):format(t:sub(1, 1), #text, text)
  end
  return concat(out)
end

-- A stable key for a shared provider's configuration that holds no secret:
-- a digest of every declared option as resolved (before configure, whose
-- additions are this broker's state, not its configuration).
local function cache_key(ctx, name, decl, opts)
  local declared = {}
  for k in pairs(decl) do declared[k] = opts[k] end
  local digest = ctx.crypto.hmac("sha256", "iceservers-cache", serialize(declared, {}))
  return name .. ":" .. ctx.crypto.hex(digest):sub(1, 24)
end

-- The ctx one provider sees: the broker's, with an HTTP transport that adds
-- the shared defaults and logs each call (never its path, query or body), and
-- a logger that strips this provider's secrets.
local function link_ctx(base, name, defaults, secrets, event)
  local ctx = setmetatable({ provider = name }, { __index = base })
  function ctx.log(level, msg)
    base.log(level, name .. ": " .. redact(msg, secrets))
  end
  function ctx.http(req)
    local r = {}
    for k, v in pairs(req) do r[k] = v end
    for k, v in pairs(defaults) do
      if r[k] == nil then r[k] = v end
    end
    local t0 = base.clock()
    local res, err = base.http(r)
    local ms = (base.clock() - t0) * 1000
    event("upstream", name, ms)
    local scheme, authority = tostring(r.url):match("^(%a+://)([^/?#]+)")
    local target = scheme and (scheme .. authority:gsub("^.*@", "")) or "?"
    if res then
      ctx.log("info", ("%s %s/... -> %d in %.0f ms"):format(r.method or "GET", target,
        res.status, ms))
    else
      ctx.log("info", ("%s %s/... failed in %.0f ms"):format(r.method or "GET", target, ms))
    end
    return res, err
  end
  return ctx
end

-- A drop-in provider's check_user, which must not make get raise: a raise is
-- an error of that provider (not a refusal of the user).
local function guarded_check(name, provider, secrets)
  local hook = provider.check_user
  return function(user, opts)
    local ok, res, why = pcall(hook, user, opts)
    if ok then return res, why end
    return nil, name .. ": check_user failed: " .. first_line(redact(strip(res), secrets)), true
  end
end

function M.build(config, env)
  for key, value in pairs(config) do
    if type(key) ~= "string" or (not TOP_KEYS[key] and type(value) ~= "table") then
      fail("unknown config key '%s'", tostring(key))
    end
  end
  for _, key in ipairs { "log", "http", "now", "clock", "on_event" } do
    if config[key] ~= nil and type(config[key]) ~= "function" then
      fail("config.%s must be a function", key)
    end
  end
  local backend = config.cache
  if backend ~= nil and (type(backend) ~= "table" or type(backend.get) ~= "function"
      or type(backend.set) ~= "function") then
    fail("config.cache must be a backend with get and set methods")
  end

  local self = setmetatable({}, Broker)
  self.fallback = config.fallback or "stun"
  if self.fallback ~= "stun" and self.fallback ~= "none" then
    fail("fallback (TURN_FALLBACK) must be \"stun\" or \"none\", not %q", tostring(self.fallback))
  end
  local stun_urls = config.stun_urls
  if stun_urls == nil then stun_urls = DEFAULT_STUN end
  self.stun, self.stun_seen = stun_entry(list_of(stun_urls, "stun_urls", ","))
  self.stun_json = self.stun and encode.server(encode.strings(self.stun.urls))
  -- What get and json compute once per list or URL table that does not change
  -- (a cached answer's, a canonical provider's): see Broker:answer.
  self.filtered = setmetatable({}, WEAK_KEYS)  -- urls -> the URLs compose keeps, or false
  self.urls_text = setmetatable({}, WEAK_KEYS) -- urls -> those as JSON, or false
  self.texts = setmetatable({}, WEAK_KEYS)     -- list -> {webrtc =, rest_head =, rest_tail =}
  self.protos = setmetatable({}, WEAK_KEYS)    -- list -> what compose makes of it
  self.heads = setmetatable({}, WEAK_KEYS)     -- urls -> JSON text up to a username, or false
  self.tail = { text = "}" }                   -- the last webrtc tail written, its ttl, expires
  self.cache = backend or cache.memory()
  self.event = config.on_event or function() end
  self.cache_ttl = ttl_setting(config.cache_ttl, "cache_ttl (ICESERVERS_CACHE_TTL)", 3600)
  local http_defaults = {
    timeout = positive(config.http_timeout, "http_timeout (ICESERVERS_HTTP_TIMEOUT)", 5),
    connect_timeout = positive(config.connect_timeout,
      "connect_timeout (ICESERVERS_CONNECT_TIMEOUT)", 2),
    cafile = config.ca_file,
    resolve = resolve_map(config.resolve),
  }
  if http_defaults.cafile ~= nil and type(http_defaults.cafile) ~= "string" then
    fail("ca_file (ICESERVERS_CA_FILE) must be a path")
  end

  local dirs = config.providers_dir and list_of(config.providers_dir, "providers_dir", ":") or {}
  local names = config.providers and list_of(config.providers, "providers", ",") or { "stun" }
  if #names == 0 then names = { "stun" } end

  self.ctx = context.new(config, flag(config.allow_http, "allow_http (ICESERVERS_ALLOW_HTTP)"))
  self.chain = {}
  local used = {}
  for _, name in ipairs(names) do
    local provider, canonical, builtin = loader.load(name, dirs)
    if used[canonical] then fail("provider '%s' appears twice in the chain", name) end
    used[canonical] = true
    local decl = provider.options or {}
    local source = env and { env = env } or { table = config[name] or config[canonical] }
    local opts = options.resolve(name, decl, source)
    local secrets = secrets_of(decl, opts)
    local key = cache_key(self.ctx, name, decl, opts)
    if provider.configure then
      local ok, res = pcall(provider.configure, opts, self.ctx)
      if not ok then fail("provider '%s': %s", name, redact(strip(res), secrets)) end
      opts = res or opts
      secrets = secrets_of(decl, opts)
    end
    local link = {
      name = name, provider = provider, opts = opts, kind = provider.kind or "turn",
      shared = provider.shared == true, secrets = secrets,
      -- a built-in whose answers are already what normalize.answer would make
      canonical = builtin and provider.canonical == true,
      -- and its one credential without the list around it (see coturn.lua)
      credential = builtin and provider.canonical == true
        and type(provider.credential) == "function" and provider.credential or nil,
      ctx = link_ctx(self.ctx, name, http_defaults, secrets, self.event),
    }
    -- what a reported lifetime is cut to (see bounded): the one asked for, if
    -- the provider declares a ttl option, and its documented maximum
    link.top_ttl = builtin and tonumber(provider.max_ttl) or options.TTL_MAX
    local asked = decl.ttl and decl.ttl.type == "ttl" and tonumber(opts.ttl)
    link.max_ttl = asked and asked < link.top_ttl and asked or link.top_ttl
    link.key = key
    link.backoff_key = link.key .. "|backoff"
    -- Whether get reads the provider's backoff state before asking it (in nginx
    -- a shared-dict read per request): not for a STUN provider, nor for a
    -- built-in that cannot fail with these options (coturn with an inline
    -- secret signs locally; static), which never has one, until it fails.
    link.backoff = link.kind ~= "stun" and not (builtin
      and type(provider.never_fails) == "function" and provider.never_fails(opts) == true)
    self.chain[#self.chain + 1] = link
    if provider.check_user then
      link.check_user = builtin and provider.check_user or guarded_check(name, provider, secrets)
      self.checked = self.checked or {}
      self.checked[#self.checked + 1] = link
    end
  end
  return self
end

-- Whether s is well-formed UTF-8 (RFC 3629: no overlong form, no surrogate,
-- nothing above U+10FFFF); by hand, as LuaJIT has no utf8 library.  The
-- second byte's range is what rules out overlongs, surrogates and the top.
local byte, find = string.byte, string.find
local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local len, lo, hi
      if c >= 0xC2 and c <= 0xDF then len, lo, hi = 2, 0x80, 0xBF
      elseif c == 0xE0 then len, lo, hi = 3, 0xA0, 0xBF
      elseif c == 0xED then len, lo, hi = 3, 0x80, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then len, lo, hi = 3, 0x80, 0xBF
      elseif c == 0xF0 then len, lo, hi = 4, 0x90, 0xBF
      elseif c == 0xF4 then len, lo, hi = 4, 0x80, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then len, lo, hi = 4, 0x80, 0xBF
      else return false end
      if i + len - 1 > n then return false end
      local c2 = byte(s, i + 1)
      if c2 < lo or c2 > hi then return false end
      for j = i + 2, i + len - 1 do
        local cj = byte(s, j)
        if cj < 0x80 or cj > 0xBF then return false end
      end
      i = i + len
    end
  end
  return true
end

local function check_user(user)
  if user == nil then return true end
  if type(user) ~= "string" then
    return nil, "invalid user: must be a string, not a " .. type(user)
  end
  if #user < 1 or #user > 256 then
    return nil, "invalid user: must be 1 to 256 bytes"
  end
  if not find(user, "[^\32-\126]") then return true end -- printable ASCII: one scan
  if user:find("%c") then
    return nil, "invalid user: control characters are not allowed"
  end
  if not utf8_valid(user) then return nil, "invalid user: not valid UTF-8" end
  return true
end

-- After check_user, for a user: the check_user of each provider of the chain
-- that has one (the first refusal is the answer, not a failure of that
-- provider).  Called only when self.checked is set.
function Broker:check_hooks(user)
  local links = self.checked
  for i = 1, #links do
    local link = links[i]
    local res, why, raised = link.check_user(user, link.opts)
    if raised then return nil, why end
    if not res then
      return nil, "invalid user: " .. first_line(redact(tostring(why or "refused"), link.secrets))
    end
  end
  return true
end

-- The URLs of one provider entry that compose keeps: those the STUN entry
-- does not already have; false when none is left.  Remembered per URL table
-- when the caller says the table does not change (stable).
function Broker:kept(urls, stable)
  if stable then
    local kept = self.filtered[urls]
    if kept ~= nil then return kept end
  end
  local seen, out, n = self.stun_seen, {}, 0
  for i = 1, #urls do
    local u = urls[i]
    if not seen[u] then n = n + 1; out[n] = u end
  end
  out = n > 0 and out
  if stable then self.filtered[urls] = out end
  return out
end

local unpack = table.unpack or rawget(_G, "unpack")

-- A fresh copy of an array of URLs (most hold one or two).
local function copy(urls)
  local n = #urls
  if n == 1 then return { urls[1] } end
  if n == 2 then return { urls[1], urls[2] } end
  return { unpack(urls, 1, n) }
end

-- The STUN entry first, then the provider's entries without the STUN URLs
-- that entry already has.  Fresh tables each time: callers may keep or edit
-- them.  What compose makes of a list that does not change (stable "list":
-- a cached answer) is kept, and only copied on the next calls.
function Broker:compose(list, stable)
  local proto = stable == "list" and self.protos[list]
  local out, n = {}, 0
  if proto then
    for i = 1, #proto do
      local e = proto[i]
      out[i] = { urls = copy(e.urls), username = e.username, credential = e.credential }
    end
    return out
  end
  proto = stable == "list" and {}
  if self.stun then
    n = 1
    out[1] = { urls = copy(self.stun.urls) }
    if proto then proto[1] = { urls = self.stun.urls } end
  end
  for i = 1, #list do
    local entry = list[i]
    local urls = self:kept(entry.urls, stable)
    if urls then
      n = n + 1
      out[n] = { urls = copy(urls), username = entry.username, credential = entry.credential }
      if proto then
        proto[n] = { urls = urls, username = entry.username, credential = entry.credential }
      end
    end
  end
  if proto then self.protos[list] = proto end
  return out
end

-- answer() keeps credentials on complete TURN entries only.
local function has_turn(list)
  for i = 1, #list do
    if list[i].username then return true end
  end
  return false
end

-- A number of a provider's answer, for an error: never more than its value.
local huge = math.huge
local function show(n)
  if n ~= n then return "nan" end
  if n == huge then return "inf" end
  if n == -huge then return "-inf" end
  return ("%.15g"):format(n)
end

local function days(secs)
  if secs % 86400 == 0 then return ("%d d"):format(secs / 86400) end
  return ("%d s"):format(secs)
end

-- The clock of a provider may be a little ahead of ours.
local SKEW = 60

-- The ttl and expires of a provider's answer, checked and cut to the link's
-- maximum (the lifetime asked for, the provider's documented maximum, 7 d);
-- or false, why.  Under the 60 s floor (or not a finite number) the answer is
-- a failure: stretched, the credentials would be handed out past their end.
local function bounded(link, ttl, expires, now)
  local max = link.max_ttl
  if ttl ~= nil then
    local n = tonumber(ttl)
    if n == nil then return false, ("TTL is not a number (a %s)"):format(type(ttl)) end
    if n ~= n or n == huge or n == -huge then
      return false, ("TTL %s is not a finite number of seconds"):format(show(n))
    end
    if n < options.TTL_MIN then
      return false, ("TTL %s is under the %d s floor"):format(show(n), options.TTL_MIN)
    end
    ttl = n > max and max or n
  end
  if expires ~= nil then
    local e = tonumber(expires)
    if e == nil then return false, ("expires is not a number (a %s)"):format(type(expires)) end
    if e ~= e or e == huge or e == -huge then
      return false, ("expires %s is not a finite Unix time"):format(show(e))
    end
    local left = e - now
    if left <= 0 then return false, ("expires %s is in the past"):format(show(e)) end
    if left < options.TTL_MIN then
      return false, ("expires %s is %s s ahead, under the %d s floor"):format(show(e),
        show(floor(left)), options.TTL_MIN)
    end
    if left > link.top_ttl + SKEW then
      return false, ("expires %s is more than %s ahead%s"):format(show(e), days(link.top_ttl),
        e > 1e11 and " (in milliseconds?)" or "") -- now in milliseconds is about 1.8e12
    end
    expires = left > max and now + max or e
  end
  return true, ttl, expires
end

-- Why entries of a provider's answer were dropped, at info: each reason at
-- most once a minute per provider (normalize keeps credentials out of them,
-- link.ctx.log the provider's secrets), so a provider that keeps sending one
-- bad entry does not flood the log.  The memory of reasons is bounded.
local DROP_EVERY, DROP_KEEP = 60, 64
local function log_dropped(link, dropped, now)
  local seen = link.dropped
  if not seen or link.dropped_n >= DROP_KEEP then
    seen = {}
    link.dropped, link.dropped_n = seen, 0
  end
  for i = 1, #dropped do
    local why = dropped[i]
    local at = seen[why]
    if not at or now - at >= DROP_EVERY or now < at then
      if not at then link.dropped_n = link.dropped_n + 1 end
      seen[why] = now
      link.ctx.log("info", "dropped from the answer: " .. why)
    end
  end
end

local function no_turn(dropped)
  local n = dropped and #dropped or 0
  if n == 0 then return "no valid TURN server in the answer" end
  return ("no valid TURN server in the answer (%d dropped: %s%s)"):format(n, dropped[1],
    n > 1 and "; ..." or "")
end

-- One call of a provider: list, ttl, expires; or nil, why, retry_after.
local function call(link, user, now)
  local ok, servers, ttl, expires = pcall(link.provider.get, link.ctx, user, link.opts)
  if not ok then return nil, "failed: " .. tostring(servers) end
  if servers == nil then return nil, ttl or "no answer", tonumber(expires) end
  local list, dropped = servers, nil
  if not link.canonical then
    list, dropped = normalize.answer(servers)
    if dropped[1] then log_dropped(link, dropped, now) else dropped = nil end
  end
  if not has_turn(list) then
    if link.kind ~= "stun" then return nil, no_turn(dropped) end
    return list -- a STUN-only answer has no lifetime to check (answer() reports none)
  end
  if ttl == nil and expires == nil then return list end
  local fine
  fine, ttl, expires = bounded(link, ttl, expires, now)
  if not fine then return nil, ttl end
  return list, ttl, expires
end

-- call() for the JSON path of a provider of one credential: URLs, ttl,
-- expires, username, password; or nil, why, retry_after.
local function call_credential(link, user, now)
  local ok, username, password, urls, ttl, expires = pcall(link.credential, link.ctx, user,
    link.opts, now)
  if not ok then return nil, "failed: " .. tostring(username) end
  if username == nil then return nil, password or "no answer", tonumber(urls) end
  return urls, tonumber(ttl), tonumber(expires), username, password
end

local function backoff_key(link) return link.backoff_key end

-- With a backend that can lock (nginx's shared dict), one request refreshes
-- for all: the others serve the still-usable answer, or, with none, wait for
-- the refresh.  Returns go_on, [list, entry] (go_on false: answer or fail now).
function Broker:take_turn(link, entry, now)
  local store = self.cache
  if not store.lock then return true end
  if cache.usable(entry, now) then
    if store:lock(link.key, false) then return true end
    return false, entry.list, entry -- someone else is refreshing it
  end
  local got = store:lock(link.key, true)
  now = self.ctx.now()
  local again = store:get(link.key)
  if cache.usable(again, now) then
    if got then store:unlock(link.key) end
    return false, again.list, again
  end
  if not got then return false, nil, "timed out waiting for another request's refresh" end
  local state = store:get(backoff_key(link)) -- the refresh before ours may have failed
  if cache.blocked(state, now) then
    store:unlock(link.key)
    return false, nil, ("%s (not retried for %d s)"):format(state.why,
      math.ceil(state.until_t - now))
  end
  return true
end

-- A provider whose answer is the same for every user: served from the cache,
-- refreshed at half-life, stale while a refresh fails, backed off when down;
-- asked without the user, whose answer it would hand to every other user.
-- Returns list, entry, stale; or nil, why.
function Broker:shared(link, now)
  local store = self.cache
  local entry = store:get(link.key)
  if cache.fresh(entry, now) then
    self.event("hit", link.name)
    return entry.list, entry
  end
  self.event("miss", link.name)
  local usable = cache.usable(entry, now)
  local state = store:get(backoff_key(link))
  if cache.blocked(state, now) then
    if usable then
      self.event("stale", link.name)
      return entry.list, entry, true
    end
    return nil, ("%s (not retried for %d s)"):format(state.why, math.ceil(state.until_t - now))
  end
  local go_on, list, got = self:take_turn(link, entry, now)
  if not go_on then return list, got end
  local ttl, expires
  list, ttl, expires = call(link, nil, now)
  now = self.ctx.now()
  if list then
    if has_turn(list) then
      local lifetime = ttl or (expires and expires - now) or self.cache_ttl
      entry = cache.entry(list, now, lifetime, expires)
      store:set(link.key, entry)
      if state then store:set(backoff_key(link), nil) end
    end
    if store.unlock then store:unlock(link.key) end
    return list, entry
  end
  local why = ttl
  self.event("failure", link.name)
  store:set(backoff_key(link), cache.failed(state, now, why, expires))
  if store.unlock then store:unlock(link.key) end
  if cache.usable(entry, now) then
    self.event("stale", link.name)
    if not entry.stale_logged then
      entry.stale_logged = true
      store:set(link.key, entry)
      link.ctx.log("warn", "refresh failed, serving cached credentials: " .. first_line(why))
    end
    return entry.list, entry, true
  end
  return nil, why
end

-- A provider asked on every get (coturn signs locally; its own providers may
-- answer per user), with the same backoff when it fails.  Returns list,
-- expires (false when the answer has no lifetime); or nil, why.  With lean,
-- a provider of one credential answers URLs, expires, username, password.
function Broker:direct(link, user, now, lean)
  local key = link.backoff_key
  local state = link.backoff and self.cache:get(key) or nil
  if state and cache.blocked(state, now) then
    return nil, ("%s (not retried for %d s)"):format(state.why, math.ceil(state.until_t - now))
  end
  local list, ttl, expires, username, password
  if lean and link.credential then
    list, ttl, expires, username, password = call_credential(link, user, now)
  else
    list, ttl, expires = call(link, user, now)
  end
  if not list then return nil, self:direct_failed(link, state, now, ttl, expires) end
  if state then self.cache:set(key, nil) end
  return list, expires or (ttl and now + ttl) or false, username, password
end

-- What a failure of a direct provider leaves: an event, and its backoff.
function Broker:direct_failed(link, state, now, why, retry_after)
  self.event("failure", link.name)
  if link.kind ~= "stun" then
    link.backoff = true -- a provider that was not to fail did: read its state from now on
    self.cache:set(link.backoff_key, cache.failed(state, now, why, retry_after))
  end
  return why
end

-- One warning when the fallback starts serving, then at most one a minute
-- while it goes on (with how many answers it served meanwhile), so an outage
-- under load does not flood the log.
local WARN_EVERY = 60
function Broker:warn_degraded(summary, now)
  local w = self.degraded_warning
  if w and now - w.at < WARN_EVERY and now >= w.at then
    w.quiet = w.quiet + 1
    return
  end
  local more = w and w.quiet > 0 and (" (%d more degraded answers since the last warning)")
    :format(w.quiet) or ""
  self.degraded_warning = { at = now, quiet = 0 }
  self.ctx.log("warn", summary .. "; serving STUN only" .. more)
end

-- What get answers, before compose and meta (get and json each make what
-- they need of it): list, provider name, stale, expires, ttl, stable,
-- errors; or nil, err.  The list is NOTHING for the fallback, which alone
-- has errors.  stable tells which of the list's tables stay as they are, so
-- that what is computed from them can be kept: "list" (a cached answer's
-- list, whole) or "urls" (a canonical provider's URL tables).  With lean, a
-- provider of one credential answers its URLs for the list, and its
-- username and password after errors.
function Broker:answer(user, lean, from, errors, now)
  if not from then
    local ok, err = check_user(user)
    if ok and user ~= nil and self.checked then ok, err = self:check_hooks(user) end
    if not ok then return nil, err end
    now = self.ctx.now()
  end
  local chain = self.chain
  for i = from or 1, #chain do
    local link = chain[i]
    local list, entry, stale, expires, username, password
    if link.shared then
      list, entry, stale = self:shared(link, now)
      -- a list from the cache has TURN entries (only such lists are cached)
      expires = list and (entry and entry.list == list or has_turn(list)) and entry.expires
    else
      list, entry, username, password = self:direct(link, user, now, lean)
      -- call() made sure a TURN provider's list has TURN entries
      expires = list and entry and (link.kind ~= "stun" or has_turn(list)) and entry
    end
    if list then
      self.degraded_warning = nil
      local stable = link.shared and "list" or link.canonical and "urls" or nil
      if expires then
        expires = floor(expires)
        return list, link.name, stale, expires, expires - floor(now), stable, nil, username,
          password
      end
      return list, link.name, stale, nil, nil, stable, nil, username, password
    end
    errors = errors or {}
    errors[#errors + 1] = link.name .. ": " .. first_line(redact(entry, link.secrets))
  end
  local summary = "every provider failed: " .. concat(errors, "; ")
  if self.fallback == "none" then return nil, summary end
  self.event("degraded", "stun")
  self:warn_degraded(summary, now)
  return NOTHING, "stun", nil, nil, nil, "list", errors
end

function Broker:get(user)
  local list, name, stale, expires, ttl, stable, errors = self:answer(user)
  if not list then return nil, name end
  local meta
  if errors then
    meta = { provider = name, degraded = true, errors = errors }
  else
    meta = { provider = name, stale = stale or nil, expires = expires, ttl = ttl }
  end
  return self:compose(list, stable), meta
end

-- The URLs compose keeps of one entry, as JSON; false when none is left.
function Broker:urls_json(urls, stable)
  if stable then
    local text = self.urls_text[urls]
    if text ~= nil then return text end
  end
  local kept = self:kept(urls, stable)
  local text = kept and encode.strings(kept)
  if stable then self.urls_text[urls] = text end
  return text
end

-- encode.tail(ttl, expires, degraded), remembered for the last ttl and
-- expires: they change once a second, not once a request.
function Broker:webrtc_tail(ttl, expires, degraded)
  local last = self.tail
  if ttl and ttl == last.ttl and expires == last.expires and not degraded then
    return last.text
  end
  local text = encode.tail(ttl, expires, degraded)
  if ttl and not degraded then self.tail = { text = text, ttl = ttl, expires = expires } end
  return text
end

-- For the one credential of a coturn or static provider, whose URL table
-- does not change: the webrtc text up to its username, written once.
function Broker:head(urls)
  local head = self.heads[urls]
  if head == nil then
    local text = self:urls_json(urls, true)
    head = text and ('{"iceServers":[' .. (self.stun_json and (self.stun_json .. ",") or "")
      .. '{"urls":' .. text .. ',"username":')
    self.heads[urls] = head
  end
  return head
end

-- The iceServers array of compose(list), as JSON.
function Broker:servers_json(list, stable)
  local parts, n = {}, 0
  if self.stun_json then n = 1; parts[1] = self.stun_json end
  for i = 1, #list do
    local entry = list[i]
    local urls = self:urls_json(entry.urls, stable)
    if urls then
      n = n + 1
      parts[n] = encode.server(urls, entry.username, entry.credential)
    end
  end
  return "[" .. concat(parts, ",") .. "]"
end

-- answer(user, true) when the first provider signs (coturn, static) and has
-- no backoff to look at: the work of answer and direct for it, in one step,
-- since this is every request of such an endpoint.  When it fails after all,
-- the rest of the chain is asked as answer does.
function Broker:first_credential(user, link)
  if user ~= nil then
    local ok, err = check_user(user)
    if ok and self.checked then ok, err = self:check_hooks(user) end
    if not ok then return nil, err end
  end
  local now = self.ctx.now()
  local ok, username, password, urls, ttl, expires = pcall(link.credential, link.ctx, user,
    link.opts, now)
  if ok and username ~= nil then
    self.degraded_warning = nil
    ttl, expires = tonumber(ttl), tonumber(expires)
    expires = expires or (ttl and now + ttl)
    if expires then
      expires = floor(expires)
      return urls, link.name, nil, expires, expires - floor(now), "urls", nil, username, password
    end
    return urls, link.name, nil, nil, nil, "urls", nil, username, password
  end
  local why = self:direct_failed(link, nil, now,
    ok and (password or "no answer") or ("failed: " .. tostring(username)), ok and tonumber(urls))
  return self:answer(user, true, 2, { link.name .. ": " .. first_line(redact(why, link.secrets)) },
    now)
end

--[[
Broker:json(user[, format]): the answer as JSON text, the bytes that
iceservers.encode(broker:get(user)) writes, without building get's tables;
the text of a cached answer is written once per answer and format and reused
(with the ttl of the moment) until the answer is refreshed.  This is what the
nginx endpoint serves.  Returns the text; or nil, err, "get" where get
returns nil, err; or nil, err, "encode" where encode does (the rest format of
an answer without TURN).  An unknown format raises, as in encode.
]]
function Broker:json(user, format)
  format = format or "webrtc"
  if format ~= "webrtc" and format ~= "rest" then
    error(("iceservers: unknown format %q (webrtc or rest)"):format(tostring(format)), 2)
  end
  local list, name, _, expires, ttl, stable, errors, username, password
  local first = self.chain[1]
  if format == "webrtc" and first.credential and not first.backoff then
    list, name, _, expires, ttl, stable, errors, username, password =
      self:first_credential(user, first)
  else
    list, name, _, expires, ttl, stable, errors, username, password =
      self:answer(user, format == "webrtc")
  end
  if not list then return nil, name, "get" end
  if username then -- the one credential of a coturn or static provider; list is its URLs
    local head = self:head(list)
    if head then -- what servers_json writes for a list of that one entry
      local u, p = quote(username, password)
      return head .. u .. ',"credential":' .. p .. "}]" .. self:webrtc_tail(ttl, expires)
    end
    list = { { urls = list, username = username, credential = password } }
  end
  -- A cached answer's list (or the fallback's) is the same table until the
  -- answer changes, so its text is kept with it.
  local texts
  if stable == "list" then
    texts = self.texts[list]
    if not texts then
      texts = {}
      self.texts[list] = texts
    end
  end
  if format == "webrtc" then
    local array = texts and texts.webrtc
    if not array then
      array = self:servers_json(list, stable)
      if texts then texts.webrtc = array end
    end
    return '{"iceServers":' .. array .. self:webrtc_tail(ttl, expires, errors ~= nil)
  end
  local head, tail
  if texts and texts.rest_head then
    head, tail = texts.rest_head, texts.rest_tail
  else
    -- compose keeps every TURN entry and URL as they are, so the rest text of
    -- compose(list) is the list's
    head, tail = encode.rest_parts(list)
    if not head then return nil, tail, "encode" end
    if texts then texts.rest_head, texts.rest_tail = head, tail end
  end
  return encode.rest_text(head, tail, ttl)
end

-- The provider names of the chain, in order (for logs and the CLI).
function Broker:providers()
  local out = {}
  for i, link in ipairs(self.chain) do out[i] = link.name end
  return out
end

return M
