-- Metered (metered.ca).  The ICE-server array comes from
--   GET {base}/api/v1/turn/credentials?apiKey=<credential's apiKey>[&region=]
-- (the request's region, else METERED_REGION)
-- as a bare array with no lifetime.  With METERED_SECRET_KEY (the account's
-- key) a credential that expires after TURN_TTL is created first
--   POST {base}/api/v1/turn/credential?secretKey=... {"expiryInSeconds": ttl}
-- and its apiKey is used; the broker's cache makes that once per window.
local rest = require "iceservers.rest"

local OK = { [200] = true, [201] = true }

local function said(doc)
  return type(doc.error) == "string" and doc.error or type(doc.message) == "string" and doc.message
end

local function create_credential(ctx, opts)
  local doc, err, wait = rest.json_call(ctx, {
    method = "POST",
    url = opts.api_url .. "/api/v1/turn/credential?secretKey=" .. rest.escape(opts.secret_key),
    headers = { ["Content-Type"] = "application/json" },
    body = ctx.json.encode { expiryInSeconds = opts.ttl, label = "iceservers" },
  }, OK, said)
  if not doc then return nil, "creating a credential: " .. err, wait end
  if type(doc.apiKey) ~= "string" or doc.apiKey == "" then
    return nil, "creating a credential: the answer has no apiKey"
  end
  return doc.apiKey
end

return {
  options = {
    api_url = { env = "TURN_API_URL", required = true },
    api_key = { env = "TURN_API_KEY", secret = true },
    secret_key = { env = "METERED_SECRET_KEY", secret = true },
    region = { env = "METERED_REGION" },
    ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
  },
  shared = true,

  configure = function(opts, ctx)
    opts.api_url = rest.base_url(opts.api_url, "TURN_API_URL", ctx.allow_http)
    if not opts.api_key and not opts.secret_key then
      error("metered needs TURN_API_KEY (a credential's API key) or METERED_SECRET_KEY", 0)
    end
    return opts
  end,

  -- req.region: the request's region (the broker caches an answer per region),
  -- else METERED_REGION
  get = function(ctx, _, opts, req)
    local key, ttl = opts.api_key, nil
    if opts.secret_key then
      local created, err, wait = create_credential(ctx, opts)
      if not created then return nil, err, wait end
      key, ttl = created, opts.ttl
    end
    local url = opts.api_url .. "/api/v1/turn/credentials?apiKey=" .. rest.escape(key)
    local region = req and req.region or opts.region
    if region then url = url .. "&region=" .. rest.escape(region) end
    local doc, err, wait = rest.json_call(ctx, { url = url }, OK, said)
    if not doc then
      if (err:match("^401") or err == "HTTP 401") and not opts.secret_key then
        err = err .. " (TURN_API_KEY must be a credential's API key, not the account secret key)"
      end
      return nil, err, wait
    end
    return doc, ttl -- no lifetime in the answer: the broker uses ICESERVERS_CACHE_TTL
  end,
}
