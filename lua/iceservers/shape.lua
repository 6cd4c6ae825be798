--[[
Shaping an answer: few URLs, spread over a pool.  Pure functions over
canonical URLs (normalize's); the broker keeps what they make by the
identity of what they are given, so a cached answer is shaped once.

  shape.class(url)  -> "stun", "turn_udp", "turns", "turn_tcp"
  shape.answer(stun, entries, max, rest, ipv6) -> stun', entries', dropped
      stun: the broker's STUN URLs; entries: the provider's ({urls,
      username, credential}).  URLs seen before (STUN_URLS included) go, and
      those on port 53 (browsers block it); with rest (the draft's format:
      TURN URIs only, split on ':' by Janus) IPv6 literal hosts too, unless
      ipv6.  Then at most max URLs in all (0: no cap; with rest only TURN URLs
      count) are kept, one per class in turn (STUN, TURN over UDP, TURN over
      TLS with 443 first, TURN over TCP), each in the answer's order; with a
      cap of 1 and a TURN URL, that one.  An entry left without URLs goes.
      A table nothing was taken from is returned itself (its identity is
      what the renderer keeps its text by).
      dropped: nil, or { duplicate = n, port_53 = n, ipv6 = n, cap = n }
      (those that happened)
  shape.hosts(urls) -> hosts, of: the hosts ("host:port") in first-seen
      order, and of[i] the URLs of hosts[i] in the answer's order
  shape.rank(hosts, user, weigh) -> the indexes of hosts, best first, by
      rendezvous (highest random weight) hashing: weigh(host .. "\0" .. user)
      is a number from a hash that is the same on every node (shape.weigher);
      removing a host moves only its users
  shape.best(hosts, user, weigh) -> rank's first, without a table
  shape.weigher(hmac_key) -> weigh: the first 48 bits of
      HMAC-SHA256("iceservers pick", text), read from the first 8 characters
      of its base64, which is what a keyed signer's fastest path (b64digest,
      through LuaJIT's FFI: no trace exit) writes
]]
local normalize = require "iceservers.normalize"

local M = {}

local ORDER = { "stun", "turn_udp", "turns", "turn_tcp" }
local TURN_ORDER = { "turn_udp", "turns", "turn_tcp" }

local function parse(url)
  return assert(normalize.parse_url(url), "shape: not a canonical URL")
end

function M.class(url)
  local p = parse(url)
  if not p.turn then return "stun" end
  if p.scheme == "turns" then return "turns" end
  return p.transport == "tcp" and "turn_tcp" or "turn_udp"
end

local function count(dropped, why)
  dropped[why] = (dropped[why] or 0) + 1
end

-- The URLs to keep under the cap, as a set: one per class in turn.
local function chosen(all, max, order)
  local by = {}
  for _, c in ipairs(ORDER) do by[c] = {} end
  for _, u in ipairs(all) do
    local list = by[M.class(u)]
    list[#list + 1] = u
  end
  -- TLS on 443 first: what gets through the strictest firewalls (a stable
  -- partition: the answer's order within each part)
  local on443, other = {}, {}
  for _, u in ipairs(by.turns) do
    local port = tonumber(parse(u).port)
    local list = port == 443 and on443 or other
    list[#list + 1] = u
  end
  for _, u in ipairs(other) do on443[#on443 + 1] = u end
  by.turns = on443
  local keep, n, round = {}, 0, 1
  while n < max do
    local took = false
    for _, c in ipairs(order) do
      local u = by[c][round]
      if u and n < max then
        keep[u] = true
        n = n + 1
        took = true
      end
    end
    if not took then break end
    round = round + 1
  end
  return keep
end

-- urls without those keep() refuses (each counted as why), or urls itself.
local function filter(urls, keep, dropped, why)
  local out
  for i = 1, #urls do
    local u = urls[i]
    if keep(u) then
      if out then out[#out + 1] = u end
    else
      if not out then
        out = {}
        for j = 1, i - 1 do out[j] = urls[j] end
      end
      count(dropped, why(u))
    end
  end
  return out or urls
end

function M.answer(stun, entries, max, rest, ipv6)
  local dropped, seen = {}, {}
  local function first(u)
    if seen[u] then return false end
    seen[u] = true
    return true
  end
  local function dup() return "duplicate" end
  local s = rest and stun or filter(stun, first, dropped, dup)
  local function ok(u)
    if seen[u] then return false end
    local p = parse(u)
    if tonumber(p.port) == 53 then return false end
    if rest and p.turn and not ipv6 and p.host:find(":", 1, true) then return false end
    seen[u] = true
    return true
  end
  local function why(u)
    if seen[u] then return "duplicate" end
    if tonumber(parse(u).port) == 53 then return "port_53" end
    return "ipv6"
  end
  local es, changed = {}, false
  for i, e in ipairs(entries) do
    local urls = filter(e.urls, ok, dropped, why)
    if urls ~= e.urls then
      changed = true
      es[i] = { urls = urls, username = e.username, credential = e.credential }
    else
      es[i] = e
    end
  end
  if max and max > 0 then
    local all = {}
    if not rest then
      for _, u in ipairs(s) do all[#all + 1] = u end
    end
    local turn = false
    for _, e in ipairs(es) do
      for _, u in ipairs(e.urls) do
        local p = parse(u)
        if p.turn then turn = true end
        if p.turn or not rest then all[#all + 1] = u end
      end
    end
    if #all > max then
      local keep = chosen(all, max, (rest or (max == 1 and turn)) and TURN_ORDER or ORDER)
      local function kept(u) return keep[u] or (rest and not parse(u).turn) end
      local function cap() return "cap" end
      if not rest then s = filter(s, kept, dropped, cap) end
      for i, e in ipairs(es) do
        local urls = filter(e.urls, kept, dropped, cap)
        if urls ~= e.urls then
          changed = true
          es[i] = { urls = urls, username = e.username, credential = e.credential }
        end
      end
    end
  end
  local out = es
  for _, e in ipairs(es) do
    if #e.urls == 0 then
      out = {}
      for _, x in ipairs(es) do
        if #x.urls > 0 then out[#out + 1] = x end
      end
      break
    end
  end
  if not changed and out == es then out = entries end
  return s, out, next(dropped) and dropped or nil
end

function M.hosts(urls)
  local hosts, of, index = {}, {}, {}
  for _, u in ipairs(urls) do
    local p = parse(u)
    local host = (p.host:find(":", 1, true) and ("[" .. p.host .. "]") or p.host)
      .. ":" .. (p.port or (p.scheme == "turns" or p.scheme == "stuns") and "5349" or "3478")
    local i = index[host]
    if not i then
      i = #hosts + 1
      index[host], hosts[i], of[i] = i, host, {}
    end
    of[i][#of[i] + 1] = u
  end
  return hosts, of
end

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[alphabet:byte(i)] = i - 1 end
end

function M.weigher(hmac_key)
  local signer = hmac_key("sha256", "iceservers pick")
  return function(text)
    local a, b, c, d, e, f, g, h = signer:b64digest(text):byte(1, 8)
    return ((((((B64[a] * 64 + B64[b]) * 64 + B64[c]) * 64 + B64[d]) * 64 + B64[e]) * 64
      + B64[f]) * 64 + B64[g]) * 64 + B64[h]
  end
end

function M.best(hosts, user, weigh)
  local best, top = 1, -1
  for i = 1, #hosts do
    local w = weigh(hosts[i] .. "\0" .. user)
    if w > top or (w == top and hosts[i] < hosts[best]) then best, top = i, w end
  end
  return best
end

function M.rank(hosts, user, weigh)
  local ranked, w = {}, {}
  for i, h in ipairs(hosts) do
    ranked[i] = i
    w[i] = weigh(h .. "\0" .. user)
  end
  table.sort(ranked, function(a, b)
    if w[a] ~= w[b] then return w[a] > w[b] end
    return hosts[a] < hosts[b]
  end)
  return ranked
end

return M
