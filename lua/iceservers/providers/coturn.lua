-- The TURN REST API scheme shared by coturn (use-auth-secret) and eturnal:
-- username "expiry:user" (or the bare expiry), password
-- base64(HMAC-SHA1(secret, username)).  The signer is keyed once per secret.
local secrets = require "iceservers.secrets"
local normalize = require "iceservers.normalize"
local b64digest = require("iceservers.fast").b64digest -- signer:b64digest(msg)

-- The one credential of an answer: username, password, URLs, ttl, expires;
-- or nil, err.  get() is this as a list of one entry; the broker's JSON path
-- (Broker:json) calls it directly, with the time it has just read, and builds
-- no table.
local function credential(ctx, user, opts, now)
  local list, err = opts.secrets:current()
  if not list then return nil, err end
  if opts.signing ~= list[1] then
    opts.signer, opts.signing = ctx.crypto.hmac_key("sha1", list[1]), list[1]
  end
  local expires = math.floor(now or ctx.now()) + opts.ttl
  if expires ~= opts.stamped then -- the expiry's digits change once a second
    opts.stamped, opts.stamp = expires, ("%d"):format(expires)
  end
  local username = user and (opts.stamp .. ":" .. user) or opts.stamp
  return username, b64digest(opts.signer, username), opts.urls, opts.ttl, expires
end

return {
  options = {
    secret = { env = "TURN_SECRET", secret = true },
    secret_file = { env = "TURN_SECRET_FILE" },
    urls = { env = "TURN_URLS", type = "list", required = true },
    ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
    allow_insecure_secret_file = { env = "ICESERVERS_ALLOW_INSECURE_SECRET_FILE",
      type = "boolean", default = false },
  },

  configure = function(opts, ctx)
    opts.urls = normalize.turn_urls(opts.urls, "TURN_URLS")
    opts.secrets = secrets.new({ secret = opts.secret, secret_file = opts.secret_file,
      allow_insecure = opts.allow_insecure_secret_file }, ctx.crypto.stat, ctx.now)
    return opts
  end,

  -- get's entries are canonical already (normalize.turn_urls in configure, a
  -- non-empty username and password): the broker need not normalize them.
  canonical = true,
  credential = credential,
  -- With an inline secret there is nothing that can fail (a secrets file can
  -- go missing): the broker need not look for a backoff before each call.
  never_fails = function(opts) return opts.secret ~= nil end,

  get = function(ctx, user, opts)
    local username, password, urls, ttl, expires = credential(ctx, user, opts)
    if not username then return nil, password end
    return { { urls = urls, username = username, credential = password } }, ttl, expires
  end,
}
