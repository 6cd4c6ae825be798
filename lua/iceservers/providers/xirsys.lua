-- Xirsys:
--   PUT {api}/_turn/{channel}, Basic ident:secret, {"format":"urls"}
-- answers {"s":"ok","v":{"iceServers": one object (or an array)}}, and
-- {"s":"error","v":"<code>"} is a failure whatever the HTTP status.  No
-- lifetime can be asked or is reported: ICESERVERS_CACHE_TTL applies.
local rest = require "iceservers.rest"

local function said(doc) return type(doc.v) == "string" and doc.v or nil end

return {
  options = {
    ident = { env = "XIRSYS_IDENT", required = true },
    secret = { env = "XIRSYS_SECRET", required = true, secret = true },
    channel = { env = "XIRSYS_CHANNEL", required = true },
    api_url = { env = "XIRSYS_API_URL", default = "https://global.xirsys.net" },
  },
  shared = true,

  configure = function(opts, ctx)
    opts.api_url = rest.base_url(opts.api_url, "XIRSYS_API_URL", ctx.allow_http)
    local channel = opts.channel:gsub("^/+", ""):gsub("/+$", "")
    if channel == "" or channel:find("[^%w/_%-%.]") or channel:find("%.%.") then
      error("XIRSYS_CHANNEL must be a channel path such as myapp or myapp/room", 0)
    end
    opts.channel = channel
    opts.authorization = rest.basic(ctx, opts.ident, opts.secret)
    opts.redact = { opts.authorization:sub(7) }
    return opts
  end,

  get = function(ctx, _, opts)
    local req = {
      method = "PUT",
      url = ("%s/_turn/%s"):format(opts.api_url, opts.channel),
      headers = { Authorization = opts.authorization, ["Content-Type"] = "application/json" },
      body = '{"format":"urls"}',
    }
    local doc, err, wait = rest.json_call(ctx, req, { [200] = true, [201] = true }, said)
    if not doc then return nil, err, wait end
    if doc.s ~= "ok" then
      return nil, "error: " .. rest.said(ctx, req, type(doc.v) == "string" and doc.v or "unknown")
    end
    local servers = type(doc.v) == "table" and doc.v.iceServers
    if type(servers) ~= "table" then return nil, "the answer has no v.iceServers" end
    return servers, nil
  end,
}
