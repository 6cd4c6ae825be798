-- Long-term TURN credentials that do not expire (TURN_USERNAME/TURN_PASSWORD),
-- per region if asked (a region may set its own).  ttl only tells clients
-- when to ask again.
local pools = require "iceservers.pools"

local OPTIONS = {
  username = { env = "TURN_USERNAME" },
  password = { env = "TURN_PASSWORD", secret = true },
  urls = { env = "TURN_URLS", type = "list" },
  pick = { env = "TURN_PICK", type = "number" },
  regions = { env = "TURN_REGIONS", type = "regions",
    fields = { "urls", "username", "password", "pick" } },
  default_region = { env = "TURN_DEFAULT_REGION" },
  ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
}

return {
  options = OPTIONS,
  configure = function(opts)
    opts.pools = pools.build(opts, OPTIONS, function(fields, _, urls, pick)
      local username, password = fields.username or opts.username,
        fields.password or opts.password
      if username == nil then error("needs option 'username' (TURN_USERNAME)", 0) end
      if password == nil then error("needs option 'password' (TURN_PASSWORD)", 0) end
      if username == "" or password == "" then
        error("TURN_USERNAME and TURN_PASSWORD must not be empty", 0)
      end
      return { entry = { urls = urls, username = username, credential = password, pick = pick } }
    end)
    opts.urls = opts.pools.default and opts.pools.default.urls
    opts.region_names = opts.pools.names
    return opts
  end,
  -- the same entry each time: its URLs are checked and rendered once
  get = function(_, _, opts, req)
    return pools.of(opts.pools, req).entry, opts.ttl
  end,
}
