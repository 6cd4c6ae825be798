--[[
The broker: policy only.  Broker:resolve(user, req) is the one place that
checks the user, walks the chain in order (a shared provider through the
cache, every provider through its backoff), and decides the fallback.  It
returns one result record:

  list      the provider's entries, normalized (the fallback's: none); or
  urls, username, credential   those of the provider's one TURN entry
            (coturn's, static's), read from its answer and not kept, so a
            request keeps no table of its own (LuaJIT sinks it)
  provider  the name of the provider that served ("stun" for the fallback)
  ttl, expires   seconds left and Unix time, when the list has credentials
  stale     true: a cached answer served while its refresh fails
  errors    the fallback served: one line per provider
  failed    a provider after the first served: one line per provider before it
  unverified  every TURN provider's URLs are down in this node's view, and
            the first one's answer is served as it is (fail open): the
            providers' errors, one line each
  stun      the broker's STUN URLs that are up, when some are down (else nil:
            all of them)
  memo_by   what the renderer may key what it computes by: "list" (a cached
            answer's list, the same table until it is refreshed), "urls"
            (the one entry's URL table: the provider's, as coturn's), or nil
  dropped   what shaping left out, counts by reason (duplicate, port_53,
            ipv6, cap), when it left something out (else nil or false)

The URLs of the answer are shaped for the format asked (iceservers.shape:
one host pick per user when the entry asks for it, then dedupe, port 53,
the cap), after the chain and health, and what that makes of a table is
kept by the table's identity: a cached answer is shaped once.

broker:get composes fresh tables from it and broker:json renders it
(iceservers.render); neither walks the chain.
]]
local cache = require "iceservers.cache"
local contract = require "iceservers.contract"
local shape = require "iceservers.shape"
local REGION_NAME = require("iceservers.options").REGION_NAME

local Broker = {}
Broker.__index = Broker

local concat, floor, ceil, random = table.concat, math.floor, math.ceil, math.random
local byte, find = string.byte, string.find
local type, pcall = type, pcall
local NOTHING = {} -- the provider list of a fallback answer (never modified)
-- The req of a call without one, and of a shared provider's: per-request
-- fields must not reach an answer that goes to every user.
-- (A closure made in a function would keep LuaJIT from compiling its returns.)
local function read_only() error("req is read-only", 2) end
local NO_REQ = setmetatable({}, { __newindex = read_only })

-- Whether s is well-formed UTF-8 (RFC 3629: no overlong form, no surrogate,
-- nothing above U+10FFFF); by hand, as LuaJIT has no utf8 library.  The
-- second byte's range is what rules out overlongs, surrogates and the top.
local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local len, lo, hi
      if c >= 0xC2 and c <= 0xDF then len, lo, hi = 2, 0x80, 0xBF
      elseif c == 0xE0 then len, lo, hi = 3, 0xA0, 0xBF
      elseif c == 0xED then len, lo, hi = 3, 0x80, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then len, lo, hi = 3, 0x80, 0xBF
      elseif c == 0xF0 then len, lo, hi = 4, 0x90, 0xBF
      elseif c == 0xF4 then len, lo, hi = 4, 0x80, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then len, lo, hi = 4, 0x80, 0xBF
      else return false end
      if i + len - 1 > n then return false end
      local c2 = byte(s, i + 1)
      if c2 < lo or c2 > hi then return false end
      for j = i + 2, i + len - 1 do
        local cj = byte(s, j)
        if cj < 0x80 or cj > 0xBF then return false end
      end
      i = i + len
    end
  end
  return true
end

-- A byte loop, not find(user, "[^\32-\126]"): LuaJIT compiles no pattern,
-- and this runs on every request (the trace would stop here).
local function printable(s)
  for i = 1, #s do
    local c = byte(s, i)
    if c < 32 or c > 126 then return false end
  end
  return true
end

local function check_user(user)
  if type(user) ~= "string" then
    return nil, "invalid user: must be a string, not a " .. type(user)
  end
  if #user < 1 or #user > 256 then
    return nil, "invalid user: must be 1 to 256 bytes"
  end
  if printable(user) then return true end
  if user:find("%c") then
    return nil, "invalid user: control characters are not allowed"
  end
  if not utf8_valid(user) then return nil, "invalid user: not valid UTF-8" end
  return true
end

-- After check_user: the check_user of each provider of the chain that has
-- one.  The first refusal is the answer, not a failure of that provider; a
-- hook that raises is an error of that provider.
function Broker:check_hooks(user, req)
  local links = self.checked
  for i = 1, #links do
    local link = links[i]
    local ok, res, why = pcall(link.check_user, user, link.opts, req)
    if not ok then return nil, link.name .. ": check_user failed: " .. link.say(res) end
    if not res then return nil, "invalid user: " .. link.say(why or "refused") end
  end
  return true
end

local function blocked(state, now)
  return ("%s (not retried for %d s)"):format(state.why, ceil(state.until_t - now))
end

-- What a failure leaves: an event, and (but for a STUN provider) a backoff,
-- looked at before each call of this provider from now on.
function Broker:failed(link, state, now, why, retry_after)
  self.event("failure", link.name)
  if link.kind ~= "stun" then
    if not link.has_failed then
      link.has_failed = true
      state = self.cache:get(link.backoff_key) -- another process's, maybe
    end
    self.cache:set(link.backoff_key, cache.failed(state, now, why, retry_after))
  end
  return why
end

-- A provider asked on every request (coturn signs locally; one of the
-- operator's may answer per user).  Its backoff is read only once it has
-- failed in this process: until then it costs no cache read.
local function ask(self, link, user, req, now)
  local state
  if link.has_failed then
    state = self.cache:get(link.backoff_key)
    if cache.blocked(state, now) then return nil, blocked(state, now) end
  end
  local answer, ttl, expires, turn, one = contract.call(link, user, req, now)
  if not answer then return nil, self:failed(link, state, now, ttl, expires) end
  if state then self.cache:set(link.backoff_key, nil) end
  local left
  expires = turn and (expires or (ttl and now + ttl))
  if expires then
    expires = floor(expires)
    left = expires - floor(now)
  else
    expires = nil
  end
  -- every field in the constructor: a key added later would cost a call
  if one then
    return { urls = answer.urls, username = answer.username, credential = answer.credential,
      provider = link.name, memo_by = "urls", expires = expires, ttl = left,
      pick = answer.pick, dropped = false }
  end
  return { list = answer, provider = link.name, expires = expires, ttl = left }
end

-- A cached answer (or one just cached) as a result.
local function from_entry(link, entry, now, stale)
  local expires = floor(entry.expires)
  return { list = entry.list, provider = link.name, expires = expires,
    ttl = expires - floor(now), stale = stale, memo_by = "list", dropped = false }
end

-- Where a shared provider's answer for a region lives: a slot of its own
-- (cache keys, and the req its get sees), made once per region name; a
-- request with no region, or with a name that is not one, gets the link's.
-- A bounded number: region names come from requests.
local MAX_SLOTS = 64
local function slot(link, region)
  if type(region) ~= "string" or not find(region, REGION_NAME) then
    return link
  end
  local slots = link.slots
  local s = slots and slots[region]
  if s then return s end
  if not slots then
    slots = { n = 0 }
    link.slots = slots
  end
  if slots.n >= MAX_SLOTS then return link end
  local key = link.key .. "|region=" .. region
  s = { key = key, backoff_key = key .. "|backoff", region = region,
    req = setmetatable({}, { __index = { region = region }, __newindex = read_only }) }
  slots[region], slots.n = s, slots.n + 1
  return s
end

-- With a backend that can lock (nginx's shared dict), one request refreshes
-- for all: the others serve the still-usable entry, or, with none, wait for
-- the refresh.  Returns true (refresh, holding the lock if there is one);
-- or false, entry (serve that one); or false, nil, why.
function Broker:lock_refresh(at, entry, now)
  local store = self.cache
  if not store.lock then return true end
  if cache.usable(entry, now) then
    if store:lock(at.key, false) then return true end
    return false, entry -- someone else is refreshing it
  end
  local got = store:lock(at.key, true)
  now = self.ctx.now()
  local again = store:get(at.key)
  if cache.usable(again, now) then
    if got then store:unlock(at.key) end
    return false, again
  end
  if not got then return false, nil, "timed out waiting for another request's refresh" end
  local state = store:get(at.backoff_key) -- the refresh before ours may have failed
  if cache.blocked(state, now) then
    store:unlock(at.key)
    return false, nil, blocked(state, now)
  end
  return true
end

-- Asks a shared provider (without a user, and with no req but the region of
-- its slot `at`: its answer goes to every user of that region) and caches a
-- TURN answer; serves the stale entry when that fails.
function Broker:refresh(link, at, entry, state, now)
  local store = self.cache
  local list, ttl, expires, turn, one = contract.call(link, nil, at.req or NO_REQ, now)
  if one then -- the cache keeps a list of what is read of the entry, no more
    list = { { urls = list.urls, username = list.username, credential = list.credential } }
  end
  local t = self.ctx.now()
  local res
  if list then
    if turn then
      local fresh = cache.entry(list, t, ttl or (expires and expires - t) or self.cache_ttl,
        expires)
      store:set(at.key, fresh)
      if state then store:set(at.backoff_key, nil) end
      res = from_entry(link, fresh, now)
    else
      res = { list = list, provider = link.name }
    end
  else
    local why = ttl
    self.event("failure", link.name)
    store:set(at.backoff_key, cache.failed(state, t, why, expires))
    if cache.usable(entry, t) then
      self.event("stale", link.name)
      if not entry.stale_logged then
        entry.stale_logged = true
        store:set(at.key, entry)
        link.ctx.log("warn", "refresh failed, serving cached credentials: " .. link.say(why))
      end
      res = from_entry(link, entry, now, true)
    end
    if not res then
      if store.unlock then store:unlock(at.key) end
      return nil, why
    end
  end
  if store.unlock then store:unlock(at.key) end
  return res
end

-- A provider whose answer is the same for every user: served from the cache,
-- refreshed at half-life, stale while a refresh fails, backed off when down;
-- one answer per region asked for.
local function cached(self, link, now, region)
  local store = self.cache
  local at = region and slot(link, region) or link
  local entry = store:get(at.key)
  if cache.fresh(entry, now) then
    self.event("hit", link.name)
    return from_entry(link, entry, now)
  end
  self.event("miss", link.name)
  local state = store:get(at.backoff_key)
  if cache.blocked(state, now) then
    if cache.usable(entry, now) then
      self.event("stale", link.name)
      return from_entry(link, entry, now, true)
    end
    return nil, blocked(state, now)
  end
  local go_on, other, why = self:lock_refresh(at, entry, now)
  if go_on then return self:refresh(link, at, entry, state, now) end
  if other then return from_entry(link, other, now) end
  return nil, why
end

-- One warning when the fallback starts serving, then at most one a minute
-- while it goes on (with how many answers it served meanwhile), so an outage
-- under load does not flood the log.
local WARN_EVERY = 60
function Broker:warn_degraded(summary, now)
  local w = self.degraded_warning
  if w and now - w.at < WARN_EVERY and now >= w.at then
    w.quiet = w.quiet + 1
    return
  end
  local more = w and w.quiet > 0 and (" (%d more degraded answers since the last warning)")
    :format(w.quiet) or ""
  self.degraded_warning = { at = now, quiet = 0 }
  self.ctx.log("warn", summary .. "; serving STUN only" .. more)
end

--[[
Health (settings.health: up(url) false when the URL is down, and a version
that changes when any state does): a result with the down URLs left out, and
the entries left without one; or nil, why when no TURN URL is left.  What is
made of a URL table or a list is kept by its identity with the version it was
made under, so while nothing changes a request costs a lookup, not a walk (no
loop: LuaJIT keeps the request in one trace), and a filtered table keeps its
identity (the renderer's memo stays valid).
]]
local function up_urls(self, urls, v)
  local m = self.up_memo[urls]
  if m and m.v == v then return m.urls end
  local up, out, n = self.health.up, nil, 0
  for i = 1, #urls do
    if up(urls[i]) == false then
      if not out then
        out = {}
        for j = 1, i - 1 do out[j] = urls[j] end
        n = i - 1
      end
    elseif out then
      n = n + 1
      out[n] = urls[i]
    end
  end
  out = out or urls
  self.up_memo[urls] = { v = v, urls = out }
  return out
end

-- A list's entries with their kept URLs (the list itself when none is down),
-- and why it has no TURN URL left (nil when it has one, or never had any).
local function up_list(self, list, v)
  local m = self.up_memo[list]
  if m and m.v == v then return m.list, m.why end
  local out, turn, turn_up = nil, 0, 0
  for i = 1, #list do
    local e = list[i]
    local urls = up_urls(self, e.urls, v)
    if e.username then turn, turn_up = turn + #e.urls, turn_up + #urls end
    if urls ~= e.urls and not out then
      out = {}
      for j = 1, i - 1 do out[j] = list[j] end
    end
    if out and #urls > 0 then
      out[#out + 1] = urls == e.urls and e
        or { urls = urls, username = e.username, credential = e.credential }
    end
  end
  local why = turn > 0 and turn_up == 0 and ("all %d TURN URLs down"):format(turn) or nil
  out = out or list
  self.up_memo[list] = { v = v, list = out, why = why }
  return out, why
end

-- res is this request's own (ask and cached make a new one each time), so
-- what is left of it is written into it.
local function healthy(self, res, v)
  if res.username then -- one TURN entry
    local urls = up_urls(self, res.urls, v)
    if #urls == 0 then return nil, ("all %d TURN URLs down"):format(#res.urls) end
    res.urls = urls
    return res
  end
  local list, why = up_list(self, res.list, v)
  if why then return nil, why end
  res.list = list
  return res
end

-- The broker's STUN URLs that are up, when some are down.
local function stun_up(self, res, v)
  local urls = self.stun_urls
  local kept = up_urls(self, urls, v)
  if kept ~= urls then res.stun = kept end
  return res
end

-- One error line when answers start being served unverified, one when they stop.
function Broker:note_unverified(now_unverified, summary)
  if now_unverified == (self.unverified_logged or false) then return end
  self.unverified_logged = now_unverified
  if now_unverified then
    self.ctx.log("error", summary .. "; serving the first answer unverified")
  else
    self.ctx.log("error", "a TURN server is up again: answers are verified again")
  end
end

--[[
Shaping.  A one-entry answer that asks for it (its entry's pick: each user
gets that many of its hosts) is narrowed to the user's hosts first; then the
answer is shaped for its format.  What is made of a URL table or a list is
kept by its identity (weak keys; a value never holds its key, as LuaJIT has
no ephemerons: SAME stands for "the key itself").
]]
local SAME = {}
local MAX_SUBSETS = 256

-- The URLs of urls that user gets: those of the n hosts rendezvous hashing
-- ranks first for the user (the same on every node); with no user, n at
-- random.  The same table for the same hosts.
function Broker:picked(urls, n, user)
  local m = self.pick_memo[urls]
  if not m then
    local hosts, of = shape.hosts(urls)
    local host_of = {}
    for i = 1, #of do
      for _, u in ipairs(of[i]) do host_of[u] = i end
    end
    m = { hosts = hosts, of = of, host_of = host_of, subsets = {}, n = 0 }
    self.pick_memo[urls] = m
  end
  local hosts = m.hosts
  local h = #hosts
  if n >= h then return urls end
  if n == 1 then -- no table per request
    return m.of[user and shape.best(hosts, user, self.weigh) or random(h)]
  end
  local ranked
  if user then
    ranked = shape.rank(hosts, user, self.weigh)
  else
    ranked = {}
    for i = 1, h do
      local j = random(i)
      ranked[i], ranked[j] = ranked[j], i
    end
  end
  local set, key = {}, {}
  for i = 1, n do set[ranked[i]] = true end
  for i = 1, h do if set[i] then key[#key + 1] = i end end
  key = concat(key, ",")
  local out = m.subsets[key]
  if not out then
    if m.n >= MAX_SUBSETS then m.subsets, m.n = {}, 0 end
    out = {}
    for _, u in ipairs(urls) do
      if set[m.host_of[u]] then out[#out + 1] = u end
    end
    m.subsets[key], m.n = out, m.n + 1
  end
  return out
end

local DROPPED = {
  duplicate = "URLs already in the answer",
  port_53 = "URLs on port 53 (browsers block it)",
  ipv6 = "TURN URLs with an IPv6 literal host (the rest format; ICESERVERS_REST_IPV6=1 "
    .. "keeps them)",
  cap = "URLs over the cap of %d (ICESERVERS_MAX_URLS)",
}

-- One info line per reason, the first time shaping drops for it.
function Broker:note_dropped(dropped)
  local logged = self.dropped_logged
  for why, n in pairs(dropped) do
    if not logged[why] then
      logged[why] = true
      self.ctx.log("info", ("shaping: left %d %s out of an answer (said once)")
        :format(n, DROPPED[why]:format(self.max_urls)))
    end
  end
end

-- Whether entries have a TURN URL with credentials (one: the entry of a
-- one-entry answer, whose URLs are all TURN).
local function has_turn(entries, one)
  for _, e in ipairs(entries) do
    if (one or e.username) and #e.urls > 0 then
      if one then return true end
      for _, u in ipairs(e.urls) do
        if u:find("^turns?:") then return true end
      end
    end
  end
  return false
end

-- What shaping makes of a URL table (one: a one-entry answer's) or a list,
-- with the STUN URLs stun_in, for the rest format or not.
function Broker:shape(key, one, stun_in, rest)
  local entries = one and { { urls = key } } or key
  local s, es, dropped = shape.answer(stun_in, entries, self.max_urls, rest, self.rest_ipv6)
  local rec = { stun_in = stun_in, stun = s, dropped = dropped }
  -- out: what the answer's URL table (one) or list becomes (SAME: itself)
  if one then
    local urls = es[1] and es[1].urls or {}
    rec.out = urls == key and SAME or urls
  else
    rec.out = es == key and SAME or es
  end
  rec.same = not dropped and s == stun_in
  if dropped then
    self:note_dropped(dropped)
    if has_turn(entries, one) and not has_turn(es, one) then
      local parts = {}
      for why, n in pairs(dropped) do parts[#parts + 1] = ("%d %s"):format(n, why) end
      table.sort(parts)
      rec.out = false -- the answer fails, with no_turn
      rec.no_turn = "no TURN URL left once shaped (dropped: " .. concat(parts, ", ") .. ")"
    end
  end
  return rec
end

-- res picked and shaped for format; or nil, why when shaping left a TURN
-- answer without a TURN URL (then it counts as that provider's failure).
-- The steady state reads few fields: LuaJIT keeps a request in one trace
-- only while the trace holds at most 500 constants (maxirconst).
local function shaped(self, res, user, format)
  local one = res.username ~= nil
  if one and res.pick then res.urls = self:picked(res.urls, res.pick, user) end
  local key = one and res.urls or res.list
  local m = res.memo_by and self.shape_memo[key]
  local rec = m and (format == "rest" and m.rest or m.webrtc)
  local stun_in = res.stun or self.stun_urls
  if not rec or rec.stun_in ~= stun_in then
    rec = self:shape(key, one, stun_in, format == "rest")
    if res.memo_by then
      if not m then
        m = {}
        self.shape_memo[key] = m
      end
      m[format] = rec
    end
  end
  if rec.same then return res end
  local out = rec.out
  if not out then return nil, rec.no_turn end
  if out ~= SAME then
    if one then res.urls = out else res.list = out end
  end
  if rec.stun ~= stun_in then res.stun = rec.stun end
  res.dropped = rec.dropped
  return res
end

local function check_format(format)
  if format ~= "webrtc" and format ~= "rest" then
    error(("iceservers: unknown format %q (webrtc or rest)"):format(tostring(format)), 3)
  end
end

-- user: nil or a user id; req: nil or a table of per-request fields, handed
-- to each provider's get and check_user (never stored: ctx and opts are the
-- broker's, shared by concurrent requests); format: what the answer is
-- shaped for.  Returns a result; or nil, err.
function Broker:resolve(user, req, format)
  if req == nil then
    req = NO_REQ
  elseif type(req) ~= "table" then
    error("iceservers: req must be a table of per-request fields, not a " .. type(req), 3)
  end
  if user ~= nil then
    local ok, err = check_user(user)
    if ok and self.checked then ok, err = self:check_hooks(user, req) end
    if not ok then return nil, err end
  end
  local now = self.ctx.now()
  local links, errors = self.chain, nil
  local health, unverified, others = self.health, nil, false
  local v = health and health.version()
  for i = 1, #links do
    local link = links[i]
    local res, why
    if link.shared then
      res, why = cached(self, link, now, req.region)
    else
      res, why = ask(self, link, user, req, now)
    end
    if res and health then
      local raw = res
      res, why = healthy(self, raw, v)
      if res then
        res = stun_up(self, res, v)
      else
        unverified = unverified or raw
      end
    elseif not res then
      others = true
    end
    if res then
      res, why = shaped(self, res, user, format)
      if not res then others = true end
    end
    if res then
      if self.degraded_warning then self.degraded_warning = nil end
      if errors then res.failed = errors end -- the providers before it, for meta.errors
      if health and self.unverified_logged then self:note_unverified(false) end
      return res
    end
    errors = errors or {}
    errors[#errors + 1] = link.name .. ": " .. link.say(why)
  end
  local summary = "every provider failed: " .. concat(errors, "; ")
  if unverified and not others then -- fail open: this node's view may be wrong
    self:note_unverified(true, summary)
    unverified.unverified = errors
    return shaped(self, unverified, user, format)
  end
  if self.fallback == "none" then return nil, summary end
  self.event("degraded", "stun")
  self:warn_degraded(summary, now)
  return shaped(self, { list = NOTHING, provider = "stun", errors = errors, memo_by = "list" },
    nil, format)
end

-- servers, meta; or nil, err.  format: what the answer is shaped for
-- ("webrtc", the default, or "rest": then iceservers.encode(servers, meta,
-- "rest") writes what broker:json(user, "rest", req) does).
function Broker:get(user, req, format)
  format = format or "webrtc"
  check_format(format)
  local res, err = self:resolve(user, req, format)
  if not res then return nil, err end
  return self.render:tables(res)
end

--[=[
Broker:json(user[, format[, req]]): the answer as JSON text, the bytes that
iceservers.encode(broker:get(user, req)) writes, without building get's
tables.  This is what the nginx endpoint serves.  Returns the text; or nil,
err, "get" where get returns nil, err; or nil, err, "encode" where encode
does (the rest format of an answer without TURN).  An unknown format raises,
as in encode.
]=]
function Broker:json(user, format, req)
  format = format or "webrtc"
  check_format(format)
  local res, err = self:resolve(user, req, format)
  if not res then return nil, err, "get" end
  local text, why = self.render:json(res, format)
  if not text then return nil, why, "encode" end
  return text
end

--[[
What a probe round of these providers (a list of names) checks: their URLs,
each with the credential of its entry, then the broker's STUN URLs; each URL
once.  A shared provider's answer is read from the cache (never a call: an
answer not cached yet is not probed), each region's too; the others are
asked, as for a request without a user (coturn signs), and once more per
region of opts.region_names (coturn's and static's pools).  Returns { {url =, credential =}, ... }.
]]
function Broker:health_targets(names)
  local wanted = {}
  for _, n in ipairs(names or {}) do wanted[n] = true end
  local items, seen = {}, {}
  local function add(url, e)
    if seen[url] then return end
    seen[url] = true
    items[#items + 1] = { url = url, credential = e and e.username
      and { username = e.username, credential = e.credential } or nil }
  end
  local now = self.ctx.now()
  local function add_list(list)
    for _, e in ipairs(list or {}) do
      for _, u in ipairs(e.urls) do add(u, e) end
    end
  end
  for _, link in ipairs(self.chain) do
    if wanted[link.name] then
      if link.shared then
        local entry = self.cache:get(link.key)
        add_list(entry and entry.list)
        for region, at in pairs(link.slots or {}) do
          if region ~= "n" then
            entry = self.cache:get(at.key)
            add_list(entry and entry.list)
          end
        end
      else -- each region's pool too (a provider with pools names them)
        local reqs = { NO_REQ }
        for _, region in ipairs(link.opts.region_names or {}) do
          reqs[#reqs + 1] = { region = region }
        end
        for _, req in ipairs(reqs) do
          local answer, _, _, _, one = contract.call(link, nil, req, now)
          add_list(one and { answer } or answer)
        end
      end
    end
  end
  for _, u in ipairs(self.stun_urls) do add(u) end
  return items
end

-- The provider names of the chain, in order (for logs and the CLI).
function Broker:providers()
  local out = {}
  for i, link in ipairs(self.chain) do out[i] = link.name end
  return out
end

-- A broker from a config table (iceservers.new) or from the variables that
-- env(name) gives (iceservers.from_env, which makes config of them): the
-- settings checked, the context providers see, the renderer, the chain.
local function build(config, env)
  local s = require("iceservers.settings").resolve(config)
  local self = setmetatable({}, Broker)
  self.fallback = s.fallback
  self.cache = s.cache or cache.memory()
  self.event = s.on_event or function() end
  self.cache_ttl = s.cache_ttl
  self.ctx = require("iceservers.context").new(s)
  self.render = require("iceservers.render").new(s.stun_urls)
  self.stun_urls = s.stun_urls
  self.health = s.health
  self.up_memo = setmetatable({}, { __mode = "k" }) -- URL tables and lists -> what is up
  self.max_urls, self.rest_ipv6 = s.max_urls, s.rest_ipv6
  self.shape_memo = setmetatable({}, { __mode = "k" }) -- URL tables and lists -> shaped
  self.pick_memo = setmetatable({}, { __mode = "k" }) -- a pool's URL table -> its hosts
  self.dropped_logged = {}
  self.weigh = shape.weigher(self.ctx.crypto.hmac_key)
  self.chain = require("iceservers.chain").build(s, config, env, self.ctx, self.event)
  for _, link in ipairs(self.chain) do
    if link.check_user then
      self.checked = self.checked or {}
      self.checked[#self.checked + 1] = link
    end
  end
  return self
end

return { build = build }
