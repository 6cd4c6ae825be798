-- JSON for clients: the W3C shape ({"iceServers": [...]}) or the TURN REST API
-- draft's ({"username", "password", "ttl", "uris"}).  Written by hand, because
-- Debian's lua-cjson 2.1.0 encodes an empty table as {} and has no empty-array
-- marker, and because it is the hot path of the nginx endpoint: an entry is
-- written in the W3C order (urls, username, credential), strings are escaped
-- exactly as cjson escapes them (core.json_quote, through LuaJIT's FFI where
-- there is one), and an entry that is not of the RTCIceServer shape goes
-- through cjson.  A broker's answers are written from the same pieces
-- (iceservers.render, which keeps the text of answers that do not change),
-- so broker:json and encode(broker:get()) write the same bytes.
local cjson = require "cjson"
local ffi = require "iceservers.runtime.ffi"

local M = {}

local format, concat = string.format, table.concat
local type, next, getmetatable, ipairs = type, next, getmetatable, ipairs

-- A JSON string, byte for byte what cjson writes: it escapes the control
-- characters, DEL, '"', '\\' and '/', and nothing else.  Takes one or two.
local str = ffi.json_quote
M.string = str

-- A JSON array of strings: ["a","b"].
local function strings(items)
  local n = #items
  if n == 1 then return "[" .. str(items[1]) .. "]" end
  local parts = {}
  for i = 1, n do parts[i] = str(items[i]) end
  return "[" .. concat(parts, ",") .. "]"
end
M.strings = strings

-- One entry from its URLs already written as JSON (`strings`).
local function server(urls_json, username, credential)
  if username == nil then
    if credential == nil then return '{"urls":' .. urls_json .. "}" end
    return '{"urls":' .. urls_json .. ',"credential":' .. str(credential) .. "}"
  end
  if credential == nil then
    return '{"urls":' .. urls_json .. ',"username":' .. str(username) .. "}"
  end
  local u, c = str(username, credential)
  return '{"urls":' .. urls_json .. ',"username":' .. u .. ',"credential":' .. c .. "}"
end
M.server = server

local ENTRY_KEYS = { urls = true, username = true, credential = true }

-- A plain array of one or more strings (keys 1..n, nothing else)?
local function is_strings(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil then return false end
  local n = #t
  if n == 0 then return false end
  for i = 1, n do
    if type(t[i]) ~= "string" then return false end
  end
  local count = 0
  for _ in next, t do count = count + 1 end
  return count == n
end

-- Any entry: by hand when it has the RTCIceServer shape, else through cjson.
local function entry(e)
  if type(e) == "table" and getmetatable(e) == nil then
    local ok = true
    for k in next, e do
      if not ENTRY_KEYS[k] then ok = false; break end
    end
    local u, c = e.username, e.credential
    if ok and is_strings(e.urls) and (u == nil or type(u) == "string")
        and (c == nil or type(c) == "string") then
      return server(strings(e.urls), u, c)
    end
  end
  return cjson.encode(e)
end

-- What follows the iceServers array: ttl and expires (with TURN credentials),
-- "degraded" when the fallback served, and the closing brace.
local function tail(ttl, expires, degraded)
  if ttl and expires then
    if degraded then
      return format(',"ttl":%d,"expires":%d,"degraded":true}', ttl, expires)
    end
    return format(',"ttl":%d,"expires":%d}', ttl, expires)
  end
  if degraded then return ',"degraded":true}' end
  return "}"
end
M.tail = tail

local function webrtc(servers, meta)
  local parts = {}
  for i = 1, #servers do parts[i] = entry(servers[i]) end
  return '{"iceServers":[' .. concat(parts, ",") .. "]" .. tail(meta.ttl, meta.expires,
    meta.degraded)
end

local function is_turn(url)
  return url:match("^turns?:") ~= nil
end

-- The draft carries one credential: the first TURN entry's, with the URIs of
-- every TURN entry that shares it.  Returns the text before the ttl
-- ('{"username":...,"password":...') and after it (',"uris":[...]}'), or
-- nil, err.
local function rest_parts(servers)
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
  return '{"username":' .. cjson.encode(first.username) .. ',"password":'
    .. cjson.encode(first.credential), ',"uris":' .. strings(uris) .. "}"
end
M.rest_parts = rest_parts

local function rest_text(head, uris, ttl)
  if ttl then return head .. format(',"ttl":%d', ttl) .. uris end
  return head .. uris
end
M.rest_text = rest_text

-- Returns the JSON text, or nil, err.
function M.encode(servers, meta, format_name)
  if type(servers) ~= "table" then
    error("iceservers.encode: servers must be the list broker:get returned", 2)
  end
  meta = meta or {}
  format_name = format_name or "webrtc"
  if format_name == "webrtc" then return webrtc(servers, meta) end
  if format_name == "rest" then
    local head, uris = rest_parts(servers)
    if not head then return nil, uris end
    return rest_text(head, uris, meta.ttl)
  end
  error(("iceservers.encode: unknown format %q (webrtc or rest)"):format(tostring(format_name)),
    2)
end

return M
