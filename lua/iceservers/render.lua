--[[
A broker's answer as its caller gets it, from a result of Broker:resolve:

  render:tables(res)        -> servers, meta: what broker:get returns, fresh
                               tables the caller may keep or edit
  render:json(res, format)  -> the text iceservers.encode(render:tables(res),
                               format) writes; or nil, err

Both put the broker's STUN entry first and leave out of the provider's
entries the URLs that entry already has.  One renderer per broker (its STUN
URLs differ).  The bytes are written by iceservers.encode's pieces.

What does not change is computed once and kept in one weak-keyed memo, by
the identity of the tables it comes from, which never change (a provider's
tables are the broker's to keep; normalized ones are the broker's own):
  a list (res.memo_by "list": a cached answer's, or the fallback's):
      its webrtc array text (when the broker's STUN URLs are its own), its
      rest parts, its servers table to copy
  a URL table (res.memo_by "list", or "urls": that of a result's one entry,
      the provider's own, as coturn's configured URLs): the URLs kept, as
      JSON, the text up to a username of an answer of that one entry
  TAIL: the last ttl and expires written, and their text (they change once
      a second, not once a request)
]]
local encode = require "iceservers.encode"

local M = {}

local Render = {}
Render.__index = Render

local concat = table.concat
local setmetatable = setmetatable
local unpack = table.unpack or rawget(_G, "unpack")
local quote = encode.string
local TAIL = {}

-- stun_urls: the broker's STUN URLs, canonical, none twice (maybe none).
function M.new(stun_urls)
  local self = setmetatable({ memo = setmetatable({}, { __mode = "k" }), seen = {} }, Render)
  for _, u in ipairs(stun_urls) do self.seen[u] = true end
  if #stun_urls > 0 then
    self.stun = { urls = stun_urls }
    self.stun_json = encode.server(encode.strings(stun_urls))
  end
  self.memo[TAIL] = { text = "}" }
  return self
end

local function record(self, t)
  local r = self.memo[t]
  if not r then
    r = {}
    self.memo[t] = r
  end
  return r
end

-- The URLs of one provider entry that are kept: those the STUN entry does
-- not already have (urls itself when that is all of them); false when none
-- is left.  The memo holds ALL rather than urls: a value that holds its weak
-- key would keep it alive in LuaJIT, which has no ephemerons.
local ALL = {}
local function kept_urls(self, urls, remember)
  local r = remember and record(self, urls)
  local kept = r and r.kept
  if r and kept ~= nil then return kept == ALL and urls or kept end
  local seen, out, n = self.seen, {}, 0
  for i = 1, #urls do
    local u = urls[i]
    if not seen[u] then n = n + 1; out[n] = u end
  end
  if n == #urls then out = urls end
  out = n > 0 and out
  if r then r.kept = out == urls and ALL or out end
  return out
end

-- Those URLs as JSON; false when none is left.
local function urls_json(self, urls, remember)
  local r = remember and record(self, urls)
  if r and r.json ~= nil then return r.json end
  local kept = kept_urls(self, urls, remember)
  local text = kept and encode.strings(kept)
  if r then r.json = text end
  return text
end

-- The STUN entry's text for the STUN URLs of a result (res.stun: those up,
-- or those shaping kept; the same table while they are the same): the
-- broker's for nil; false for none.
local function stun_text(self, up)
  if not up then return self.stun_json end
  local r = record(self, up)
  if r.stun == nil then r.stun = #up > 0 and encode.server(encode.strings(up)) or false end
  return r.stun
end

-- The iceServers array, as JSON.
-- For an answer of one entry with this URL table and STUN URLs (res.stun,
-- nil for the broker's): the webrtc text up to its username; false when none
-- of its URLs is kept.  Kept for the last STUN table it was made with.
local function head_text(self, urls, stun)
  local r = record(self, urls)
  local head = r.head
  if head == nil or r.head_stun ~= (stun or false) then
    local text = urls_json(self, urls, true)
    local stun_json = stun_text(self, stun)
    head = text and ('{"iceServers":[' .. (stun_json and (stun_json .. ",") or "")
      .. '{"urls":' .. text .. ',"username":')
    r.head, r.head_stun = head, stun or false
  end
  return head
end

local function servers_json(self, list, remember, stun_json)
  local parts, n = {}, 0
  if stun_json then n = 1; parts[1] = stun_json end
  for i = 1, #list do
    local entry = list[i]
    local urls = urls_json(self, entry.urls, remember)
    if urls then
      n = n + 1
      parts[n] = encode.server(urls, entry.username, entry.credential)
    end
  end
  return "[" .. concat(parts, ",") .. "]"
end

-- encode.tail(ttl, expires, degraded), kept for the last ttl and expires.
local function tail(self, ttl, expires, degraded)
  local last = self.memo[TAIL]
  if ttl and ttl == last.ttl and expires == last.expires and not degraded then
    return last.text
  end
  local text = encode.tail(ttl, expires, degraded)
  if ttl and not degraded then
    last.text, last.ttl, last.expires = text, ttl, expires
  end
  return text
end

-- The entries of a result: its list, or a list of its one entry.
local function list_of(res)
  return res.list or { { urls = res.urls, username = res.username, credential = res.credential } }
end

-- webrtc: '{"iceServers":[...]' and the tail.
local function webrtc(self, res)
  if res.username then -- coturn's, static's one entry: only its text is new
    local head = head_text(self, res.urls, res.stun)
    if head then
      local u, c = quote(res.username, res.credential)
      return head .. u .. ',"credential":' .. c .. "}]" .. tail(self, res.ttl, res.expires)
    end
  end
  local list, by, stun = res.list or list_of(res), res.memo_by, res.stun
  -- (with STUN URLs of its own, the text is made each time: rare, and a key
  -- more here would push the request's trace over LuaJIT's constants)
  local r = by == "list" and not stun and record(self, list)
  local array = r and r.webrtc
  if not array then
    array = servers_json(self, list, by ~= nil, stun_text(self, stun))
    if r then r.webrtc = array end
  end
  return '{"iceServers":' .. array .. tail(self, res.ttl, res.expires, res.errors ~= nil)
end

-- rest: the TURN entries are kept whole, so the text of the list is that of
-- the list as served.
local function rest(self, res)
  local list = list_of(res)
  local r = res.memo_by == "list" and record(self, list)
  local head, uris = r and r.rest_head, r and r.rest_uris
  if not head then
    head, uris = encode.rest_parts(list)
    if not head then return nil, uris end
    if r then r.rest_head, r.rest_uris = head, uris end
  end
  return encode.rest_text(head, uris, res.ttl)
end

-- format: "webrtc" or "rest" (checked by the caller).
function Render:json(res, format)
  if format == "rest" then return rest(self, res) end
  return webrtc(self, res)
end

-- A fresh copy of an array of URLs (most hold one or two).
local function copy(urls)
  local n = #urls
  if n == 1 then return { urls[1] } end
  if n == 2 then return { urls[1], urls[2] } end
  return { unpack(urls, 1, n) }
end

-- The servers of an answer: the STUN entry, then the provider's entries with
-- the URLs kept; a list that does not change is composed once, then copied.
function Render:servers(list, by, stun)
  if stun then by = nil end -- the broker's STUN entry is not the whole of it: no memo
  local r = by == "list" and record(self, list)
  local proto = r and r.proto
  local out = {}
  if proto then
    for i = 1, #proto do
      local e = proto[i]
      out[i] = { urls = copy(e.urls), username = e.username, credential = e.credential }
    end
    return out
  end
  proto = r and {}
  local n = 0
  local stun_urls = stun or (self.stun and self.stun.urls)
  if stun_urls and #stun_urls > 0 then
    n = 1
    out[1] = { urls = copy(stun_urls) }
    if proto then proto[1] = self.stun end
  end
  for i = 1, #list do
    local entry = list[i]
    local urls = kept_urls(self, entry.urls, by ~= nil)
    if urls then
      n = n + 1
      out[n] = { urls = copy(urls), username = entry.username, credential = entry.credential }
      if proto then
        proto[n] = { urls = urls, username = entry.username, credential = entry.credential }
      end
    end
  end
  if r then r.proto = proto end
  return out
end

function Render:tables(res)
  local meta
  if res.errors then
    meta = { provider = res.provider, degraded = true, errors = res.errors }
  else
    meta = { provider = res.provider, stale = res.stale, expires = res.expires, ttl = res.ttl,
      errors = res.failed }
    if res.unverified then meta.unverified, meta.errors = true, res.unverified end
  end
  if res.dropped then
    local d = {}
    for k, n in pairs(res.dropped) do d[k] = n end
    meta.dropped = d
  end
  return self:servers(list_of(res), res.memo_by, res.stun), meta
end

return M
