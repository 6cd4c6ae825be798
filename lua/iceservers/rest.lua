-- What the REST providers share: URL and form encoding, Basic auth, and one
-- call that turns an HTTP exchange into a decoded JSON document or a one-line
-- error (with the Retry-After of a 429 or 503).  Provider files keep only
-- what is theirs: the URL, the body and the shape of their answers.
local M = {}

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

-- A base URL from configuration: http(s), no query, no trailing slash.
function M.base_url(url, what)
  if type(url) ~= "string" or not url:match("^https?://[^/?#]+") or url:find("[?#%s]") then
    error(("%s must be an http:// or https:// base URL without a query"):format(what), 0)
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
M.clip = clip

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
    return nil, said and ("%d %s"):format(res.status, clip(said))
      or ("HTTP %d"):format(res.status), retry_after(res)
  end
  if type(doc) ~= "table" then
    return nil, ("HTTP %d with a body that is not a JSON object or array"):format(res.status)
  end
  return doc, res
end

return M
