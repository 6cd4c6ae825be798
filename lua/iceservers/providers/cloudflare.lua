-- Cloudflare Realtime TURN:
--   POST {api}/v1/turn/keys/{key_id}/credentials/generate-ice-servers
-- with the TURN key's API token as Bearer and {"ttl": N} (at most 48 h); the
-- answer has iceServers, an array (the legacy call gave one object), and no
-- lifetime, so the one asked for is the one reported.  It has listed URLs on
-- port 53, which browsers block: shaping drops those (from every provider).
local rest = require "iceservers.rest"

local MAX_TTL = 172800

local function said(doc)
  local e = type(doc.errors) == "table" and doc.errors[1]
  if type(e) == "table" and type(e.message) == "string" then return e.message end
  return type(doc.error) == "string" and doc.error or nil
end

return {
  options = {
    key_id = { env = "CLOUDFLARE_TURN_KEY_ID", required = true },
    api_token = { env = "CLOUDFLARE_TURN_KEY_API_TOKEN", required = true, secret = true },
    api_url = { env = "CLOUDFLARE_API_URL", default = "https://rtc.live.cloudflare.com" },
    ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
  },
  shared = true,
  max_ttl = MAX_TTL, -- TURN_TTL and a lifetime the answer reports are cut to it

  configure = function(opts, ctx)
    opts.api_url = rest.base_url(opts.api_url, "CLOUDFLARE_API_URL", ctx.allow_http)
    if not opts.key_id:match("^[%w_-]+$") then
      error("CLOUDFLARE_TURN_KEY_ID must be the TURN key's id (letters and digits)", 0)
    end
    return opts
  end,

  get = function(ctx, _, opts)
    local doc, err, wait = rest.json_call(ctx, {
      method = "POST",
      url = ("%s/v1/turn/keys/%s/credentials/generate-ice-servers"):format(opts.api_url,
        opts.key_id),
      headers = {
        Authorization = "Bearer " .. opts.api_token,
        ["Content-Type"] = "application/json",
      },
      body = ctx.json.encode { ttl = opts.ttl },
    }, { [200] = true, [201] = true }, said)
    if not doc then return nil, err, wait end
    local servers = doc.iceServers
    if type(servers) ~= "table" then return nil, "the answer has no iceServers" end
    if servers.urls then servers = { servers } end -- the legacy single object
    return servers, opts.ttl -- its port 53 URLs: the broker drops them, as any provider's
  end,
}
