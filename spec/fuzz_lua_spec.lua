-- Generated-input robustness of the Lua side: the normalizer
-- (iceservers.normalize) and each REST provider's answer parsing, through the
-- broker, fed thousands of JSON values from a fixed seed: wrong types, deep
-- nesting, huge and empty strings, invalid UTF-8, numbers where strings
-- belong, url/urls/uris mixes, arrays against objects, nulls.  Every result
-- must be a valid normalized list or nil and a one-line error, never a raised
-- Lua error (nor one the broker had to catch inside a provider).
--
-- The generator is a Park-Miller LCG (x = x * 16807 mod 2^31 - 1): every
-- intermediate stays below 2^53, so doubles (Lua 5.1, LuaJIT) and integers
-- (Lua 5.4) step through the same sequence, and a failure reproduces on either.
-- ICESERVERS_FUZZ_SEED and ICESERVERS_FUZZ_COUNT (values per provider) change
-- the run; a failure names the seed, the case and the body.
local iceservers = require "iceservers"
local normalize = require "iceservers.normalize"
local cjson = require "cjson"

local SEED = tonumber(os.getenv("ICESERVERS_FUZZ_SEED") or "") or 20240611
local COUNT = tonumber(os.getenv("ICESERVERS_FUZZ_COUNT") or "") or 3000
local T0 = 1800000000

---------------------------------------------------------------------------
-- the generator

local function lcg(seed)
  local x = seed % 2147483646 + 1 -- 1 .. 2^31 - 2, never 0
  local r = {}
  function r.next()
    x = x * 16807 % 2147483647
    return x
  end
  function r.int(lo, hi) return lo + r.next() % (hi - lo + 1) end
  function r.chance(percent) return r.next() % 100 < percent end
  function r.pick(t) return t[r.int(1, #t)] end
  return r
end

local URLS = {
  "stun:stun.example.com", "stun:stun.example.com:3478", "stuns:stun.example.com:5349",
  "turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp",
  "turns:turn.example.com:5349?transport=tcp", "turn:turn.example.com", "turn:192.0.2.1",
  "turn:[2001:db8::1]:3478", "stun:[::1]", "TURN:Turn.Example.COM:03478?TRANSPORT=UDP",
  "turn:turn.example.com:53?transport=udp", "turns:turn.example.com:53", "stun:host:53",
  "turn:user:pass@turn.example.com", "turns:turn.example.com?transport=udp",
  "stun:stun.example.com?transport=udp", "turn:", "stun:", "stun://stun.example.com",
  "http://turn.example.com", "turn:999.1.1.1", "turn:[::1", "turn:[::1]x", "turn:::1",
  "turn:host:99999", "turn:host:", "turn:-bad-.example", "turn:host#frag", "turn:a..b",
  "turn:host?transport=", "turn:host?transport=sctp", "turn:host?a=b&c=d", "turn:h/path",
  "turn:host name", "turn:h\0st", "turn:h\255st", "stun:" .. string.rep("a", 600),
  "turn:" .. string.rep("a.", 130) .. "com", "turn:" .. string.rep("b", 64) .. ".com",
}

local PIECES = {
  "turn", "turns", "stun", "stuns", ":", "[", "]", "::1", "?transport=", "udp", "tcp", "@",
  "/", "#", "%41", "\0", "\n", "\r\n", "\t", " ", "\255", "\192\128", "\237\160\128",
  "\240\159\146\169", "\195\169", "53", "3478", "65536", "0", "host", "example.com", ".",
  "-", "..", "user:pass@", "TURN", '"', "\\", "urls", "null", "\27[31m",
}

local KEYS = {
  "urls", "url", "uris", "username", "credential", "password", "credentialType",
  "iceServers", "ice_servers", "v", "s", "ttl", "0", "1", "", "\255", "__index", "n",
}

local NUMBERS = {
  0, -0.0, 1, -1, 53, 3478, 65535, 65536, 0.5, -3.25, 1e15, 2 ^ 53, -2 ^ 63, 1e300, -1e300,
  123456789012, 4294967297,
}

local HUGE = string.rep("turn:huge.example.com:3478,", 2500) -- about 67 KB

local function number(r)
  if r.chance(60) then return r.pick(NUMBERS) end
  return (r.next() - 1073741823) / r.pick { 1, 7, 1000, 1e-6 }
end

local function str(r)
  local k = r.int(1, 20)
  if k <= 8 then return r.pick(URLS) end
  if k == 9 then return "" end
  if k == 10 then
    if r.chance(20) then return HUGE end
    return string.rep(r.pick(PIECES), r.int(1, 300))
  end
  local parts = {}
  for i = 1, r.int(1, 6) do parts[i] = r.pick(PIECES) end
  return table.concat(parts)
end

local gen

local function url_value(r, depth)
  local k = r.int(1, 10)
  if k <= 4 then return str(r) end
  if k <= 8 then
    local t = {}
    for i = 1, r.int(0, 5) do
      if r.chance(85) then t[i] = str(r) else t[i] = gen(r, depth + 1) end
    end
    return t
  end
  return gen(r, depth + 1)
end

local function cred_value(r, depth)
  local k = r.int(1, 10)
  if k <= 6 then return r.chance(50) and "user-1700000000" or str(r) end
  if k == 7 then return "" end
  if k == 8 then return number(r) end
  if k == 9 then return cjson.null end
  return gen(r, depth + 1)
end

-- Something shaped like an RTCIceServer, usually slightly wrong.
local function entry(r, depth)
  local e = {}
  if r.chance(60) then e.urls = url_value(r, depth) end
  if r.chance(25) then e.url = url_value(r, depth) end
  if r.chance(15) then e.uris = url_value(r, depth) end
  if r.chance(75) then e.username = cred_value(r, depth) end
  if r.chance(75) then e.credential = cred_value(r, depth) end
  if r.chance(10) then e.password = cred_value(r, depth) end
  if r.chance(20) then e[r.pick(KEYS)] = gen(r, depth + 1) end
  return e
end

local GOOD_STUN = { "stun:stun.example.com", "stun:stun.example.com:3478", "stun:[::1]",
  "stuns:stun.example.com:5349" }
local GOOD_TURN = { "turn:turn.example.com:3478?transport=udp", "turn:192.0.2.1",
  "turns:turn.example.com:5349?transport=tcp", "turn:[2001:db8::1]:3478",
  "TURN:Turn.Example.COM:03478?TRANSPORT=UDP", "turn:turn.example.com:53?transport=udp" }

-- A valid RTCIceServer, in one of its spellings; then, sometimes, one thing
-- changed: what a provider that is almost right sends.
local function good_entry(r, depth)
  local e, urls = {}, {}
  local turn = r.chance(70)
  for i = 1, r.int(1, 3) do urls[i] = r.pick(turn and GOOD_TURN or GOOD_STUN) end
  local key = r.pick { "urls", "urls", "urls", "url", "uris" }
  e[key] = (#urls == 1 and r.chance(40)) and urls[1] or urls
  if turn then
    e.username = "1700000000:user"
    if r.chance(85) then e.credential = "c2VjcmV0" else e.password = "pw" end
  end
  if r.chance(25) then
    local field = r.pick { "urls", "url", "uris", "username", "credential", "extra" }
    local value = r.pick { cred_value, url_value, gen }(r, depth + 1)
    e[field == "extra" and r.pick(KEYS) or field] = value
  end
  return e
end

-- Any JSON value (as cjson encodes it: arrays 1..n, objects with string keys).
gen = function(r, depth)
  local k = r.int(0, depth >= 5 and 4 or 9)
  if k == 0 then return cjson.null end
  if k == 1 then return r.chance(50) end
  if k == 2 then return number(r) end
  if k <= 4 then return str(r) end
  if k == 5 then
    local t = {}
    for i = 1, r.int(0, 5) do t[i] = gen(r, depth + 1) end
    return t
  end
  if k == 6 then
    local t = {}
    for _ = 1, r.int(0, 4) do
      local key = r.chance(80) and r.pick(KEYS) or str(r)
      t[key] = gen(r, depth + 1)
    end
    return t
  end
  if k == 7 then return entry(r, depth) end
  local list = {}
  for i = 1, r.int(1, 5) do
    if r.chance(90) then list[i] = entry(r, depth + 1) else list[i] = gen(r, depth + 1) end
  end
  return list
end

-- A top-level value: a list of mostly valid entries a third of the time,
-- anything otherwise.
local function answer_value(r)
  if r.chance(67) then return gen(r, 0) end
  local list = {}
  for i = 1, r.int(1, 6) do
    local k = r.int(1, 10)
    if k <= 7 then list[i] = good_entry(r, 1)
    elseif k <= 9 then list[i] = entry(r, 1)
    else list[i] = gen(r, 1) end
  end
  if r.chance(10) then return list[1] end -- a single object, not a list
  return list
end

-- Arrays or objects nested n deep around v.
local function nest(r, v, n)
  for _ = 1, n do
    if r.chance(50) then v = { v } else v = { [r.pick(KEYS)] = v } end
  end
  return v
end

-- Bodies no encoder would write.
local RAW_BODIES = {
  "", " ", "null", "true", "0", '"a string"', "[", "{", "[]", "{}", '{"iceServers":',
  "\255\254[]", "[1,2,", '{"a":1,}', "[NaN]", "[Infinity]", "[1e999]", "<html>502</html>",
  string.rep("[", 1100) .. string.rep("]", 1100), string.rep('{"a":', 1100) .. "1"
    .. string.rep("}", 1100), '{"iceServers":[{"urls":"turn:h","username":"u","credential":"c"}]'
    .. string.rep(" ", 10000),
}

---------------------------------------------------------------------------
-- what a valid answer is

local function one_line(s)
  return type(s) == "string" and not s:find("[\r\n]")
end

local function show(v)
  if type(v) ~= "string" then v = tostring(v) end
  if #v > 300 then v = v:sub(1, 300) .. "..." end
  return (v:gsub("[%c\128-\255]", function(c) return ("\\%d"):format(c:byte()) end))
end

-- nil if list is a valid normalized list, else what is wrong with it.
local function list_problem(list)
  if type(list) ~= "table" or getmetatable(list) ~= nil then return "the list is not a table" end
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  if n ~= #list then return "the list is not a sequence" end
  for i, e in ipairs(list) do
    if type(e) ~= "table" then return ("entry %d is not a table"):format(i) end
    for k in pairs(e) do
      if k ~= "urls" and k ~= "username" and k ~= "credential" then
        return ("entry %d has the key %s"):format(i, show(k))
      end
    end
    local urls = e.urls
    if type(urls) ~= "table" or #urls == 0 then return ("entry %d: no urls"):format(i) end
    local count = 0
    for _ in pairs(urls) do count = count + 1 end
    if count ~= #urls then return ("entry %d: urls is not a sequence"):format(i) end
    local turn
    for j, u in ipairs(urls) do
      if type(u) ~= "string" or not (u:find("^stuns?:") or u:find("^turns?:")) then
        return ("entry %d: url %d is %s"):format(i, j, show(u))
      end
      local t = u:find("^turns?:") ~= nil
      if j > 1 and t ~= turn then return ("entry %d mixes STUN and TURN URLs"):format(i) end
      turn = t
    end
    if turn then
      if type(e.username) ~= "string" or e.username == "" then
        return ("TURN entry %d: username %s"):format(i, show(e.username))
      end
      if type(e.credential) ~= "string" or e.credential == "" then
        return ("TURN entry %d: credential %s"):format(i, show(e.credential))
      end
    elseif e.username ~= nil or e.credential ~= nil then
      return ("STUN entry %d has a username or credential"):format(i)
    end
  end
  return nil
end

local function has_turn(list)
  for _, e in ipairs(list) do
    if e.username then return true end
  end
  return false
end

---------------------------------------------------------------------------
-- the normalizer, directly

-- Tables whose every metamethod raises: the normalizer reads with rawget and
-- next only, so none of them may run.
local HOSTILE = {}
for _, m in ipairs { "__index", "__newindex", "__len", "__pairs", "__ipairs", "__call",
    "__tostring", "__concat", "__eq", "__lt", "__le" } do
  HOSTILE[m] = function() error("metamethod " .. m .. " ran", 0) end
end

-- Lua values no JSON decoder gives, as an operator's configuration may:
-- holes, float and huge keys, NaN and inf, functions, metatables.
local function lua_only(r, v)
  if type(v) ~= "table" then
    if r.chance(5) then return r.pick { 0 / 0, 1 / 0, -1 / 0, print, io.stdout } end
    return v
  end
  local k = r.int(1, 8)
  if k == 1 then v[#v + r.int(2, 9)] = entry(r, 3) end
  if k == 2 then v[1.5] = entry(r, 3) end
  if k == 3 then v[2 ^ 60] = entry(r, 3) end
  if k == 4 then v[-1] = entry(r, 3) end
  if k == 5 then v[#v + 1] = 0 / 0 end
  if k == 6 then setmetatable(v, HOSTILE) end
  if k == 7 and type(v[1]) == "table" then setmetatable(v[1], HOSTILE) end
  return v
end

describe("normalize under generated input", function()
  it("answer() returns a list, dropped reasons, and whether the list has credentials", function()
    local r = lcg(SEED)
    local answered = 0
    for case = 1, COUNT do
      local v = answer_value(r)
      if r.chance(5) then v = nest(r, v, r.int(10, 300)) end
      v = lua_only(r, v)
      local where = ("seed %d, case %d"):format(SEED, case)

      local ok, list, dropped, turn = pcall(normalize.answer, v)
      assert(ok, where .. ": answer raised: " .. tostring(list))
      local problem = list_problem(list)
      assert(problem == nil, where .. ": answer: " .. tostring(problem))
      assert(type(dropped) == "table", where .. ": answer: dropped is not a table")
      if #list > 0 then answered = answered + 1 end
      for _, reason in ipairs(dropped) do
        assert(one_line(reason), where .. ": answer: a reason is not one line: " .. show(reason))
        assert(not reason:find("^internal error"), where .. ": answer: " .. reason)
      end

      local with_turn = false
      for _, e in ipairs(list) do with_turn = with_turn or e.username ~= nil end
      assert(turn == with_turn, where .. ": answer: turn is " .. tostring(turn))
    end
    -- the generator reaches answers that keep entries, not only rejections
    assert.is_true(answered > COUNT / 5, "answer kept an entry only " .. answered .. " times")
  end)
end)

-- nil if meta's lifetime is one the broker may hand out: a whole number of
-- seconds from 60 to max, and expires that far from T0.
local function lifetime_problem(meta, max)
  local ttl = meta.ttl
  if type(ttl) ~= "number" or ttl ~= ttl or ttl < 60 or ttl > max or ttl % 1 ~= 0 then
    return "meta.ttl is " .. show(ttl)
  end
  if meta.expires ~= T0 + ttl then return "meta.expires is " .. show(meta.expires) end
  return nil
end

---------------------------------------------------------------------------
-- the REST providers, through the broker

local PROVIDERS = {
  { name = "metered", status = 200,
    options = { api_url = "https://m.example", api_key = "k" },
    wrap = function(x) return x end },
  { name = "twilio", status = 201,
    options = { account_sid = "AC" .. string.rep("0", 32), auth_token = "t" },
    wrap = function(x, r)
      local ttl = r.pick { 86400, "86400", "1e999", "-5", "0x10", "soon", 0, cjson.null,
        "1e300", "-1e300", "59", "60", "604801", "1e18", 3600.5, 1e300, -2 ^ 63 }
      if r.chance(10) then ttl = gen(r, 3) end
      return { ice_servers = x, ttl = ttl, account_sid = "AC" .. string.rep("0", 32) }
    end },
  { name = "cloudflare", status = 201,
    options = { key_id = "abc", api_token = "t" },
    wrap = function(x) return { iceServers = x } end },
  { name = "xirsys", status = 200,
    options = { ident = "i", secret = "s", channel = "c" },
    wrap = function(x, r)
      if r.chance(10) then return { s = r.pick { "error", cjson.null, 1 }, v = x } end
      if r.chance(10) then return { s = "ok", v = x } end
      return { s = "ok", v = { iceServers = x } }
    end },
}

local ERROR_STATUSES = { 400, 401, 403, 404, 429, 500, 502, 503 }

for index, p in ipairs(PROVIDERS) do
  describe(p.name .. " answers under generated input", function()
    it("are a valid list or nil and a one-line error, never a raised error", function()
      local seed = SEED + index
      local r = lcg(seed)
      local calls, lists, errors = 0, 0, 0
      for case = 1, COUNT do
        -- the answer: usually JSON in the provider's envelope, sometimes bare,
        -- deeply nested, or not JSON at all; sometimes with an error status
        local body
        local k = r.int(1, 100)
        if k <= 3 then
          body = r.pick(RAW_BODIES)
        else
          local v = answer_value(r)
          if k <= 8 then v = nest(r, v, r.int(10, 400)) end
          if r.chance(70) then v = p.wrap(v, r) end
          body = cjson.encode(v)
        end
        local status, headers = p.status, {}
        if r.chance(8) then
          status = r.pick(ERROR_STATUSES)
          headers["retry-after"] = r.pick { "30", " 5 ", "-1", "99999999", "soon", "" }
        end

        local broker = iceservers.new{
          providers = p.name, stun_urls = {}, fallback = "none",
          log = function() end,
          now = function() return T0 end,
          http = function()
            calls = calls + 1
            return { status = status, headers = headers, body = body }
          end,
          [p.name] = p.options,
        }
        local where = ("%s, seed %d, case %d, status %d, body %s"):format(p.name, seed, case,
          status, show(body))
        local ok, list, err = pcall(broker.get, broker)
        assert(ok, where .. ": get raised: " .. tostring(list))
        -- json: the same answer (cached, or the same failure, backed off)
        local okj, json = pcall(broker.json, broker)
        assert(okj, where .. ": json raised: " .. tostring(json))
        if list ~= nil then
          local problem = list_problem(list)
          assert(problem == nil, where .. ": " .. tostring(problem))
          assert(has_turn(list), where .. ": a list without a TURN entry")
          problem = lifetime_problem(err, p.max_ttl or 86400)
          assert(problem == nil, where .. ": " .. tostring(problem))
          assert(json == iceservers.encode(list, err), where .. ": json is not encode(get())")
          lists = lists + 1
        else
          assert(one_line(err), where .. ": err is not one line: " .. show(err))
          assert(err:find("^every provider failed: " .. p.name .. ": "), where .. ": err " .. err)
          -- the broker turns a raise inside provider.get into "failed: <error>":
          -- a safety net, which a parser must not need
          assert(not err:find("^every provider failed: " .. p.name .. ": failed: "),
            where .. ": the provider raised: " .. err)
          errors = errors + 1
        end
      end
      assert.are.equal(COUNT, calls)
      -- the generator reaches the parsers' success path too, not only failures
      assert.is_true(lists > COUNT / 20, p.name .. " answered a list only " .. lists .. " times")
      assert.is_true(errors > COUNT / 10, p.name .. " failed only " .. errors .. " times")
    end)
  end)
end

---------------------------------------------------------------------------
-- the lifetime a drop-in provider reports

describe("a provider's reported ttl and expires under generated input", function()
  local fx = require "support.fixtures"
  local tmp
  setup(function()
    tmp = fx.tmp()
    for name, head in pairs { fuzzlife = "", fuzzshared = "shared = true,",
        fuzzasked = 'options = { ttl = { type = "ttl", default = 3600 } },' } do
      tmp.file(name .. ".lua", "return { " .. head .. [[
        get = function() return { { urls = "turn:life.example", username = "u",
          credential = "c" } }, _G.fuzz_ttl, _G.fuzz_expires end }]])
    end
  end)
  teardown(function() tmp.cleanup() end)

  local function value(r, base)
    local k = r.int(1, 12)
    if k == 1 then return nil end
    if k == 2 then return r.pick { 0 / 0, 1 / 0, -1 / 0, "soon", "", {}, true, cjson.null } end
    if k == 3 then return tostring(number(r) + base) end
    if k <= 6 then return base + r.pick { -1, 0, 1, 30, 59, 60, 61, 3600, 86400, 604800,
      604801, 604860, 604861, 1e9, 1e12, 2 ^ 53 } * r.pick { 1, 1, -1 } end
    return base + number(r)
  end

  it("is within 60 s .. the maximum, or a one-line failure, in get and json", function()
    local r = lcg(SEED + 100)
    local lists, errors = 0, 0
    for case = 1, COUNT do
      local name = r.pick { "fuzzlife", "fuzzshared", "fuzzasked" }
      _G.fuzz_ttl = r.chance(70) and value(r, 0) or nil
      _G.fuzz_expires = r.chance(40) and value(r, T0) or nil
      local broker = iceservers.new { providers = name, providers_dir = tmp.dir,
        stun_urls = {}, fallback = "none", log = function() end,
        now = function() return T0 end }
      local where = ("seed %d, case %d, %s, ttl %s, expires %s"):format(SEED + 100, case, name,
        show(_G.fuzz_ttl), show(_G.fuzz_expires))
      local ok, list, meta = pcall(broker.get, broker)
      assert(ok, where .. ": get raised: " .. tostring(list))
      local okj, json, jerr = pcall(broker.json, broker)
      assert(okj, where .. ": json raised: " .. tostring(json))
      local okr, rest = pcall(broker.json, broker, nil, "rest")
      assert(okr, where .. ": json rest raised: " .. tostring(rest))
      if list then
        if _G.fuzz_ttl ~= nil or _G.fuzz_expires ~= nil then
          local problem = lifetime_problem(meta, name == "fuzzasked" and 3600 or 604800)
          assert(problem == nil, where .. ": " .. tostring(problem))
        end
        assert(json == iceservers.encode(list, meta), where .. ": json is not encode(get())")
        assert(rest == iceservers.encode(list, meta, "rest"), where .. ": rest differs")
        lists = lists + 1
      else
        assert(one_line(meta), where .. ": err is not one line: " .. show(meta))
        assert(meta:find("^every provider failed: " .. name .. ": "), where .. ": " .. meta)
        assert(meta:find("60 s floor") or meta:find("finite") or meta:find("not a number")
          or meta:find("in the past") or meta:find("ahead"), where .. ": " .. meta)
        assert(json == nil and one_line(jerr), where .. ": json answered " .. show(json))
        errors = errors + 1
      end
    end
    assert.is_true(lists > COUNT / 10, "served only " .. lists)
    assert.is_true(errors > COUNT / 10, "failed only " .. errors)
  end)
end)
