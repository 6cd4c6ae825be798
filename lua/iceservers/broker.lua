-- The broker: a validated configuration, the provider chain, and get(), which
-- tries each provider in order, normalizes the answer, puts the STUN servers
-- first, and falls back to STUN only when every provider fails.
local context = require "iceservers.context"
local loader = require "iceservers.loader"
local normalize = require "iceservers.normalize"
local options = require "iceservers.options"

local M = {}

local Broker = {}
Broker.__index = Broker

local DEFAULT_STUN = { "stun:stun.l.google.com:19302" }
local TOP_KEYS = {
  providers = true, stun_urls = true, fallback = true, providers_dir = true,
  log = true, http = true, now = true,
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

function M.build(config, env)
  for key, value in pairs(config) do
    if type(key) ~= "string" or (not TOP_KEYS[key] and type(value) ~= "table") then
      fail("unknown config key '%s'", tostring(key))
    end
  end
  for _, key in ipairs { "log", "http", "now" } do
    if config[key] ~= nil and type(config[key]) ~= "function" then
      fail("config.%s must be a function", key)
    end
  end

  local self = setmetatable({}, Broker)
  self.fallback = config.fallback or "stun"
  if self.fallback ~= "stun" and self.fallback ~= "none" then
    fail("fallback (TURN_FALLBACK) must be \"stun\" or \"none\", not %q", tostring(self.fallback))
  end
  local stun_urls = config.stun_urls
  if stun_urls == nil then stun_urls = DEFAULT_STUN end
  self.stun, self.stun_seen = stun_entry(list_of(stun_urls, "stun_urls", ","))

  local dirs = config.providers_dir and list_of(config.providers_dir, "providers_dir", ":") or {}
  local names = config.providers and list_of(config.providers, "providers", ",") or { "stun" }
  if #names == 0 then names = { "stun" } end

  self.ctx = context.new(config)
  self.chain = {}
  local used = {}
  for _, name in ipairs(names) do
    local provider, canonical = loader.load(name, dirs)
    if used[canonical] then fail("provider '%s' appears twice in the chain", name) end
    used[canonical] = true
    local decl = provider.options or {}
    local source = env and { env = env } or { table = config[name] or config[canonical] }
    local opts = options.resolve(name, decl, source)
    if provider.configure then
      local ok, res = pcall(provider.configure, opts, self.ctx)
      if not ok then fail("provider '%s': %s", name, strip(res)) end
      opts = res or opts
    end
    self.chain[#self.chain + 1] = {
      name = name, provider = provider, opts = opts, kind = provider.kind or "turn",
    }
  end
  return self
end

local function check_user(user)
  if user == nil then return true end
  if type(user) ~= "string" then
    return nil, "invalid user: must be a string, not a " .. type(user)
  end
  if #user < 1 or #user > 256 then
    return nil, "invalid user: must be 1 to 256 bytes"
  end
  if user:find("%c") then
    return nil, "invalid user: control characters are not allowed"
  end
  return true
end

-- The STUN entry first, then the provider's entries without the STUN URLs
-- that entry already has.  Fresh tables each time: callers may keep or edit them.
function Broker:compose(list)
  local out = {}
  if self.stun then
    local urls = {}
    for i, u in ipairs(self.stun.urls) do urls[i] = u end
    out[1] = { urls = urls }
  end
  for _, entry in ipairs(list) do
    local urls = {}
    for _, u in ipairs(entry.urls) do
      if not self.stun_seen[u] then urls[#urls + 1] = u end
    end
    if #urls > 0 then
      out[#out + 1] = { urls = urls, username = entry.username, credential = entry.credential }
    end
  end
  return out
end

function Broker:get(user)
  local ok, err = check_user(user)
  if not ok then return nil, err end
  local ctx = self.ctx
  local errors
  for _, link in ipairs(self.chain) do
    local called, servers, ttl, expires = pcall(link.provider.get, ctx, user, link.opts)
    local why
    if not called then
      why = "failed: " .. tostring(servers)
    elseif servers == nil then
      why = ttl or "no answer"
    else
      local list = normalize.answer(servers)
      -- answer() keeps credentials on TURN entries only, and only complete ones.
      local turn = false
      for i = 1, #list do
        if list[i].username then turn = true; break end
      end
      if link.kind == "stun" or turn then
        local meta = { provider = link.name }
        if turn then
          local now = ctx.now()
          expires, ttl = tonumber(expires), tonumber(ttl)
          if expires then
            meta.expires, meta.ttl = math.floor(expires), math.floor(expires - now)
          elseif ttl then
            meta.ttl, meta.expires = math.floor(ttl), math.floor(now + ttl)
          end
        end
        return self:compose(list), meta
      end
      why = "no valid TURN server in the answer"
    end
    errors = errors or {}
    errors[#errors + 1] = link.name .. ": " .. first_line(why)
  end
  local summary = "every provider failed: " .. table.concat(errors, "; ")
  if self.fallback == "none" then return nil, summary end
  ctx.log("warn", summary .. "; serving STUN only")
  return self:compose({}), { provider = "stun", degraded = true, errors = errors }
end

-- The provider names of the chain, in order (for logs and the CLI).
function Broker:providers()
  local out = {}
  for i, link in ipairs(self.chain) do out[i] = link.name end
  return out
end

return M
