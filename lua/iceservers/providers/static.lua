-- Long-term TURN credentials that do not expire (TURN_USERNAME/TURN_PASSWORD).
-- ttl only tells clients when to ask again.
return {
  options = {
    username = { env = "TURN_USERNAME", required = true },
    password = { env = "TURN_PASSWORD", required = true },
    urls = { env = "TURN_URLS", type = "list", required = true },
    ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
  },
  configure = function(opts)
    if opts.username == "" or opts.password == "" then
      error("TURN_USERNAME and TURN_PASSWORD must not be empty", 0)
    end
    opts.urls = require("iceservers.normalize").turn_urls(opts.urls, "TURN_URLS")
    return opts
  end,
  canonical = true, -- get's entry is canonical already (see coturn.lua)
  never_fails = function() return true end, -- see coturn.lua
  credential = function(_, _, opts) -- see coturn.lua
    return opts.username, opts.password, opts.urls, opts.ttl
  end,
  get = function(_, _, opts)
    return { { urls = opts.urls, username = opts.username, credential = opts.password } }, opts.ttl
  end,
}
