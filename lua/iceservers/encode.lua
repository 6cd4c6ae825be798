-- JSON for clients: the W3C shape ({"iceServers": [...]}) or the TURN REST API
-- draft's ({"username", "password", "ttl", "uris"}).  The outer objects are
-- written by hand because Debian's lua-cjson 2.1.0 encodes an empty table as
-- {} and has no empty-array marker; each server entry is never empty.
local cjson = require "cjson"

local M = {}

local function array(items)
  local parts = {}
  for i = 1, #items do parts[i] = cjson.encode(items[i]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function webrtc(servers, meta)
  local out = { '{"iceServers":', array(servers) }
  if meta.ttl and meta.expires then
    out[#out + 1] = (',"ttl":%d,"expires":%d'):format(meta.ttl, meta.expires)
  end
  if meta.degraded then out[#out + 1] = ',"degraded":true' end
  out[#out + 1] = "}"
  return table.concat(out)
end

local function is_turn(url)
  return url:match("^turns?:") ~= nil
end

-- The draft carries one credential: the first TURN entry's, with the URIs of
-- every TURN entry that shares it.
local function rest(servers, meta)
  local first
  for _, s in ipairs(servers) do
    if s.username and is_turn(s.urls[1] or "") then first = s; break end
  end
  if not first then
    return nil, "no TURN server in the answer, so there is nothing for the rest format"
  end
  local uris = {}
  for _, s in ipairs(servers) do
    if s.username == first.username and s.credential == first.credential then
      for _, u in ipairs(s.urls) do
        if is_turn(u) then uris[#uris + 1] = u end
      end
    end
  end
  local out = {
    '{"username":', cjson.encode(first.username),
    ',"password":', cjson.encode(first.credential),
  }
  if meta.ttl then out[#out + 1] = (',"ttl":%d'):format(meta.ttl) end
  out[#out + 1] = ',"uris":' .. array(uris) .. "}"
  return table.concat(out)
end

-- Returns the JSON text, or nil, err.
function M.encode(servers, meta, format)
  if type(servers) ~= "table" then
    error("iceservers.encode: servers must be the list broker:get returned", 2)
  end
  meta = meta or {}
  format = format or "webrtc"
  if format == "webrtc" then return webrtc(servers, meta) end
  if format == "rest" then return rest(servers, meta) end
  error(("iceservers.encode: unknown format %q (webrtc or rest)"):format(tostring(format)), 2)
end

return M
