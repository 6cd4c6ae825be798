-- Twilio Network Traversal Service:
--   POST {api}/2010-04-01/Accounts/{sid}/Tokens.json, Basic auth, form Ttl=
-- answers ice_servers (each with url and urls strings) and ttl as a string.
local rest = require "iceservers.rest"

local MAX_TTL = 86400

-- The error code as Twilio wrote it: cjson under Lua 5.4 decodes 20003 as 20003.0.
local function code_text(code)
  if type(code) == "number" and code % 1 == 0 and math.abs(code) < 2 ^ 53 then
    return ("%d"):format(code)
  end
  return type(code) == "string" and code or nil
end

local function said(doc)
  local msg = type(doc.message) == "string" and doc.message or nil
  local code = code_text(doc.code)
  if msg and code then msg = ("%s (code %s)"):format(msg, code) end
  return msg
end

return {
  shared = true,
  max_ttl = MAX_TTL, -- TURN_TTL and a lifetime the answer reports are cut to it
  options = {
    account_sid = { env = "TWILIO_ACCOUNT_SID", required = true },
    auth_token = { env = "TWILIO_AUTH_TOKEN", secret = true },
    api_key_sid = { env = "TWILIO_API_KEY_SID" },
    api_key_secret = { env = "TWILIO_API_KEY_SECRET", secret = true },
    api_url = { env = "TWILIO_API_URL", default = "https://api.twilio.com" },
    ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
  },

  configure = function(opts, ctx)
    opts.api_url = rest.base_url(opts.api_url, "TWILIO_API_URL", ctx.allow_http)
    if not opts.account_sid:match("^AC%x+$") then
      error("TWILIO_ACCOUNT_SID must look like AC followed by hex digits", 0)
    end
    local user, password
    if opts.api_key_sid or opts.api_key_secret then
      if not (opts.api_key_sid and opts.api_key_secret) then
        error("twilio needs both TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET", 0)
      end
      user, password = opts.api_key_sid, opts.api_key_secret
    elseif opts.auth_token then
      user, password = opts.account_sid, opts.auth_token
    else
      error("twilio needs TWILIO_AUTH_TOKEN, or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET", 0)
    end
    opts.authorization = rest.basic(ctx, user, password)
    opts.redact = { opts.authorization:sub(7) } -- the base64 form is a secret too
    return opts
  end,

  get = function(ctx, _, opts)
    local doc, err, wait = rest.json_call(ctx, {
      method = "POST",
      url = ("%s/2010-04-01/Accounts/%s/Tokens.json"):format(opts.api_url, opts.account_sid),
      headers = {
        Authorization = opts.authorization,
        ["Content-Type"] = "application/x-www-form-urlencoded",
      },
      body = rest.form { Ttl = opts.ttl },
    }, { [200] = true, [201] = true }, said)
    if not doc then return nil, err, wait end
    if type(doc.ice_servers) ~= "table" then return nil, "the answer has no ice_servers" end
    return doc.ice_servers, tonumber(doc.ttl) or opts.ttl
  end,
}
