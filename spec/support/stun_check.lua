--[[
What the STUN decoder (iceservers.stun.message) must do with any bytes at
all, in one place for the seeded busted spec (spec/stun_fuzz_spec.lua) and the
libFuzzer target (fuzz/fuzz_stun.c):

  local check = require "support.stun_check"
  local outcome, detail = check(stun, bytes)  -- stun = message.new(crypto)
  -- "decoded", msg   or   "refused", err;  raises (a plain string) when broken

  - decode never raises and gives a message or nil and a one-line error;
  - a message has a known class, a 12-byte tid, a 12-bit method, and list
    entries whose offsets and raw bytes are exactly where they are in the
    input; attrs holds the first non-ignored value of each name;
  - check_integrity and check_fingerprint give booleans and never raise;
  - frame_length of the first 20 bytes agrees with decode;
  - the decoded values encode again (with MESSAGE-INTEGRITY and FINGERPRINT)
    and decode to the same values, whose MAC and FINGERPRINT verify.
]]
local message = require "iceservers.stun.message"

local KEY = "stun-check-key"
local CLASSES = { request = true, indication = true, success = true, error = true }

local function fail(fmt, ...) error(fmt:format(...), 0) end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function is_bool(v) return v == true or v == false end

local function check_frame_length(s, msg)
  local ok, n, err = pcall(message.frame_length, s:sub(1, 20))
  if not ok then fail("frame_length raised: %s", tostring(n)) end
  if n == nil and type(err) ~= "string" then fail("frame_length: nil without an error") end
  if msg and n ~= #s - 20 then
    fail("frame_length says %s, decode took %d", tostring(n), #s - 20)
  end
end

local function check_entries(s, msg)
  local seen, at, after_mi, after_fp = {}, 20, false, false
  for i, e in ipairs(msg.list) do
    if e.offset ~= at then fail("entry %d at offset %s, expected %d", i, tostring(e.offset), at) end
    if s:sub(at + 1, at + 2) ~= string.char(math.floor(e.type / 256), e.type % 256) then
      fail("entry %d: type does not match the bytes", i)
    end
    local declared = s:byte(at + 3) * 256 + s:byte(at + 4)
    if type(e.raw) ~= "string" or #e.raw ~= declared or s:sub(at + 5, at + 4 + declared) ~= e.raw
    then
      fail("entry %d: raw is not the %d bytes at its offset", i, declared)
    end
    at = at + 4 + #e.raw + (4 - #e.raw % 4) % 4
    -- RFC 8489 §14.5, §14.7: after MESSAGE-INTEGRITY only FINGERPRINT counts; after it, nothing
    local must_ignore = after_fp or (after_mi and e.type ~= 0x8028)
    if (e.ignored == true) ~= must_ignore then fail("entry %d: ignored is wrong", i) end
    if not e.ignored then
      after_mi, after_fp = after_mi or e.type == 0x0008, e.type == 0x8028
    end
    if e.ignored then
      if e.value ~= nil then fail("entry %d: ignored but has a value", i) end
    elseif e.value == nil then
      fail("entry %d: no value", i)
    elseif e.name and not seen[e.name] then
      seen[e.name] = true
      if not same(msg.attrs[e.name], e.value) then fail("attrs.%s: not its first entry", e.name) end
    end
  end
  if at ~= #s then fail("the entries end at %d of %d bytes", at, #s) end
  for name in pairs(msg.attrs) do
    if not seen[name] then fail("attrs.%s has no entry", name) end
  end
  for name, v in pairs(msg.attrs) do
    if type(v) == "table" and v.ip then
      if type(message.format_address(v)) ~= "string" then fail("format_address(%s)", name) end
    end
  end
end

-- The decoded values, encoded again: decode must give them back.
local function check_reencode(stun, msg)
  local list = {}
  for _, e in ipairs(msg.list) do
    if not e.ignored and e.name ~= "message_integrity" and e.name ~= "fingerprint" then
      list[#list + 1] = e.name and { type = e.type, value = e.value }
        or { type = e.type, raw = e.raw }
    end
  end
  local again = { method = msg.method, class = msg.class, tid = msg.tid, list = list }
  local ok, s = pcall(stun.encode, again, { key = KEY, fingerprint = true })
  if not ok then
    -- only a message within 32 bytes of the limit may not take MI and FINGERPRINT
    if msg.length <= 65535 - 32 then fail("encode of decoded values raised: %s", tostring(s)) end
    return
  end
  local back, err = message.decode(s)
  if not back then fail("re-encoded message does not decode: %s", tostring(err)) end
  if back.method ~= msg.method or back.class ~= msg.class or back.tid ~= msg.tid then
    fail("re-encoded header differs")
  end
  for i, a in ipairs(list) do
    local e = back.list[i]
    if not e or e.type ~= a.type or not same(e.value, a.value or a.raw) then
      fail("re-encoded attribute %d (0x%04x) differs", i, a.type)
    end
  end
  if not stun.check_integrity(s, back, KEY) then fail("re-encoded MESSAGE-INTEGRITY fails") end
  if not stun.check_fingerprint(s, back) then fail("re-encoded FINGERPRINT fails") end
end

return function(stun, s)
  local ok, msg, err = pcall(message.decode, s)
  if not ok then fail("decode raised: %s", tostring(msg)) end
  if msg == nil then
    if type(err) ~= "string" or err == "" or err:find("[\r\n]") then
      fail("decode gave nil without a one-line error")
    end
    if #s >= 20 then check_frame_length(s, nil) end
    return "refused", err
  end
  if type(msg) ~= "table" then fail("decode gave a %s", type(msg)) end
  if not CLASSES[msg.class] then fail("class %s", tostring(msg.class)) end
  if type(msg.tid) ~= "string" or #msg.tid ~= 12 or msg.tid ~= s:sub(9, 20) then fail("tid") end
  local m = msg.method
  if type(m) ~= "number" or m % 1 ~= 0 or m < 0 or m > 0xFFF then fail("method %s", tostring(m)) end
  if msg.length ~= #s - 20 then fail("length") end
  check_frame_length(s, msg)
  check_entries(s, msg)
  for _, t in ipairs(msg.unknown) do
    if type(t) ~= "number" or t >= 0x8000 then fail("unknown holds %s", tostring(t)) end
  end
  local ok1, mi = pcall(stun.check_integrity, s, msg, KEY)
  local ok2, fp = pcall(stun.check_fingerprint, s, msg)
  if not (ok1 and ok2 and is_bool(mi) and is_bool(fp)) then
    fail("check_integrity or check_fingerprint: %s %s", tostring(mi), tostring(fp))
  end
  check_reencode(stun, msg)
  return "decoded", msg
end
