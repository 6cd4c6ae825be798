--[[
STUN messages (RFC 8489) with the TURN attributes of RFC 8656: encode,
decode, MESSAGE-INTEGRITY and FINGERPRINT.  No sockets and no runtime module:
the hashes come from the crypto table given to message.new (iceservers.core,
or anything with hmac, digest, crc32, random_bytes and optionally ct_equal),
so the same code runs in nginx, in the CLI and in a fuzzer.

  local message = require "iceservers.stun.message"
  local stun = message.new(require "iceservers.core")
  local bytes = stun.encode({ method = "allocate", class = "request",
    list = { { type = "requested_transport", value = 17 },
             { type = "username", value = user } } }, { key = key, fingerprint = true })
  local msg, err = message.decode(bytes)   -- never raises: nil, err on any bad input

Decoded: { method = 3, class = "request"|"indication"|"success"|"error",
tid = 12 bytes, length = attribute bytes, attrs = { name = value of the first
such attribute }, list = { { type, name, value, raw, offset, ignored } ... },
unknown = { comprehension-required types this module does not know } }.
offset counts from the message's first byte (0); ignored marks attributes
after MESSAGE-INTEGRITY (other than FINGERPRINT) or after FINGERPRINT, which
RFC 8489 §14.5/§14.7 says to ignore: they are in list only, never in attrs.
Values: addresses { family = 4|6, ip = "192.0.2.1"|"2001:db8::1", port };
error_code { code = 401, reason = "Unauthorized" }; unknown_attributes a list
of types; lifetime and fingerprint numbers; requested_transport the protocol
number (17 is UDP); message_integrity 20 bytes; strings as they came (the
error reason without the NULs coturn pads it with).  Attributes this module
does not know keep their bytes as value.  Nothing here checks the tid
against a request's or judges the class: that is the caller's part.

Only the long-term credential of RFC 8489 §9.2 with MESSAGE-INTEGRITY
(HMAC-SHA1): no MESSAGE-INTEGRITY-SHA256, USERHASH or PASSWORD-ALGORITHMS.
]]
local bits = require "iceservers.stun.bits"

local byte, char, concat = string.byte, string.char, table.concat
local floor = math.floor
local u16, u32, be16, be32, xor = bits.u16, bits.u32, bits.be16, bits.be32, bits.xor

local M = {}

M.COOKIE = "\33\18\164\66" -- 0x2112A442
M.HEADER_SIZE = 20
local MI_TYPE, FP_TYPE = 0x0008, 0x8028
local FP_XOR = "STUN" -- 0x5354554E, the FINGERPRINT's XOR constant, is ASCII "STUN"

M.METHODS = {
  binding = 0x001, allocate = 0x003, refresh = 0x004, send = 0x006, data = 0x007,
  create_permission = 0x008, channel_bind = 0x009,
}
local CLASS_NAMES = { [0] = "request", "indication", "success", "error" }
local CLASS_BITS = { request = 0, indication = 1, success = 2, error = 3 }

-- type -> { name, kind }; the kinds' codecs follow.
local KNOWN = {
  [0x0001] = { "mapped_address", "address" },
  [0x0006] = { "username", "string" },
  [0x0008] = { "message_integrity", "mac" },
  [0x0009] = { "error_code", "error" },
  [0x000A] = { "unknown_attributes", "types" },
  [0x000D] = { "lifetime", "u32" },
  [0x0012] = { "xor_peer_address", "xaddress" },
  [0x0014] = { "realm", "string" },
  [0x0015] = { "nonce", "string" },
  [0x0016] = { "xor_relayed_address", "xaddress" },
  [0x0019] = { "requested_transport", "transport" },
  [0x0020] = { "xor_mapped_address", "xaddress" },
  [0x8022] = { "software", "string" },
  [0x8023] = { "alternate_server", "address" },
  [0x8028] = { "fingerprint", "crc" },
}
M.ATTRS = {} -- name -> type
for t, k in pairs(KNOWN) do M.ATTRS[k[1]] = t end

-- "XOR-MAPPED-ADDRESS" or "0x8042", for messages.
local function label(t)
  local k = KNOWN[t]
  return k and (k[1]:upper():gsub("_", "-")) or ("0x%04X"):format(t)
end

local function is_int(n, lo, hi)
  return type(n) == "number" and n % 1 == 0 and n >= lo and n <= hi
end

---------------------------------------------------------------------------
-- IP addresses as text (RFC 5952 for IPv6) and as network bytes

local function ipv4_text(raw)
  return ("%d.%d.%d.%d"):format(byte(raw, 1, 4))
end

function M.ip_text(raw)
  if #raw == 4 then return ipv4_text(raw) end
  if raw:sub(1, 12) == ("\0"):rep(10) .. "\255\255" then -- RFC 5952 §5: IPv4-mapped
    return "::ffff:" .. ipv4_text(raw:sub(13))
  end
  local g = {}
  for i = 1, 8 do g[i] = u16(raw, 2 * i - 1) end
  local best, best_len, i = nil, 1, 1 -- the longest run of two or more zero groups, first on ties
  while i <= 8 do
    local j = i
    while j <= 8 and g[j] == 0 do j = j + 1 end
    if j - i > best_len then best, best_len = i, j - i end
    i = math.max(j, i + 1)
  end
  local function hex(from, to)
    local t = {}
    for k = from, to do t[#t + 1] = ("%x"):format(g[k]) end
    return concat(t, ":")
  end
  if not best then return hex(1, 8) end
  return hex(1, best - 1) .. "::" .. hex(best + best_len, 8)
end

local function ipv4_bytes(s)
  local parts = { s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$") }
  if #parts ~= 4 then return nil end
  for i, p in ipairs(parts) do
    parts[i] = tonumber(p)
    if parts[i] > 255 or (#p > 1 and p:sub(1, 1) == "0") then return nil end
  end
  return char(parts[1], parts[2], parts[3], parts[4])
end

-- The 16-bit groups of "a:b:c" (the last may be dotted IPv4 when v4_tail), or nil.
local function groups(part, v4_tail)
  local out = {}
  if part == "" then return out end
  local fields = {}
  for f in (part .. ":"):gmatch("([^:]*):") do fields[#fields + 1] = f end
  for i, f in ipairs(fields) do
    local v4 = v4_tail and i == #fields and f:find(".", 1, true) and ipv4_bytes(f)
    if v4 then
      out[#out + 1], out[#out + 2] = u16(v4, 1), u16(v4, 3)
    elseif f:match("^%x%x?%x?%x?$") then
      out[#out + 1] = tonumber(f, 16)
    else
      return nil
    end
  end
  return out
end

local function ipv6_bytes(s)
  local head, tail = s:match("^(.-)::(.*)$")
  local h, t
  if head then
    if tail:find("::", 1, true) then return nil end
    h, t = groups(head, false), groups(tail, true)
    if not h or not t or #h + #t > 7 then return nil end
  else
    h, t = groups(s, true), {}
    if not h or #h ~= 8 then return nil end
  end
  local out = {}
  for _, v in ipairs(h) do out[#out + 1] = be16(v) end
  for _ = 1, 8 - #h - #t do out[#out + 1] = "\0\0" end
  for _, v in ipairs(t) do out[#out + 1] = be16(v) end
  return concat(out)
end

-- "192.0.2.1" or "2001:db8::1" -> network bytes and 4 or 6; nil when neither.
function M.ip_bytes(s)
  if type(s) ~= "string" then return nil end
  local v4 = ipv4_bytes(s)
  if v4 then return v4, 4 end
  local v6 = s:find(":", 1, true) and ipv6_bytes(s)
  if v6 then return v6, 6 end
  return nil
end

-- "192.0.2.1:3478" or "[2001:db8::1]:3478"
function M.format_address(a)
  return (a.family == 6 and "[%s]:%d" or "%s:%d"):format(a.ip, a.port)
end

---------------------------------------------------------------------------
-- attribute values: decode(raw, tid) -> value | nil, why; encode(value, tid, what) -> raw

local function decode_address(raw, mask)
  if #raw < 4 then return nil, "shorter than 4 bytes" end
  local family, size = byte(raw, 2), nil
  if family == 1 then size = 4 elseif family == 2 then size = 16 end
  if not size then return nil, "unknown address family " .. family end
  local v = size == 4 and 4 or 6
  if #raw ~= 4 + size then return nil, ("%d bytes for an IPv%d address"):format(#raw, v) end
  local port, ip = raw:sub(3, 4), raw:sub(5)
  if mask then port, ip = xor(port, mask), xor(ip, mask) end
  return { family = v, ip = M.ip_text(ip), port = u16(port, 1) }
end

local function encode_address(a, mask, what)
  if type(a) ~= "table" then error(what .. ": expected { ip =, port = }", 0) end
  local ip, family = M.ip_bytes(a.ip)
  if not ip then error(what .. ": not an IP address: " .. tostring(a.ip), 0) end
  if a.family ~= nil and a.family ~= family then error(what .. ": family is not the ip's", 0) end
  if not is_int(a.port, 0, 65535) then error(what .. ": port must be an integer 0-65535", 0) end
  local port = be16(a.port)
  if mask then port, ip = xor(port, mask), xor(ip, mask) end
  return "\0" .. (family == 4 and "\1" or "\2") .. port .. ip
end

local function check_string(v, what)
  if type(v) ~= "string" then error(what .. ": expected a string", 0) end
  return v
end

local function adds_itself(what)
  return function()
    error(what .. " comes from opts.key or opts.fingerprint (raw = bytes forges one)", 0)
  end
end

-- A decoder of a value of exactly n bytes.
local function sized(n, read)
  return function(raw)
    if #raw ~= n then return nil, #raw .. " bytes, not " .. n end
    return read(raw)
  end
end
local decode_u32 = sized(4, function(raw) return u32(raw, 1) end)

local KINDS = {
  string = {
    decode = function(raw) return raw end,
    encode = function(v, _, what) return check_string(v, what) end,
  },
  address = {
    decode = function(raw) return decode_address(raw, nil) end,
    encode = function(v, _, what) return encode_address(v, nil, what) end,
  },
  -- XOR-*-ADDRESS: the port with the cookie's top half, the address with the
  -- cookie (IPv4) or the cookie and the transaction id (IPv6).
  xaddress = {
    decode = function(raw, tid) return decode_address(raw, M.COOKIE .. tid) end,
    encode = function(v, tid, what) return encode_address(v, M.COOKIE .. tid, what) end,
  },
  u32 = {
    decode = decode_u32,
    encode = function(v, _, what)
      if not is_int(v, 0, 4294967295) then error(what .. ": expected an integer 0-2^32-1", 0) end
      return be32(v)
    end,
  },
  error = {
    decode = function(raw)
      if #raw < 4 then return nil, "shorter than 4 bytes" end
      local class, number = byte(raw, 3) % 8, byte(raw, 4) -- the reserved bits are ignored
      if class < 3 or class > 6 or number > 99 then
        return nil, ("class %d number %d is not an error code 300-699"):format(class, number)
      end
      local last = #raw -- coturn pads the phrase with NULs inside the length
      while last > 4 and byte(raw, last) == 0 do last = last - 1 end
      return { code = class * 100 + number, reason = raw:sub(5, last) }
    end,
    encode = function(v, _, what)
      if type(v) ~= "table" or not is_int(v.code, 300, 699) then
        error(what .. ": expected { code = 300-699, reason = }", 0)
      end
      return "\0\0" .. char(floor(v.code / 100), v.code % 100) .. check_string(v.reason or "", what)
    end,
  },
  types = {
    decode = function(raw)
      if #raw % 2 ~= 0 then return nil, "odd length " .. #raw end
      local out = {}
      for i = 1, #raw, 2 do out[#out + 1] = u16(raw, i) end
      return out
    end,
    encode = function(v, _, what)
      if type(v) ~= "table" then error(what .. ": expected a list of types", 0) end
      local out = {}
      for i, t in ipairs(v) do
        if not is_int(t, 0, 65535) then error(what .. ": entry " .. i .. " is not a type", 0) end
        out[i] = be16(t)
      end
      return concat(out)
    end,
  },
  transport = { -- the protocol number, then 3 reserved bytes
    decode = sized(4, function(raw) return byte(raw, 1) end),
    encode = function(v, _, what)
      if not is_int(v, 0, 255) then error(what .. ": expected a protocol number 0-255", 0) end
      return char(v) .. "\0\0\0"
    end,
  },
  mac = {
    decode = sized(20, function(raw) return raw end),
    encode = adds_itself("MESSAGE-INTEGRITY"),
  },
  crc = {
    decode = decode_u32,
    encode = adds_itself("FINGERPRINT"),
  },
}

---------------------------------------------------------------------------
-- the header: RFC 8489 §5 interleaves the class bits C1 C0 with the method's
-- 12 bits as M11..M7 C1 M6..M4 C0 M3..M0.

local function message_type(method, class)
  return method % 16 + class % 2 * 16 + floor(method / 16) % 8 * 32
    + floor(class / 2) * 256 + floor(method / 128) * 512
end

local function split_type(t)
  local method = t % 16 + floor(t / 32) % 8 * 16 + floor(t / 512) * 128
  return method, floor(t / 16) % 2 + floor(t / 256) % 2 * 2
end

-- Why these 20 bytes do not start a STUN message, or nil.
local function bad_header(h)
  if byte(h, 1) >= 64 then return "not a STUN message (the first two bits are not 0)" end
  if h:sub(5, 8) ~= M.COOKIE then return "not a STUN message (no magic cookie)" end
  if u16(h, 3) % 4 ~= 0 then return "message length " .. u16(h, 3) .. " is not a multiple of 4" end
  return nil
end

-- How many bytes follow this 20-byte header on a stream (TCP, TLS), or nil, err.
function M.frame_length(header)
  if type(header) ~= "string" or #header < 20 then return nil, "need the 20-byte header" end
  local bad = bad_header(header)
  if bad then return nil, bad end
  return u16(header, 3)
end

---------------------------------------------------------------------------
-- decode

-- The entry of the attribute at s[at] (1-based), the next position; or nil, err.
local function read_attribute(s, at, tid, ignore)
  local t, len = u16(s, at), u16(s, at + 2)
  local next_at = at + 4 + len + (4 - len % 4) % 4
  if next_at - 1 > #s then
    return nil, ("attribute %s at offset %d overruns the message"):format(label(t), at - 1)
  end
  local raw = s:sub(at + 4, at + 3 + len)
  local known = KNOWN[t]
  local entry = { type = t, name = known and known[1], raw = raw, offset = at - 1 }
  if ignore then
    entry.ignored = true
  elseif known then
    local value, why = KINDS[known[2]].decode(raw, tid)
    if value == nil then return nil, ("malformed %s: %s"):format(label(t), why) end
    entry.value = value
  else
    entry.value = raw
  end
  return entry, next_at
end

function M.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if #s < 20 then return nil, ("truncated: %d bytes, a header is 20"):format(#s) end
  local bad = bad_header(s)
  if bad then return nil, bad end
  local len = u16(s, 3)
  if 20 + len ~= #s then
    return nil, ("the header says %d bytes of attributes, %d follow"):format(len, #s - 20)
  end
  local method, class = split_type(u16(s, 1))
  local msg = {
    method = method, class = CLASS_NAMES[class], tid = s:sub(9, 20), length = len,
    attrs = {}, list = {}, unknown = {},
  }
  local at, after_mi, after_fp = 21, false, false
  while at <= #s do
    local t = u16(s, at)
    local entry, next_at = read_attribute(s, at, msg.tid, after_fp or (after_mi and t ~= FP_TYPE))
    if not entry then return nil, next_at end
    msg.list[#msg.list + 1] = entry
    if not entry.ignored then
      if entry.name then
        if msg.attrs[entry.name] == nil then msg.attrs[entry.name] = entry.value end
      elseif t < 0x8000 then
        msg.unknown[#msg.unknown + 1] = t
      end
      after_mi = after_mi or t == MI_TYPE
      after_fp = t == FP_TYPE
    end
    at = next_at
  end
  return msg
end

---------------------------------------------------------------------------
-- what needs crypto

local function first(msg, t)
  for _, e in ipairs(msg.list) do
    if e.type == t and not e.ignored then return e end
  end
  return nil
end

-- The header with another length, then bytes 21 .. upto of s.
local function relength(s, len, upto)
  return s:sub(1, 2) .. be16(len) .. s:sub(5, upto)
end

function M.new(crypto)
  for _, f in ipairs { "hmac", "digest", "crc32", "random_bytes" } do
    if type(crypto) ~= "table" or type(crypto[f]) ~= "function" then
      error("message.new: crypto." .. f .. " must be a function", 2)
    end
  end
  local ct_equal = crypto.ct_equal or function(a, b) return a == b end
  local stun = setmetatable({}, { __index = M })

  function stun.new_tid() return crypto.random_bytes(12) end

  -- The long-term key: MD5(username ":" realm ":" password).  RFC 8489 asks
  -- for SASLprep/OpaqueString on the password first; this does none, as
  -- coturn and browsers do not: give the bytes the server keys with.
  function stun.long_term_key(username, realm, password)
    for i = 1, 3 do check_string(select(i, username, realm, password), "long_term_key") end
    return crypto.digest("md5", username .. ":" .. realm .. ":" .. password)
  end

  -- msg = { method = name or 0-0xFFF, class = name, tid = 12 bytes (or a new
  -- one), list = { { type = name or number, value = v } or { type, raw = bytes } } };
  -- opts.key adds MESSAGE-INTEGRITY, opts.fingerprint = true a FINGERPRINT.
  -- A wrong msg or opts raises: it is the caller's bug, not the network's.
  function stun.encode(msg, opts)
    opts = opts or {}
    local method = M.METHODS[msg.method] or msg.method
    local function fail(why, ...) error("encode: " .. why:format(...), 3) end
    if not is_int(method, 0, 0xFFF) then fail("unknown method %s", tostring(msg.method)) end
    local class = CLASS_BITS[msg.class]
    if not class then fail("unknown class %s", tostring(msg.class)) end
    local tid = msg.tid or crypto.random_bytes(12)
    if type(tid) ~= "string" or #tid ~= 12 then fail("tid must be 12 bytes") end
    if opts.key ~= nil and type(opts.key) ~= "string" then fail("opts.key must be a string") end
    local parts = {}
    for i, a in ipairs(msg.list or {}) do
      local t = M.ATTRS[a.type] or a.type
      if not is_int(t, 0, 0xFFFF) then fail("attribute %d: no type %s", i, tostring(a.type)) end
      local raw = a.raw
      if raw == nil and KNOWN[t] then
        raw = KINDS[KNOWN[t][2]].encode(a.value, tid, "encode: " .. label(t))
      end
      if type(raw) ~= "string" then fail("%s: give its bytes as raw", label(t)) end
      if #raw > 0xFFFF then fail("%s: longer than 65535 bytes", label(t)) end
      parts[#parts + 1] = be16(t) .. be16(#raw) .. raw .. ("\0"):rep((4 - #raw % 4) % 4)
    end
    local head = be16(message_type(method, class)) .. "\0\0" .. M.COOKIE .. tid
    local s = head .. concat(parts)
    if opts.key then -- the MAC covers the header with the length ending after MI
      s = s .. be16(MI_TYPE) .. be16(20) .. crypto.hmac("sha1", opts.key, relength(s, #s + 4, #s))
    end
    if opts.fingerprint then
      s = s .. be16(FP_TYPE) .. be16(4) .. xor(be32(crypto.crc32(relength(s, #s - 12, #s))), FP_XOR)
    end
    if #s - 20 > 0xFFFF then fail("the message is longer than 65535 bytes") end
    return relength(s, #s - 20, #s)
  end

  -- Whether s (decoded as msg) holds a MESSAGE-INTEGRITY made with key.  The
  -- MAC covers every byte before it, with the header's length ending after it.
  function stun.check_integrity(s, msg, key)
    check_string(key, "check_integrity: key")
    if type(s) ~= "string" or type(msg) ~= "table" or type(msg.list) ~= "table" then
      return false
    end
    local mi = first(msg, MI_TYPE)
    local at = mi and mi.offset
    if type(at) ~= "number" or at < 20 or s:sub(at + 1, at + 4) ~= "\0\8\0\20" or #s < at + 24 then
      return false
    end
    local mac = crypto.hmac("sha1", key, relength(s, at + 4, at))
    return ct_equal(mac, s:sub(at + 5, at + 24)) == true
  end

  -- Whether s (decoded as msg) ends with a FINGERPRINT that matches it.
  function stun.check_fingerprint(s, msg)
    if type(s) ~= "string" or type(msg) ~= "table" or type(msg.list) ~= "table" then
      return false
    end
    local fp = msg.list[#msg.list]
    if type(fp) ~= "table" or fp.type ~= FP_TYPE or fp.ignored then return false end
    local at = fp.offset
    if type(at) ~= "number" or at < 20 or #s ~= at + 8 or s:sub(at + 1, at + 4) ~= "\128\40\0\4"
    then
      return false
    end
    return xor(be32(crypto.crc32(s:sub(1, at))), FP_XOR) == s:sub(at + 5, at + 8)
  end

  return stun
end

return M
