-- Long-term TURN credentials that do not expire (TURN_USERNAME/TURN_PASSWORD).
-- ttl only tells clients when to ask again.
local normalize = require "iceservers.normalize"

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
    opts.urls = normalize.turn_urls(opts.urls, "TURN_URLS")
    opts.entry = { urls = opts.urls, username = opts.username, credential = opts.password }
    return opts
  end,
  -- the same entry each time: its URLs are checked and rendered once
  get = function(_, _, opts)
    return opts.entry, opts.ttl
  end,
}
