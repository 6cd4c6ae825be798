-- An example drop-in provider: asks another service that speaks the TURN REST
-- API draft (GET ?service=turn&username=...&key=... answering
-- {"username", "password", "ttl", "uris"}), such as STUNner's auth service or
-- another iceservers endpoint.  Copy it into a directory on
-- ICESERVERS_PROVIDERS_DIR and set TURN_PROVIDER=draft_endpoint.

local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

return {
  options = {
    url = { env = "DRAFT_ENDPOINT_URL", required = true },
    key = { env = "DRAFT_ENDPOINT_KEY" },
    timeout = { env = "DRAFT_ENDPOINT_TIMEOUT", type = "number", default = 5 },
  },

  get = function(ctx, user, opts)
    -- a URL with a query of its own gets "&...", not a second "?"
    local query = (opts.url:find("?", 1, true) and "&" or "?") .. "service=turn"
    if user then query = query .. "&username=" .. escape(user) end
    if opts.key then query = query .. "&key=" .. escape(opts.key) end
    local res, err = ctx.http { url = opts.url .. query, timeout = opts.timeout }
    if not res then return nil, err end
    if res.status ~= 200 then return nil, "HTTP " .. res.status end
    local ok, doc = pcall(ctx.json.decode, res.body)
    if not ok or type(doc) ~= "table" then return nil, "the answer is not JSON" end
    -- The broker normalizes uris/password into urls/credential and drops bad URLs.
    return { { uris = doc.uris, username = doc.username, password = doc.password } },
      tonumber(doc.ttl)
  end,
}
