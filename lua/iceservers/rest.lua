-- What the REST providers share: URL and form encoding, Basic auth, and one
-- call that turns an HTTP exchange into a decoded JSON document or a one-line
-- error (with the Retry-After of a 429 or 503).  Provider files keep only
-- what is theirs: the URL, the body and the shape of their answers.
local M = {}

-- redact(text, secrets[, min_len]): iceservers.redact's, for the providers.
M.redact = require("iceservers.redact").redact

function M.escape(s)
  return (tostring(s):gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- {a = 1, b = "x y"} -> "a=1&b=x%20y", keys sorted so requests are stable.
function M.form(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = M.escape(k) .. "=" .. M.escape(t[k]) end
  return table.concat(parts, "&")
end

function M.basic(ctx, user, password)
  return "Basic " .. ctx.crypto.b64encode(user .. ":" .. password)
end

-- A base URL from configuration: https (http only when the broker allows it,
-- for tests: keys travel in these requests, Metered's in the query), no
-- query, no trailing slash, and no user:password@ (it would show in logs;
-- credentials have their own variables).  The message never quotes the URL.
function M.base_url(url, what, allow_http)
  local scheme = type(url) == "string" and url:match("^(https?)://[^/?#]+")
  if not scheme or url:find("[?#%s]") then
    error(("%s must be an https:// base URL without a query"):format(what), 0)
  end
  if scheme == "http" and not allow_http then
    error(("%s must be an https:// URL (http:// only with ICESERVERS_ALLOW_HTTP=1, for tests)")
      :format(what), 0)
  end
  if url:match("^https?://[^/?#]*@") then
    error(("%s must not hold credentials (user:password@)"):format(what), 0)
  end
  return (url:gsub("/+$", ""))
end

-- Seconds to wait from a Retry-After header (delay-seconds form only; an
-- HTTP date is rare from these APIs and falls back to the normal backoff).
local function retry_after(res)
  if res.status ~= 429 and res.status ~= 503 then return nil end
  local v = res.headers and res.headers["retry-after"]
  return v and tonumber(v:match("^%s*(%d+)%s*$")) or nil
end

-- Error text a provider put in its body, cut to one short line; never the
-- whole body, which may echo what was sent.
local function clip(s)
  s = tostring(s):gsub("[%c]", " ")
  if #s > 120 then s = s:sub(1, 117) .. "..." end
  return s
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The credentials req carries, as a provider could echo them: its
-- Authorization header (whole, its credential part, and for Basic the decoded
-- "user:password" and password), and the values of query parameters whose
-- name says key, secret, token, password or auth, as sent and decoded.
local function sent_secrets(ctx, req)
  local out = {}
  local function add(v)
    if type(v) == "string" and #v >= 4 then out[#out + 1] = v end
  end
  for name, value in pairs(type(req.headers) == "table" and req.headers or {}) do
    if type(name) == "string" and name:lower() == "authorization" and type(value) == "string" then
      add(value)
      local scheme, cred = value:match("^(%S+)%s+(%S+)")
      add(cred)
      if scheme and scheme:lower() == "basic" then
        local plain = ctx.crypto.b64decode(cred)
        add(plain)
        add(plain and plain:match("^[^:]*:(.*)$"))
      end
    end
  end
  local query = tostring(req.url):match("%?([^#]*)") or ""
  for name, value in query:gmatch("([^&=]+)=([^&]*)") do
    local n = name:lower()
    if n:find("key") or n:find("secret") or n:find("token") or n:find("pass")
        or n:find("auth") then
      add(value)
      add(unescape(value))
    end
  end
  table.sort(out, function(a, b) return #a > #b end)
  return out
end

-- A provider's error text without the credentials req sent, then clipped:
-- clipping first could cut a secret in two and leave half of it unredacted.
function M.said(ctx, req, text)
  return clip(M.redact(text, sent_secrets(ctx, req)))
end

--[[
Performs req through ctx.http and decodes a JSON answer.
  ok_status: a set of success codes, e.g. {[200] = true, [201] = true}
  describe(doc, res): optional; the provider's words for a failed answer
Returns doc, res; or nil, err, retry_after.
]]
function M.json_call(ctx, req, ok_status, describe)
  local res, err = ctx.http(req)
  if not res then return nil, err end
  local ok, doc = pcall(ctx.json.decode, res.body)
  if not ok then doc = nil end
  if not ok_status[res.status] then
    local said = type(doc) == "table" and describe and describe(doc, res)
    return nil, said and ("%d %s"):format(res.status, M.said(ctx, req, said))
      or ("HTTP %d"):format(res.status), retry_after(res)
  end
  if type(doc) ~= "table" then
    return nil, ("HTTP %d with a body that is not a JSON object or array"):format(res.status)
  end
  return doc, res
end

return M
