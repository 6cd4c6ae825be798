-- The TURN REST API scheme shared by coturn (use-auth-secret) and eturnal:
-- username "expiry:user" (or the bare expiry), password
-- base64(HMAC-SHA1(secret, username)).  The signer is keyed once per secret.
local secrets = require "iceservers.secrets"
local normalize = require "iceservers.normalize"

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

  get = function(ctx, user, opts)
    local list, err = opts.secrets:current()
    if not list then return nil, err end
    if opts.signing ~= list[1] then
      opts.signer, opts.signing = ctx.crypto.hmac_key("sha1", list[1]), list[1]
    end
    local expires = math.floor(ctx.now()) + opts.ttl
    local username = user and ("%d:%s"):format(expires, user) or ("%d"):format(expires)
    return {
      { urls = opts.urls, username = username, credential = opts.signer:b64digest(username) },
    }, opts.ttl, expires
  end,
}
