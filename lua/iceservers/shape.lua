--[[
Shaping an answer (issue 14, not wired yet): few URLs, spread over a pool.
Pure functions over canonical URLs (normalize's), so the broker can memoize
what they make by the identity of what they are given.

  shape.class(url)                  -> "stun", "turn_udp", "turns", "turn_tcp"
  shape.answer(stun, entries, max)  -> stun', entries', dropped
      stun: the broker's STUN URLs; entries: the provider's ({urls, username,
      credential}); URLs seen before (STUN_URLS included) and port 53 ones are
      dropped, then at most max URLs in all (0: no cap) are kept, one per class
      in turn (STUN, TURN over UDP, TURN over TLS with 443 first, TURN over
      TCP), in the answer's order; an entry left without URLs goes.
      dropped = { duplicate = n, port_53 = n, cap = n } (only those that happened)
  shape.pick(hosts, user, n, digest) -> the n hosts of user by rendezvous
      (highest random weight) hashing: digest(host .. "\0" .. user), the same
      on every node; removing a host moves only its users
]]
local normalize = require "iceservers.normalize"

local M = {}

local ORDER = { "stun", "turn_udp", "turns", "turn_tcp" }

function M.class(url)
  local p = assert(normalize.parse_url(url), "shape: not a canonical URL")
  if not p.turn then return "stun" end
  if p.scheme == "turns" then return "turns" end
  return p.transport == "tcp" and "turn_tcp" or "turn_udp"
end

local function port_of(url)
  local p = normalize.parse_url(url)
  return p and tonumber(p.port) or nil
end

local function count(dropped, why)
  dropped[why] = (dropped[why] or 0) + 1
end

-- The URLs to keep under the cap: a set of them.
local function chosen(all, max)
  local by = {}
  for _, c in ipairs(ORDER) do by[c] = {} end
  for _, u in ipairs(all) do
    local list = by[M.class(u)]
    list[#list + 1] = u
  end
  -- TLS on 443 first: what gets through the strictest firewalls
  table.sort(by.turns, function(a, b)
    local pa, pb = port_of(a) == 443, port_of(b) == 443
    if pa ~= pb then return pa end
    return false
  end)
  local keep, n, round = {}, 0, 1
  while n < max do
    local took = false
    for _, c in ipairs(ORDER) do
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

function M.answer(stun, entries, max)
  local dropped, seen = {}, {}
  local s = {}
  for _, u in ipairs(stun) do
    if seen[u] then count(dropped, "duplicate") else seen[u] = true; s[#s + 1] = u end
  end
  local es = {}
  for _, e in ipairs(entries) do
    local urls = {}
    for _, u in ipairs(e.urls) do
      if seen[u] then
        count(dropped, "duplicate")
      elseif port_of(u) == 53 then
        count(dropped, "port_53")
      else
        seen[u] = true
        urls[#urls + 1] = u
      end
    end
    es[#es + 1] = { urls = urls, username = e.username, credential = e.credential }
  end
  if max and max > 0 then
    local all = {}
    for _, u in ipairs(s) do all[#all + 1] = u end
    for _, e in ipairs(es) do
      for _, u in ipairs(e.urls) do all[#all + 1] = u end
    end
    if #all > max then
      local keep = chosen(all, max)
      local function cut(urls)
        local out = {}
        for _, u in ipairs(urls) do
          if keep[u] then out[#out + 1] = u else count(dropped, "cap") end
        end
        return out
      end
      s = cut(s)
      for _, e in ipairs(es) do e.urls = cut(e.urls) end
    end
  end
  local out = {}
  for _, e in ipairs(es) do
    if #e.urls > 0 then out[#out + 1] = e end
  end
  return s, out, dropped
end

-- The weight of a host for a user: the first 6 bytes of the digest as a number
-- (exact in a double on Lua 5.4 and LuaJIT alike).
local function weight(digest, host, user)
  local d = digest(host .. "\0" .. user)
  local w = 0
  for i = 1, 6 do w = w * 256 + d:byte(i) end
  return w
end

function M.pick(hosts, user, n, digest)
  if n >= #hosts then return hosts end
  local ranked = {}
  for i, h in ipairs(hosts) do ranked[i] = { h = h, w = weight(digest, h, user) } end
  table.sort(ranked, function(a, b)
    if a.w ~= b.w then return a.w > b.w end
    return a.h < b.h
  end)
  local out = {}
  for i = 1, n do out[i] = ranked[i].h end
  return out
end

return M
