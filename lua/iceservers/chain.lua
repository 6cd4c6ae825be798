--[[
Linking: the chain's provider names and the configuration turned into links,
once, when a broker is built.  A link is what the broker needs of one
provider at run time:

  name, get, opts (per broker: shared by concurrent requests), kind, shared,
  check_user, secrets (what is redacted from its errors and log lines), say
  (its text as the broker shows it: one line, redacted),
  ctx (the broker's, with its own log prefix and logged HTTP calls),
  key and backoff_key (its answers and its failures in the cache),
  max_ttl (what a reported lifetime is cut to), top_ttl (its documented
  maximum), has_failed (it has failed in this process: look at its backoff)
]]
local loader = require "iceservers.loader"
local options = require "iceservers.options"
local redaction = require "iceservers.redact"

local M = {}

local concat = table.concat
local redact, MIN = redaction.redact, redaction.MIN

local function strip(msg)
  return (tostring(msg):gsub("^iceservers: ", ""))
end

-- text as the broker shows a provider's words: one line, without its secrets.
local function sayer(secrets)
  return function(text)
    return (redact(strip(text), secrets, MIN):match("^[^\r\n]*"))
  end
end

-- The values a provider declared secret, and any its configure() added.
local function secrets_of(decl, opts)
  local out = {}
  for key, spec in pairs(decl) do
    if spec.secret and type(opts[key]) == "string" then out[#out + 1] = opts[key] end
    if spec.type == "regions" and type(opts[key]) == "table" then
      for _, fields in pairs(opts[key]) do
        for _, f in ipairs(spec.fields) do
          if decl[f].secret and type(fields[f]) == "string" then out[#out + 1] = fields[f] end
        end
      end
    end
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
    base.log(level, name .. ": " .. redact(msg, secrets, MIN))
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

-- One link: the provider `name` of the chain, with its options from
-- source ({env = lookup} or {table = its config sub-table}).
local function link(name, provider, source, ctx, http_defaults, event)
  local decl = provider.options or {}
  local opts = options.resolve(name, decl, source)
  local top = provider.max_ttl or options.TTL_MAX
  -- the lifetime asked for, if the provider declares a ttl option: never
  -- more than the provider hands out
  local ttl_option = decl.ttl and decl.ttl.type == "ttl" and tonumber(opts.ttl)
  if ttl_option and ttl_option > top then opts.ttl, ttl_option = top, top end
  local secrets = secrets_of(decl, opts)
  local key = cache_key(ctx, name, decl, opts)
  if provider.configure then
    local ok, res = pcall(provider.configure, opts, ctx)
    if not ok then
      error(("iceservers: provider '%s': %s"):format(name, redact(strip(res), secrets, MIN)), 0)
    end
    opts = res or opts
    secrets = secrets_of(decl, opts)
  end
  local asked = ttl_option and tonumber(opts.ttl) -- configure may have lowered it
  return {
    name = name, get = provider.get, opts = opts, kind = provider.kind or "turn",
    shared = provider.shared == true, check_user = provider.check_user, secrets = secrets,
    ctx = link_ctx(ctx, name, http_defaults, secrets, event), say = sayer(secrets),
    key = key, backoff_key = key .. "|backoff",
    top_ttl = top, max_ttl = asked and asked < top and asked or top,
    has_failed = false,
  }
end

--[[
The chain of a broker: settings are the broker's (iceservers.settings),
config the table it was built from (for the providers' sub-tables), env the
variable lookup of from_env (then options come from variables), ctx the
broker's context, event its on_event.  Raises a one-line config error.
]]
function M.build(settings, config, env, ctx, event)
  local http_defaults = {
    timeout = settings.http_timeout, connect_timeout = settings.connect_timeout,
    cafile = settings.ca_file, resolve = settings.resolve,
  }
  local names = settings.providers
  if #names == 0 then names = { "stun" } end
  local chain, used = {}, {}
  for _, name in ipairs(names) do
    local provider, canonical = loader.load(name, settings.providers_dir or {})
    if used[canonical] then
      error(("iceservers: provider '%s' appears twice in the chain"):format(name), 0)
    end
    used[canonical] = true
    local source = env and { env = env } or { table = config[name] or config[canonical] }
    chain[#chain + 1] = link(name, provider, source, ctx, http_defaults, event)
  end
  return chain
end

return M
