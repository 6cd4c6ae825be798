-- luacheck: globals ngx
--[[
Who may get credentials, besides authentication (iceservers.ngx's serve,
docs/auth.md): the rate limits and the denylist.  The counters and the
revocations live in a store (iceservers.ngx.stores): the shared dict, so
every worker of a node counts and refuses alike, or Redis, for every node.

  guard.rate(text)            -> {n =, window =} from "20/minute", "5/10s";
                                 or nil, why (settings' type "rate")
  guard.client(addr)          -> the address a per-IP limit counts: IPv4 as
                                 it is, IPv6 by its /64
  guard.over(store, kind, id, rule) -> false when under the limit; or the
                                 seconds until its window ends (Retry-After);
                                 or nil, err when the store fails
  guard.revoke(store, user, seconds)  the user is refused until then
  guard.revoked(store, user, file)   -> true when the user is denied (the
                                 store's, or the denylist file's); nil, err
  guard.denylist(path)        -> a reader of ICESERVERS_DENYLIST_FILE: read
                                 again when it changes (looked at no more
                                 than once a second)
]]
local core = require "iceservers.core"
local clock = require "iceservers.ngx.clock"

local M = {}

local UNITS = { s = 1, second = 1, seconds = 1, m = 60, minute = 60, minutes = 60,
  h = 3600, hour = 3600, hours = 3600, d = 86400, day = 86400, days = 86400 }

function M.rate(text)
  if type(text) ~= "string" then return nil, "must be a string like 20/minute" end
  local n, k, unit = text:match("^%s*(%d+)%s*/%s*(%d*)%s*(%a+)%s*$")
  local per = unit and UNITS[unit:lower()]
  n, k = tonumber(n), tonumber(k ~= "" and k or "1")
  if not per or not n or n < 1 or not k or k < 1 then
    return nil, "must be requests per window, like 20/minute, 60/hour or 5/10s"
  end
  return { n = n, window = k * per, text = text }
end

-- The first 4 groups of an IPv6 address, "::" expanded, as the /64's key.
local function prefix64(addr)
  local head, tail = addr:match("^([^%%]-)::([^%%]*)")
  local groups = {}
  if head then
    local h, t = {}, {}
    for g in head:gmatch("[^:]+") do h[#h + 1] = g end
    for g in tail:gmatch("[^:]+") do t[#t + 1] = g end
    for _, g in ipairs(h) do groups[#groups + 1] = g end
    for _ = 1, 8 - #h - #t do groups[#groups + 1] = "0" end
    for _, g in ipairs(t) do groups[#groups + 1] = g end
  else
    for g in addr:gmatch("[^:%%]+") do groups[#groups + 1] = g end
  end
  for i = 1, 4 do groups[i] = ("%x"):format(tonumber(groups[i] or "0", 16) or 0) end
  return table.concat(groups, ":", 1, 4) .. "::/64"
end

function M.client(addr)
  if type(addr) ~= "string" then return "-" end
  if addr:find(":", 1, true) then return prefix64(addr) end
  return addr
end

-- A fixed window started by the key's first request, counted in one step
-- (the store's incr: exact across workers and nodes).
function M.over(store, kind, id, rule)
  local prefix = rule[kind] -- the key's prefix, made once per rule and kind
  if not prefix then
    prefix = "limit|" .. kind .. "|" .. rule.window .. "|"
    rule[kind] = prefix
  end
  local key = prefix .. id
  local n, left = store:incr(key, rule.window)
  if not n then return nil, left end
  if n <= rule.n then return false end
  left = left or store:ttl(key)
  return math.max(1, math.ceil(tonumber(left) or rule.window))
end

function M.revoke(store, user, seconds)
  if type(user) ~= "string" or user == "" then error("revoke: user must be a string", 2) end
  seconds = tonumber(seconds)
  if not seconds or seconds <= 0 then error("revoke: seconds must be a positive number", 2) end
  local ok, err = store:set("deny|" .. user, clock.time() + seconds, seconds)
  if not ok then return nil, err end
  return true
end

function M.unrevoke(store, user)
  return store:delete("deny|" .. user)
end

-- The store's denied users: { {user =, until_t =}, ... }; or nil, err.
function M.revoked_list(store)
  local keys, err = store:keys("deny|")
  if not keys then return nil, err end
  local out = {}
  for _, key in ipairs(keys) do
    local until_t = store:get(key)
    if until_t then out[#out + 1] = { user = key:sub(6), until_t = until_t } end
  end
  table.sort(out, function(a, b) return a.user < b.user end)
  return out
end

-- A denylist file: one user id per line, optionally followed by a Unix time
-- after which it no longer applies; # starts a comment.
local function parse(text)
  local users = {}
  for line in text:gmatch("[^\n]+") do
    line = line:gsub("#.*$", "")
    local user, until_t = line:match("^%s*(%S+)%s*(%d*)%s*$")
    if user then users[user] = tonumber(until_t) or math.huge end
  end
  return users
end

function M.denylist(path)
  local r = { path = path, users = {}, checked = -1, mtime = nil }
  function r.get(now)
    if now - r.checked >= 1 or now < r.checked then
      r.checked = now
      local st = core.stat(path)
      if not st then
        if r.mtime ~= false then
          ngx.log(ngx.ERR, "iceservers: ICESERVERS_DENYLIST_FILE ", path, " cannot be read")
        end
        r.mtime = false -- keep the last list: a file being replaced is gone for a moment
      elseif st.mtime ~= r.mtime then
        local f = io.open(path, "rb")
        if f then
          r.users, r.mtime = parse(f:read("*a") or ""), st.mtime
          f:close()
        end
      end
    end
    return r.users
  end
  return r
end

function M.revoked(store, user, file)
  local now = clock.time()
  if file then
    local t = file.get(now)[user]
    if t and t > now then return true end
  end
  if not store then return false end
  local until_t, err = store:get("deny|" .. user)
  if err then return nil, err end
  if until_t and until_t > now then return true end
  return false
end

return M
