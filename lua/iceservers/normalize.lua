-- iceservers.normalize: turns sloppy ICE server entries (from operator
-- configuration or from a provider's answer) into clean W3C RTCIceServer
-- entries {urls = {...}, username = ..., credential = ...}.
--
-- Input is read with rawget/next only: a provider's decoded JSON may carry
-- metatables (cjson's array_mt, or worse), and no metamethod of the input must
-- get a chance to run or raise here.
local M = {}

local byte, find, format, lower, sub = string.byte, string.find, string.format,
  string.lower, string.sub
local concat, sort = table.concat, table.sort
local floor = math.floor
local type, next, rawget, getmetatable = type, next, rawget, getmetatable

-- Longest URL worth parsing; a valid one is far shorter (a 253-byte host plus
-- scheme, port and transport), so this only bounds the work done on junk.
local MAX_URL = 512
-- Longest piece of an input value ever copied into a reason.
local MAX_QUOTE = 80
-- Larger "indexes" are not array slots (and would not format with %d).
local MAX_INDEX = 2 ^ 53

local SCHEMES = { stun = false, stuns = false, turn = true, turns = true }
local TRANSPORTS = { udp = true, tcp = true }
local URL_KEYS = { "urls", "url", "uris" }

-- Reasons are logged: control bytes, quotes and invalid UTF-8 are escaped so
-- that one reason stays one printable line whatever the input was.
local function escape_byte(c)
  if c == '"' or c == "\\" then return "\\" .. c end
  return format("\\x%02x", byte(c))
end

-- User-info ("turn:user:pass@host") is blanked before anything is quoted,
-- and before truncation, so that a long user-info cannot slip past the cut.
local function quote(s)
  local at = find(s, "@", 1, true)
  if at then
    local last = s:match("^.*()@")
    local colon = find(s, ":", 1, true)
    local keep = (colon and colon < at) and sub(s, 1, colon) or ""
    s = keep .. "***" .. sub(s, last)
  end
  local cut = #s > MAX_QUOTE
  if cut then s = sub(s, 1, MAX_QUOTE) end
  s = s:gsub('[%c"\\\127-\255]', escape_byte)
  return '"' .. s .. '"' .. (cut and "..." or "")
end

-- Port numbers may be written with leading zeros ("03478"); the canonical URL
-- spells the number, so "h:03478" and "h:3478" dedupe as the same server.
local function parse_port(s)
  if s == "" then return nil, "empty port" end
  if find(s, "[^0-9]") then return nil, "invalid port " .. quote(s) end
  if #s > 5 then return nil, "port out of range" end
  local n = tonumber(s)
  if n < 1 or n > 65535 then return nil, "port out of range" end
  return n
end

-- Leading zeros are refused because some resolvers read them as octal
-- ("010.0.0.1" is 8.0.0.1 to inet_aton), so the literal would be ambiguous.
local function valid_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  local octets = { a, b, c, d }
  for i = 1, 4 do
    local o = octets[i]
    if #o > 3 or tonumber(o) > 255 or (#o > 1 and sub(o, 1, 1) == "0") then
      return false
    end
  end
  return true
end

-- Counts the 16-bit groups of one side of an IPv6 literal, or nil if a group
-- is malformed; a dotted IPv4 tail is allowed only as the very last group.
local function ipv6_groups(part, ipv4_allowed)
  if part == "" then return 0 end
  local fields = {}
  for f in (part .. ":"):gmatch("([^:]*):") do fields[#fields + 1] = f end
  local n = 0
  for i = 1, #fields do
    local f = fields[i]
    if i == #fields and ipv4_allowed and find(f, ".", 1, true) then
      if not valid_ipv4(f) then return nil end
      n = n + 2
    elseif f:match("^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

-- Loose by design (the brief): shape only, no zone IDs, no normalisation of
-- the spelling; "::" stands for at least one zero group.
local function valid_ipv6(s)
  if s == "" or find(s, "[^%x:.]") then return false end
  local dc = find(s, "::", 1, true)
  if not dc then
    return ipv6_groups(s, true) == 8
  end
  if find(s, "::", dc + 1, true) then return false end
  local head = ipv6_groups(sub(s, 1, dc - 1), false)
  local tail = ipv6_groups(sub(s, dc + 2), true)
  return head ~= nil and tail ~= nil and head + tail <= 7
end

local function check_dns_name(h)
  if #h > 253 then return nil, "host name too long" end
  -- A name made of digits and dots is an IPv4 literal or nothing: otherwise
  -- "999.1.1.1" would pass as a DNS name and fail later, at resolution time.
  if not find(h, "[^0-9.]") then
    if valid_ipv4(h) then return true end
    return nil, "invalid IPv4 address " .. quote(h)
  end
  for label in (h .. "."):gmatch("([^.]*)%.") do
    if label == "" then return nil, "empty label in host name " .. quote(h) end
    if #label > 63 then return nil, "host name label too long" end
    if find(label, "[^A-Za-z0-9%-]") then
      return nil, "invalid character in host name " .. quote(h)
    end
    if sub(label, 1, 1) == "-" or sub(label, -1) == "-" then
      return nil, "host name label starts or ends with '-' in " .. quote(h)
    end
  end
  return true
end

-- Splits "host[:port]" or "[v6][:port]"; returns host, port string (or nil),
-- whether the host is an IPv6 literal, or nil, err.
local function split_hostport(hp)
  if sub(hp, 1, 1) == "[" then
    local close = find(hp, "]", 2, true)
    if not close then return nil, "unterminated IPv6 literal (missing ']')" end
    local host, after = sub(hp, 2, close - 1), sub(hp, close + 1)
    local port
    if after ~= "" then
      port = after:match("^:(.*)$")
      if not port then return nil, "unexpected text after IPv6 literal" end
    end
    if not valid_ipv6(host) then return nil, "invalid IPv6 address " .. quote(host) end
    return host, port, true
  end
  local colon = find(hp, ":", 1, true)
  if colon and find(hp, ":", colon + 1, true) then
    if not find(hp, "[^%x:.]") then
      return nil, "IPv6 address must be in brackets"
    end
    return nil, "invalid port " .. quote(sub(hp, colon + 1))
  end
  local host, port = hp, nil
  if colon then host, port = sub(hp, 1, colon - 1), sub(hp, colon + 1) end
  if host == "" then return nil, "missing host" end
  local ok, err = check_dns_name(host)
  if not ok then return nil, err end
  return host, port, false
end

local function parse_query(scheme, q)
  if not SCHEMES[scheme] then return nil, scheme .. " URLs take no query" end
  if q == "" then return nil, "empty query" end
  if find(q, "[&;]") then return nil, "only ?transport= is allowed in the query" end
  local key, value = q:match("^([^=]*)=(.*)$")
  if not key then return nil, "invalid query " .. quote(q) end
  -- ABNF literals are case-insensitive, so "?TRANSPORT=UDP" is the same URL.
  if lower(key) ~= "transport" then
    return nil, "unsupported query parameter " .. quote(key)
  end
  local t = lower(value)
  if t == "" then return nil, "empty transport" end
  if not TRANSPORTS[t] then return nil, "unsupported transport " .. quote(value) end
  -- Browsers rewrite turns+udp to tcp or drop it, so the operator would not
  -- get what the URL says.
  if scheme == "turns" and t == "udp" then return nil, "turns with transport=udp" end
  return t
end

-- Parses one STUN/TURN URL (RFC 7064, RFC 7065). Returns
-- {scheme=, host=, port=, transport=, url=, turn=} or nil, err; host is
-- without brackets for IPv6 literals, url is the canonical spelling.
local parse_url

-- Providers repeat the same few URLs in every answer, so parses are memoized
-- (results are shared: callers must not modify them).  The memo is emptied
-- when it fills, so an answer full of random URLs cannot grow it without bound.
local memo, memo_size, MEMO_MAX = {}, 0, 512

function M.parse_url(s)
  local hit = memo[s]
  if hit then return hit end
  local url, err = parse_url(s)
  if url then
    if memo_size >= MEMO_MAX then memo, memo_size = {}, 0 end
    memo[s], memo_size = url, memo_size + 1
  end
  return url, err
end

parse_url = function(s)
  if type(s) ~= "string" then return nil, "not a string (" .. type(s) .. ")" end
  if s == "" then return nil, "empty URL" end
  if #s > MAX_URL then return nil, format("URL too long (%d bytes)", #s) end
  if find(s, "%s") then return nil, "whitespace in URL" end
  if find(s, "[^\33-\126]") then return nil, "invalid character in URL" end

  local colon = find(s, ":", 1, true)
  local scheme = colon and sub(s, 1, colon - 1)
  if not scheme or not scheme:match("^%a[%w+.%-]*$") then
    return nil, "missing scheme"
  end
  scheme = lower(scheme)
  if SCHEMES[scheme] == nil then return nil, "unsupported scheme " .. quote(scheme) end

  local rest = sub(s, colon + 1)
  if sub(rest, 1, 2) == "//" then return nil, "'//' after the scheme is not allowed" end
  if find(rest, "#", 1, true) then return nil, "fragment not allowed" end
  local qpos = find(rest, "?", 1, true)
  local hp, query = rest, nil
  if qpos then hp, query = sub(rest, 1, qpos - 1), sub(rest, qpos + 1) end
  if hp == "" then return nil, "missing host" end
  if find(hp, "@", 1, true) then return nil, "user-info not allowed" end
  if find(hp, "/", 1, true) then return nil, "path not allowed" end

  local host, port_s, v6 = split_hostport(hp)
  if not host then return nil, port_s end
  local port
  if port_s then
    local err
    port, err = parse_port(port_s)
    if not port then return nil, err end
  end
  local transport
  if query then
    local err
    transport, err = parse_query(scheme, query)
    if not transport then return nil, err end
  end

  local url = { scheme, ":", v6 and ("[" .. host .. "]") or host }
  if port then url[#url + 1] = ":" .. port end
  if transport then url[#url + 1] = "?transport=" .. transport end
  return {
    scheme = scheme, host = host, port = port, transport = transport,
    url = concat(url), turn = SCHEMES[scheme],
  }
end

local function is_index(k)
  return type(k) == "number" and k >= 1 and k <= MAX_INDEX and floor(k) == k
end

-- Values of a table's positive integer keys in key order, so that nil holes
-- neither stop the walk (as ipairs would) nor depend on # (which is undefined
-- with holes and may run __len); also counts the other keys.
local function array_values(t)
  local keys, others = {}, 0
  local k = next(t)
  while k ~= nil do
    if is_index(k) then keys[#keys + 1] = k else others = others + 1 end
    k = next(t, k)
  end
  sort(keys)
  local values = {}
  for i = 1, #keys do values[i] = rawget(t, keys[i]) end
  return values, keys, others
end

-- Every username/credential/password in the input: no reason may contain
-- any of them, whichever entry it came from.
local function collect_secrets(list)
  local secrets = {}
  local function add(v)
    if type(v) == "number" then v = tostring(v) end
    if type(v) == "string" and v ~= "" then secrets[#secrets + 1] = v end
  end
  for _, e in ipairs(list) do
    if type(e) == "table" then
      add(rawget(e, "username"))
      add(rawget(e, "credential"))
      add(rawget(e, "password"))
    end
  end
  return secrets
end

local function leaks(s, secrets)
  for i = 1, #secrets do
    if find(s, secrets[i], 1, true) then return true end
  end
  return false
end

-- Builds a reason that quotes an input URL, withholding the URL when it holds
-- a credential. Only input-derived text is checked: the fixed wording around
-- it would otherwise count as a leak of any one-letter credential. A detail
-- from parse_url quotes pieces of the URL at its end only, so cutting at its
-- first quote keeps its fixed wording.
local function url_reason(ctx, prefix, raw, detail)
  local q = quote(raw)
  local dq = detail and detail:match('^[^"]*(".*)$')
  if not (leaks(raw, ctx.secrets) or leaks(q, ctx.secrets)
      or (dq and leaks(dq, ctx.secrets))) then
    return prefix .. " " .. q .. (detail and (": " .. detail) or "")
  end
  local r = prefix .. " (URL withheld: it contains a credential)"
  if detail then
    local fixed = detail:match('^([^"]*)'):match("^(.-)%s*$")
    if fixed ~= "" then r = r .. ": " .. fixed end
  end
  return r
end

-- Gathers an entry's URL values from urls, url and uris, in that order:
-- strings, or {reason} where a value is not a string, so that reasons come out
-- in input order.
local function entry_urls(e, n)
  local items = {}
  local function bad(r) items[#items + 1] = { r } end
  for _, key in ipairs(URL_KEYS) do
    local v = rawget(e, key)
    if v ~= nil then
      if type(v) == "string" then
        items[#items + 1] = v
      elseif type(v) == "table" then
        local values, keys, others = array_values(v)
        if others > 0 then bad(format("entry %d: %s is not a list", n, key)) end
        for i = 1, #values do
          if type(values[i]) == "string" then
            items[#items + 1] = values[i]
          else
            bad(format("entry %d: %s[%d] is not a string (%s)", n, key, keys[i],
              type(values[i])))
          end
        end
      else
        bad(format("entry %d: %s is not a string or a list (%s)", n, key, type(v)))
      end
    end
  end
  if #items == 0 then bad(format("entry %d has no urls", n)) end
  return items
end

local function describe_bad(v)
  if v == nil then return "missing" end
  if type(v) ~= "string" then return "is not a string (" .. type(v) .. ")" end
  return "is empty"
end

-- Normalizes entry n into 0, 1 or 2 output entries appended to ctx.out.
-- report() records a reason for what is left out.
local function do_entry(ctx, e, n, report)
  if type(e) ~= "table" then
    report(format("entry %d is not a table (%s)", n, type(e)))
    return
  end
  local stun, turn, mine = {}, {}, {}
  local items = entry_urls(e, n)
  for i = 1, #items do
    local raw = items[i]
    if type(raw) == "table" then
      report(raw[1])
    else
      local p, err = M.parse_url(raw)
      if not p then
        report(url_reason(ctx, format("entry %d: invalid URL", n), raw, err))
      elseif not mine[p.url] then
        mine[p.url] = true
        local dest = p.turn and turn or stun
        dest[#dest + 1] = p.url
      end
    end
  end

  local seen = ctx.seen
  local function fresh(urls)
    local keep = {}
    for i = 1, #urls do
      if not seen[urls[i]] then keep[#keep + 1] = urls[i] end
    end
    return keep
  end

  local s = fresh(stun)
  if #s > 0 then
    for i = 1, #s do seen[s[i]] = true end
    ctx.out[#ctx.out + 1] = { urls = s }
  end
  if #turn == 0 then return end

  local username = rawget(e, "username")
  local credential = rawget(e, "credential")
  if credential == nil then credential = rawget(e, "password") end
  local bad
  if type(username) ~= "string" or username == "" then
    bad = "username " .. describe_bad(username)
  elseif type(credential) ~= "string" or credential == "" then
    bad = "credential " .. describe_bad(credential)
  end
  if bad then
    local what = #turn == 1 and "TURN URL" or format("%d TURN URLs, first", #turn)
    report(url_reason(ctx, format("entry %d: %s", n, what), turn[1],
      "dropped: " .. bad))
    return
  end
  local t = fresh(turn)
  if #t > 0 then
    for i = 1, #t do seen[t[i]] = true end
    ctx.out[#ctx.out + 1] = { urls = t, username = username, credential = credential }
  end
end

local function run(list)
  local values, keys, others = array_values(list)
  local ctx = { out = {}, reasons = {}, seen = {}, secrets = collect_secrets(values) }
  local function report(r) ctx.reasons[#ctx.reasons + 1] = r end
  if others > 0 then
    report(format("answer has %d non-index key(s), ignored", others))
  end
  -- Entries are numbered by their index in the input, holes included, so a
  -- reason points at the entry the operator or provider actually wrote.
  for i = 1, #values do
    do_entry(ctx, values[i], keys[i], report)
  end
  return ctx
end

local function is_single_entry(t)
  return rawget(t, "urls") ~= nil or rawget(t, "url") ~= nil or rawget(t, "uris") ~= nil
end

-- The message of an unexpected error (in practice only "not enough memory")
-- is reported without any input value in it.
local function internal(err)
  local msg = type(err) == "string" and err or type(err)
  return "internal error: " .. quote(msg)
end

-- URL tables known to be canonical TURN URL lists (each URL in canonical
-- spelling, none twice), by identity: a provider that returns the same table
-- each time (coturn's and static's configured URLs) is checked once.  The
-- contract says a returned table is the broker's to keep, never changed.
local canonical = setmetatable({}, { __mode = "k" })

local function count_keys(t)
  local n, k = 0, next(t)
  while k ~= nil do
    n = n + 1
    k = next(t, k)
  end
  return n
end

local function is_canonical_turn(urls)
  local known = canonical[urls]
  if known ~= nil then return known end
  local ok = getmetatable(urls) == nil and #urls > 0 and count_keys(urls) == #urls
  local seen = {}
  for i = 1, ok and #urls or 0 do
    local u = urls[i]
    local p = type(u) == "string" and not seen[u] and M.parse_url(u)
    if not (p and p.turn and p.url == u) then ok = false; break end
    seen[u] = true
  end
  canonical[urls] = ok
  return ok
end

local NONE = setmetatable({}, { __newindex = function() error("read-only", 2) end })

--[[
t itself when it is one TURN entry object (not an array) that normalizing
would give back unchanged but for its other keys, which normalizing ignores
too: a canonical `urls` table (checked once per table), no `url` or `uris`,
a username and a credential; else nil.  Its fields are read, the table is
never kept or walked (no next(), no loop): LuaJIT then keeps a request
served by such a provider (coturn, static) off the heap, in one trace.
]]
function M.entry(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil then return nil end
  local u, c, urls = t.username, t.credential, t.urls -- no metatable: raw reads
  if type(u) ~= "string" or u == "" or type(c) ~= "string" or c == "" then return nil end
  if type(urls) ~= "table" or t.url ~= nil or t.uris ~= nil then return nil end
  return is_canonical_turn(urls) and t or nil
end

-- The one TURN entry of an answer that is such an entry, or a list of only
-- that entry (holes and other keys ruled out: the list's next of 1 is
-- nil); else nil.
function M.one(t)
  local e = M.entry(t)
  if e or type(t) ~= "table" or getmetatable(t) ~= nil then return e end
  e = t[1]
  return e ~= nil and next(t, 1) == nil and M.entry(e) or nil
end

--[[
For a provider's answer: returns list, dropped, turn.  list is the broker's
own (an empty answer aside, returned as it is); dropped holds one reason per
URL or entry left out; turn is whether an entry has TURN credentials.
]]
function M.answer(entries)
  if type(entries) ~= "table" then return {}, { "answer is not a list" }, false end
  if getmetatable(entries) == nil and next(entries) == nil then return entries, NONE, false end
  -- Some providers answer with one RTCIceServer object instead of a list.
  if is_single_entry(entries) then entries = { entries } end
  local ok, ctx = pcall(run, entries)
  if not ok then return {}, { internal(ctx) }, false end
  local out = ctx.out
  for i = 1, #out do
    if out[i].username then return out, ctx.reasons, true end
  end
  return out, ctx.reasons, false
end

-- An operator's list of URLs, each parsed and of the kind asked (turn: true
-- for turn:/turns:, false for stun:/stuns:), canonical, none twice; or nil,
-- err naming the URL.
function M.canonical_urls(urls, turn)
  local out, seen = {}, {}
  for i = 1, #urls do
    local url, err = M.parse_url(urls[i])
    if not url then return nil, format("invalid URL %s: %s", quote(urls[i]), err) end
    if url.turn ~= turn then
      return nil, turn and format("must hold turn: or turns: URLs, not %s", url.url)
        or format("holds a TURN URL (%s); TURN URLs belong to a provider", url.url)
    end
    if tonumber(url.port) == 53 then
      return nil, format("%s is on port 53, which browsers block", url.url)
    end
    if not seen[url.url] then
      seen[url.url] = true
      out[#out + 1] = url.url
    end
  end
  if turn then canonical[out] = true end
  return out
end

-- For a provider's configure(): checks an operator's list of TURN URLs and
-- returns them in canonical form, or raises a config error naming `what`.
function M.turn_urls(urls, what)
  local out, err = M.canonical_urls(urls, true)
  if not out then
    error("iceservers: " .. what .. (err:find("^must") and " " or ": ") .. err, 0)
  end
  if #out == 0 then error(format("iceservers: %s holds no URL", what), 0) end
  return out
end

return M
