-- iceservers.stun.message: the STUN/TURN codec against the RFC 5769 test
-- vectors and captured coturn responses, round trips of every attribute, the
-- RFC 8489 rules on what follows MESSAGE-INTEGRITY and FINGERPRINT, and every
-- malformed input it must refuse with nil, err (never a raise).
local core = require "iceservers.core"
local message = require "iceservers.stun.message"
local bits = require "iceservers.stun.bits"
local vectors = require "support.stun_vectors"
local sh = require "support.sh"

local stun = message.new(core)
local rfc, coturn = vectors.rfc5769, vectors.coturn
local TID = rfc.tid
local COOKIE = "\33\18\164\66"
local be16 = bits.be16

-- A message of this type around these attribute bytes, its length right.
local function frame(body, mtype, tid)
  return be16(mtype or 0x0101) .. be16(#body) .. COOKIE .. (tid or TID) .. body
end

local function tlv(t, v)
  return be16(t) .. be16(#v) .. v .. ("\0"):rep((4 - #v % 4) % 4)
end

local function types_of(msg)
  local out = {}
  for _, e in ipairs(msg.list) do out[#out + 1] = e.type end
  return out
end

local function refused(s)
  local msg, err = message.decode(s)
  assert.is_nil(msg)
  assert.are.equal("string", type(err))
  assert.is_nil(err:find("\n"))
  return err
end

describe("bits", function()
  it("packs and reads big-endian integers", function()
    assert.are.equal("\1\2", bits.be16(0x0102))
    assert.are.equal("\255\254\253\252", bits.be32(0xFFFEFDFC))
    assert.are.equal(0xFFFE, bits.u16("\255\254", 1))
    assert.are.equal(0xFFFEFDFC, bits.u32("x\255\254\253\252", 2))
  end)

  it("xors 32-bit values without a sign and strings byte by byte", function()
    assert.are.equal(0xFFFFFFFF, bits.bxor(0xFFFF0000, 0x0000FFFF))
    assert.are.equal(0xCBF43926, bits.bxor(bits.bxor(0xCBF43926, 0x5354554E), 0x5354554E))
    assert.are.equal(0, bits.bxor(0x80000000, 0x80000000))
    assert.are.equal("\0\255\1", bits.xor("\1\254\0", "\1\1\1extra"))
  end)
end)

describe("RFC 5769 test vectors", function()
  it("§2.1 sample request: attributes, short-term MESSAGE-INTEGRITY, FINGERPRINT", function()
    local s = rfc.request
    local msg = assert(message.decode(s))
    assert.are.equal(message.METHODS.binding, msg.method)
    assert.are.equal("request", msg.class)
    assert.are.equal(TID, msg.tid)
    assert.are.equal(0x58, msg.length)
    assert.are.equal("STUN test client", msg.attrs.software)
    assert.are.equal("evtj:h6vY", msg.attrs.username)
    assert.are.same({ 0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028 }, types_of(msg))
    assert.are.same({ 20, 40, 48, 60, 76, 100 }, {
      msg.list[1].offset, msg.list[2].offset, msg.list[3].offset,
      msg.list[4].offset, msg.list[5].offset, msg.list[6].offset })
    -- PRIORITY and ICE-CONTROLLED are ICE's: kept raw; PRIORITY is
    -- comprehension-required, so reported
    assert.are.same({ 0x0024 }, msg.unknown)
    assert.are.equal("\110\0\1\255", msg.list[2].value)
    assert.are.equal("\147\47\249\177\81\38\59\54", msg.list[3].value)
    assert.is_true(stun.check_integrity(s, msg, rfc.short_term_password))
    assert.is_false(stun.check_integrity(s, msg, rfc.short_term_password .. "x"))
    assert.is_true(stun.check_fingerprint(s, msg))
  end)

  it("§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853", function()
    local s = rfc.ipv4_response
    local msg = assert(message.decode(s))
    assert.are.equal("success", msg.class)
    assert.are.equal("test vector", msg.attrs.software)
    assert.are.same({ family = 4, ip = "192.0.2.1", port = 32853 }, msg.attrs.xor_mapped_address)
    assert.are.equal("192.0.2.1:32853", message.format_address(msg.attrs.xor_mapped_address))
    assert.is_true(stun.check_integrity(s, msg, rfc.short_term_password))
    assert.is_true(stun.check_fingerprint(s, msg))
    local again = assert(message.decode(stun.encode({ method = "binding", class = "success",
      tid = TID, list = { { type = "xor_mapped_address", value = msg.attrs.xor_mapped_address } },
    })))
    assert.are.equal(msg.list[2].raw, again.list[1].raw) -- the XOR, byte for byte
  end)

  it("§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853",
    function()
    local s = rfc.ipv6_response
    local msg = assert(message.decode(s))
    local a = msg.attrs.xor_mapped_address
    assert.are.same({ family = 6, ip = "2001:db8:1234:5678:11:2233:4455:6677", port = 32853 }, a)
    assert.are.equal("[2001:db8:1234:5678:11:2233:4455:6677]:32853", message.format_address(a))
    assert.is_true(stun.check_integrity(s, msg, rfc.short_term_password))
    assert.is_true(stun.check_fingerprint(s, msg))
    local again = assert(message.decode(stun.encode({ method = "binding", class = "success",
      tid = TID, list = { { type = "xor_mapped_address", value = a } } })))
    assert.are.equal(msg.list[2].raw, again.list[1].raw)
  end)

  it("§2.4 long-term credential: the MD5 key verifies; encode rebuilds it byte for byte", function()
    local s, lt = rfc.long_term_request, rfc.long_term
    local msg = assert(message.decode(s))
    assert.are.equal(lt.username, msg.attrs.username)
    assert.are.equal(lt.nonce, msg.attrs.nonce)
    assert.are.equal(lt.realm, msg.attrs.realm)
    local key = stun.long_term_key(lt.username, lt.realm, lt.password)
    assert.are.equal(core.digest("md5", lt.username .. ":" .. lt.realm .. ":" .. lt.password), key)
    assert.is_true(stun.check_integrity(s, msg, key))
    local wrong = stun.long_term_key(lt.username, lt.realm, "thematrix")
    assert.is_false(stun.check_integrity(s, msg, wrong))
    assert.is_false(stun.check_fingerprint(s, msg)) -- it has none
    assert.are.equal(s, stun.encode({ method = "binding", class = "request", tid = msg.tid, list = {
      { type = "username", value = lt.username }, { type = "nonce", value = lt.nonce },
      { type = "realm", value = lt.realm } } }, { key = key }))
  end)
end)

describe("captured coturn 4.6.1 responses", function()
  local key = stun.long_term_key(coturn.username, coturn.realm, coturn.password)
  -- name = { method, class, code, MESSAGE-INTEGRITY present }
  local expect = {
    binding_success = { "binding", "success", nil, false },
    allocate_401 = { "allocate", "error", 401, false },
    allocate_wrong_password_401 = { "allocate", "error", 401, false },
    allocate_expired_401 = { "allocate", "error", 401, false },
    allocate_unknown_420 = { "allocate", "error", 420, true },
    allocate_no_transport_400 = { "allocate", "error", 400, true },
    allocate_stale_nonce_438 = { "allocate", "error", 438, false },
    allocate_success = { "allocate", "success", nil, true },
    allocate_again_437 = { "allocate", "error", 437, false },
    refresh_delete_success = { "refresh", "success", nil, true },
    refresh_after_delete = { "refresh", "success", nil, true },
  }
  for name, e in pairs(expect) do
    it(name .. ": decodes, FINGERPRINT verifies, MESSAGE-INTEGRITY " ..
        (e[4] and "verifies with the long-term key" or "absent"), function()
      local s = assert(coturn[name], name)
      local msg = assert(message.decode(s))
      assert.are.equal(message.METHODS[e[1]], msg.method)
      assert.are.equal(e[2], msg.class)
      assert.are.equal("Coturn-4.6.1 'Gorst'", msg.attrs.software)
      assert.are.same({}, msg.unknown)
      assert.is_true(stun.check_fingerprint(s, msg))
      assert.are.equal(e[4], stun.check_integrity(s, msg, key))
      assert.are.equal(e[4], msg.attrs.message_integrity ~= nil)
      if e[3] then
        assert.are.equal(e[3], msg.attrs.error_code.code)
        assert.is_nil(msg.attrs.error_code.reason:find("%z")) -- coturn's NUL padding is cut
      else
        assert.is_nil(msg.attrs.error_code)
      end
    end)
  end

  it("401 and 438 carry the realm and a nonce; the reasons are coturn's", function()
    local c401 = assert(message.decode(coturn.allocate_401))
    assert.are.same({ code = 401, reason = "Unauthorized" }, c401.attrs.error_code)
    assert.are.equal(coturn.realm, c401.attrs.realm)
    assert.matches("^%x+$", c401.attrs.nonce)
    local c438 = assert(message.decode(coturn.allocate_stale_nonce_438))
    assert.are.same({ code = 438, reason = "Stale nonce" }, c438.attrs.error_code)
    assert.matches("^%x+$", c438.attrs.nonce)
    local c400 = assert(message.decode(coturn.allocate_no_transport_400))
    assert.are.equal("Transport field missed or wrong", c400.attrs.error_code.reason)
    local c437 = assert(message.decode(coturn.allocate_again_437))
    assert.are.equal("Mismatched allocation: wrong transaction ID", c437.attrs.error_code.reason)
  end)

  it("420 lists the unknown attribute it was sent (0x0031)", function()
    local msg = assert(message.decode(coturn.allocate_unknown_420))
    assert.are.same({ code = 420, reason = "Unknown Attribute" }, msg.attrs.error_code)
    assert.are.same({ 0x0031 }, msg.attrs.unknown_attributes)
  end)

  it("Allocate success: relayed address in coturn's relay range, mapped, lifetime", function()
    local msg = assert(message.decode(coturn.allocate_success))
    local relayed, mapped = msg.attrs.xor_relayed_address, msg.attrs.xor_mapped_address
    assert.are.equal("127.0.0.1", relayed.ip)
    assert.is_true(relayed.port >= 47000 and relayed.port <= 47999) -- min-port, max-port
    assert.are.equal(4, mapped.family)
    assert.are.equal("127.0.0.1", mapped.ip)
    assert.are.equal(600, msg.attrs.lifetime)
    assert.are.equal(0, assert(message.decode(coturn.refresh_delete_success)).attrs.lifetime)
  end)

  it("Binding success: XOR-MAPPED-ADDRESS is MAPPED-ADDRESS; RESPONSE-ORIGIN kept raw", function()
    local msg = assert(message.decode(coturn.binding_success))
    assert.are.same(msg.attrs.mapped_address, msg.attrs.xor_mapped_address)
    assert.are.same({ 0x0020, 0x0001, 0x802B, 0x8022, 0x8028 }, types_of(msg))
    assert.is_nil(msg.list[3].name)
    assert.are.equal(8, #msg.list[3].value)
  end)

  it("a MESSAGE-INTEGRITY made with another password does not verify", function()
    local msg = assert(message.decode(coturn.allocate_success))
    local other = stun.long_term_key(coturn.username, coturn.realm, "not-the-password")
    assert.is_false(stun.check_integrity(coturn.allocate_success, msg, other))
  end)
end)

describe("encode and decode", function()
  local ALL_METHODS = { binding = 0x001, allocate = 0x003, refresh = 0x004, send = 0x006,
    data = 0x007, create_permission = 0x008, channel_bind = 0x009 }

  it("names the methods of RFC 8489 and RFC 8656", function()
    assert.are.same(ALL_METHODS, message.METHODS)
  end)

  it("interleaves the method and class bits as RFC 8489 §5 draws them", function()
    for _, c in ipairs {
      { "binding", "request", 0x0001 }, { "binding", "success", 0x0101 },
      { "binding", "error", 0x0111 }, { "binding", "indication", 0x0011 },
      { "allocate", "request", 0x0003 }, { "allocate", "success", 0x0103 },
      { "allocate", "error", 0x0113 }, { "refresh", "request", 0x0004 },
      { "send", "indication", 0x0016 }, { "data", "indication", 0x0017 },
      { "create_permission", "request", 0x0008 }, { "channel_bind", "success", 0x0109 },
      { 0xFFF, "error", 0x3FFF }, { 0x080, "request", 0x0200 }, { 0x010, "request", 0x0020 },
    } do
      local s = stun.encode({ method = c[1], class = c[2], tid = TID })
      assert.are.equal(c[3], bits.u16(s, 1), tostring(c[1]) .. " " .. c[2])
      local msg = assert(message.decode(s))
      assert.are.equal(ALL_METHODS[c[1]] or c[1], msg.method)
      assert.are.equal(c[2], msg.class)
    end
  end)

  it("round-trips every method 0-0xFFF in every class", function()
    for method = 0, 0xFFF do
      for _, class in ipairs { "request", "indication", "success", "error" } do
        local msg = message.decode(stun.encode({ method = method, class = class, tid = TID }))
        assert(msg and msg.method == method and msg.class == class, method .. " " .. class)
      end
    end
  end)

  it("writes a 20-byte header, the cookie and a new random 96-bit tid each time", function()
    local a = stun.encode({ method = "binding", class = "request" })
    local b = stun.encode({ method = "binding", class = "request" })
    assert.are.equal(20, #a)
    assert.are.equal("\0\1\0\0" .. COOKIE, a:sub(1, 8))
    assert.are_not.equal(a:sub(9), b:sub(9))
    assert.are.equal(12, #stun.new_tid())
  end)

  local samples = {
    { "mapped_address", { family = 4, ip = "192.0.2.1", port = 3478 } },
    { "mapped_address", { family = 6, ip = "2001:db8::1", port = 0 } },
    { "xor_mapped_address", { family = 4, ip = "203.0.113.7", port = 65535 } },
    { "xor_mapped_address", { family = 6, ip = "::ffff:192.0.2.9", port = 9 } },
    { "xor_relayed_address", { family = 4, ip = "127.0.0.1", port = 49152 } },
    { "xor_relayed_address", { family = 6, ip = "fe80::1:2:3:4", port = 7 } },
    { "xor_peer_address", { family = 6, ip = "::", port = 1 } },
    { "xor_peer_address", { family = 4, ip = "0.0.0.0", port = 2 } },
    { "alternate_server", { family = 4, ip = "198.51.100.2", port = 3479 } },
    { "alternate_server", { family = 6, ip = "2001:db8:0:1:1:1:1:1", port = 5349 } },
    { "username", "1900000000:user" }, { "username", "" }, { "username", "\0\1\255" },
    { "realm", "example.org" }, { "nonce", "f//499k954d6OL34oL9FSTvy64sA" },
    { "software", "iceservers 0.1.0" },
    { "error_code", { code = 401, reason = "Unauthorized" } },
    { "error_code", { code = 300, reason = "" } }, { "error_code", { code = 699, reason = "x" } },
    { "unknown_attributes", { 0x0031 } }, { "unknown_attributes", { 0x0001, 0x7FFF, 0xFFFF } },
    { "unknown_attributes", {} },
    { "lifetime", 0 }, { "lifetime", 600 }, { "lifetime", 0xFFFFFFFF },
    { "requested_transport", 17 }, { "requested_transport", 6 },
  }
  for i, c in ipairs(samples) do
    it("round-trips " .. c[1] .. " sample " .. i .. " with MI and FINGERPRINT", function()
      local key = core.random_bytes(16)
      local s = stun.encode({ method = "allocate", class = "success", tid = TID,
        list = { { type = c[1], value = c[2] } } }, { key = key, fingerprint = true })
      assert.are.equal(0, #s % 4)
      local msg = assert(message.decode(s))
      assert.are.same(c[2], msg.attrs[c[1]])
      assert.are.same({ message.ATTRS[c[1]], 0x0008, 0x8028 }, types_of(msg))
      assert.is_true(stun.check_integrity(s, msg, key))
      assert.is_true(stun.check_fingerprint(s, msg))
      assert.are.same({}, msg.unknown)
    end)
  end

  it("keeps attributes in order, the first of a kind in attrs and every one in list", function()
    local s = stun.encode({ method = "allocate", class = "success", tid = TID, list = {
      { type = "xor_relayed_address", value = { ip = "192.0.2.1", port = 1 } },
      { type = "xor_relayed_address", value = { ip = "2001:db8::2", port = 2 } },
      { type = "lifetime", value = 600 },
    } })
    local msg = assert(message.decode(s))
    assert.are.same({ family = 4, ip = "192.0.2.1", port = 1 }, msg.attrs.xor_relayed_address)
    assert.are.same({ family = 6, ip = "2001:db8::2", port = 2 }, msg.list[2].value)
    assert.are.same({ 20, 32, 56 }, { msg.list[1].offset, msg.list[2].offset, msg.list[3].offset })
  end)

  it("keeps unknown attributes raw and reports the comprehension-required ones", function()
    local s = stun.encode({ method = "binding", class = "success", tid = TID, list = {
      { type = 0x0031, raw = "abc" }, { type = 0x8031, raw = "optional" },
      { type = 0x7FFF, raw = "" },
    } })
    local msg = assert(message.decode(s))
    assert.are.same({ 0x0031, 0x7FFF }, msg.unknown)
    assert.are.equal("abc", msg.list[1].value)
    assert.are.equal("optional", msg.list[2].value)
    assert.is_nil(msg.list[2].name)
  end)

  it("pads each value with zeros to 4 bytes and counts only the value in its length", function()
    local s = stun.encode({ method = "binding", class = "request", tid = TID,
      list = { { type = "software", value = "abcde" } } })
    assert.are.equal(frame("\128\34\0\5abcde\0\0\0", 0x0001), s)
  end)

  it("accepts non-zero padding and reserved bits, as RFC 8489 says to ignore them", function()
    local msg = assert(message.decode(frame(be16(0x0009) .. be16(7) .. "\255\255\252\1abc\32"
      .. be16(0x0020) .. be16(8) .. "\255\1" .. bits.xor("\0\80\192\0\2\1", "\33\18\33\18\164\66")
      .. be16(0x0019) .. be16(4) .. "\17\1\2\3")))
    assert.are.same({ code = 401, reason = "abc" }, msg.attrs.error_code)
    assert.are.same({ family = 4, ip = "192.0.2.1", port = 80 }, msg.attrs.xor_mapped_address)
    assert.are.equal(17, msg.attrs.requested_transport)
  end)

  it("decodes a message of the largest length (65532 bytes of attributes)", function()
    local s = stun.encode({ method = "binding", class = "indication", tid = TID,
      list = { { type = "software", value = ("x"):rep(65528) } } })
    assert.are.equal(20 + 65532, #s)
    assert.are.equal(65528, #assert(message.decode(s)).attrs.software)
  end)

  it("uses only the crypto it is given (hmac, crc32, random_bytes, ct_equal)", function()
    local calls = {}
    local fake = {
      hmac = function(alg, key, data)
        calls[#calls + 1] = "hmac " .. alg .. " " .. key .. " " .. #data
        return ("m"):rep(20)
      end,
      digest = function(alg, data)
        calls[#calls + 1] = "digest " .. alg .. " " .. data
        return "k"
      end,
      crc32 = function(data) calls[#calls + 1] = "crc32 " .. #data return 0x5354554E end,
      random_bytes = function(n) calls[#calls + 1] = "random " .. n return ("t"):rep(n) end,
      ct_equal = function(a, b) calls[#calls + 1] = "ct_equal" return a == b end,
    }
    local f = message.new(fake)
    local s = f.encode({ method = "binding", class = "request" }, { key = "K", fingerprint = true })
    assert.are.same({ "random 12", "hmac sha1 K 20", "crc32 44" }, calls)
    assert.are.equal(("t"):rep(12), s:sub(9, 20))
    assert.are.equal(("m"):rep(20), s:sub(25, 44))
    assert.are.equal("\0\0\0\0", s:sub(49, 52)) -- 0x5354554E XOR 0x5354554E
    local msg = assert(message.decode(s))
    assert.is_true(f.check_integrity(s, msg, "K"))
    assert.are.equal("ct_equal", calls[#calls])
    assert.is_true(f.check_fingerprint(s, msg))
    assert.are.equal("k", f.long_term_key("u", "r", "p"))
    assert.are.equal("digest md5 u:r:p", calls[#calls])
  end)

  it("requires no runtime module: only its compat shim", function()
    for _, path in ipairs { "lua/iceservers/stun/message.lua", "lua/iceservers/stun/bits.lua" } do
      local src = assert(sh.read_file(path)):gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
      local names = {}
      for name in src:gmatch("require%s*%(?%s*[\"']([^\"']+)") do names[#names + 1] = name end
      for name in src:gmatch("pcall%(require,%s*[\"']([^\"']+)") do names[#names + 1] = name end
      assert.truthy(#names > 0, "the scan found no require in " .. path)
      for _, name in ipairs(names) do
        assert.truthy(name == "iceservers.stun.bits" or name == "bit", path .. " requires " .. name)
      end
      assert.is_nil(src:find("ngx", 1, true), path .. " mentions ngx")
    end
  end)
end)

describe("MESSAGE-INTEGRITY and FINGERPRINT placement (RFC 8489 §14.5, §14.7)", function()
  local key = "secret key"
  local base = stun.encode({ method = "allocate", class = "success", tid = TID,
    list = { { type = "lifetime", value = 600 } } }, { key = key })
  -- base plus these attribute bytes, the header length fixed
  local function plus(s, more)
    local body = s:sub(21) .. more
    return s:sub(1, 2) .. be16(#body) .. s:sub(5, 20) .. body
  end

  it("ignores what follows MESSAGE-INTEGRITY except FINGERPRINT; the MAC still verifies", function()
    local s = plus(base, tlv(0x000D, "\0\0\0\1") .. tlv(0x8022, "late") .. tlv(0x0031, "x"))
    local msg = assert(message.decode(s))
    assert.are.equal(600, msg.attrs.lifetime)
    assert.is_nil(msg.attrs.software)
    assert.are.same({}, msg.unknown) -- an ignored 0x0031 is not reported
    assert.is_true(msg.list[3].ignored and msg.list[4].ignored and msg.list[5].ignored)
    assert.is_nil(msg.list[3].value)
    assert.is_true(stun.check_integrity(s, msg, key))
  end)

  it("does not judge a malformed attribute after MESSAGE-INTEGRITY", function()
    local s = plus(base, tlv(0x0020, "\0\9"))
    local msg = assert(message.decode(s))
    assert.is_true(msg.list[3].ignored)
  end)

  it("takes FINGERPRINT after MESSAGE-INTEGRITY, and both verify", function()
    local s = stun.encode({ method = "allocate", class = "success", tid = TID,
      list = { { type = "lifetime", value = 600 } } }, { key = key, fingerprint = true })
    local msg = assert(message.decode(s))
    assert.is_not_nil(msg.attrs.fingerprint)
    assert.is_true(stun.check_integrity(s, msg, key))
    assert.is_true(stun.check_fingerprint(s, msg))
  end)

  it("refuses a FINGERPRINT that is not last, and ignores what follows it", function()
    local fp = stun.encode({ method = "binding", class = "success", tid = TID },
      { fingerprint = true })
    local s = plus(fp, tlv(0x8022, "after"))
    local msg = assert(message.decode(s))
    assert.is_true(msg.list[2].ignored)
    assert.is_nil(msg.attrs.software)
    assert.is_false(stun.check_fingerprint(s, msg))
    assert.is_true(stun.check_fingerprint(fp, assert(message.decode(fp))))
  end)

  it("does not use a MESSAGE-INTEGRITY that follows a FINGERPRINT", function()
    local fp = stun.encode({ method = "binding", class = "success", tid = TID },
      { fingerprint = true })
    local mac = core.hmac("sha1", key, fp:sub(1, 2) .. be16(#fp - 20 + 24) .. fp:sub(5))
    local s = plus(fp, tlv(0x0008, mac))
    local msg = assert(message.decode(s))
    assert.is_nil(msg.attrs.message_integrity)
    assert.is_false(stun.check_integrity(s, msg, key))
  end)

  it("uses the first of two MESSAGE-INTEGRITY attributes only", function()
    local s = plus(base, tlv(0x0008, ("z"):rep(20)))
    local msg = assert(message.decode(s))
    assert.is_true(msg.list[3].ignored)
    assert.is_true(stun.check_integrity(s, msg, key))
  end)

  it("fails either check on a changed byte, a changed key or a missing attribute", function()
    local s = stun.encode({ method = "allocate", class = "success", tid = TID,
      list = { { type = "lifetime", value = 600 } } }, { key = key, fingerprint = true })
    local flipped = s:sub(1, 24) .. "\1" .. s:sub(26) -- inside LIFETIME
    local msg = assert(message.decode(flipped))
    assert.is_false(stun.check_integrity(flipped, msg, key))
    assert.is_false(stun.check_fingerprint(flipped, msg))
    local fp_flipped = s:sub(1, -2) .. string.char((s:byte(-1) + 1) % 256)
    msg = assert(message.decode(fp_flipped))
    assert.is_true(stun.check_integrity(fp_flipped, msg, key))
    assert.is_false(stun.check_fingerprint(fp_flipped, msg))
    msg = assert(message.decode(s))
    assert.is_false(stun.check_integrity(s, msg, key .. "!"))
    local bare = stun.encode({ method = "allocate", class = "success", tid = TID })
    assert.is_false(stun.check_integrity(bare, assert(message.decode(bare)), key))
    assert.is_false(stun.check_fingerprint(bare, assert(message.decode(bare))))
  end)

  it("gives false, never raises, on bytes that are not the message", function()
    local msg = assert(message.decode(base))
    assert.is_false(stun.check_integrity(base:sub(1, 30), msg, key))
    assert.is_false(stun.check_integrity(nil, msg, key))
    assert.is_false(stun.check_integrity(base, nil, key))
    assert.is_false(stun.check_fingerprint(base, {}))
    assert.is_false(stun.check_fingerprint(nil, nil))
    assert.has_error(function() stun.check_integrity(base, msg, nil) end)
  end)
end)

describe("decode refuses with nil, err", function()
  local good = stun.encode({ method = "binding", class = "success", tid = TID,
    list = { { type = "software", value = "abc" } } })

  it("what is not a string or shorter than a header", function()
    for _, v in ipairs { 42, true, {}, "", "\0\1", good:sub(1, 19) } do refused(v) end
    assert.matches("not a string", refused(nil))
    assert.matches("truncated: 19 bytes", refused(good:sub(1, 19)))
  end)

  it("a first byte with either of the top two bits set (not STUN: ChannelData, RTP...)", function()
    assert.matches("first two bits", refused("\64" .. good:sub(2)))
    assert.matches("first two bits", refused("\128" .. good:sub(2)))
  end)

  it("a wrong magic cookie (an RFC 3489 message)", function()
    assert.matches("magic cookie", refused(good:sub(1, 4) .. "\33\18\164\67" .. good:sub(9)))
  end)

  it("a length that is not a multiple of 4", function()
    assert.matches("not a multiple of 4", refused(good:sub(1, 2) .. be16(7) .. good:sub(5, 27)))
  end)

  it("a length that does not match the bytes (truncated or trailing)", function()
    assert.matches("the header says 8 bytes of attributes, 4 follow", refused(good:sub(1, -5)))
    refused(good .. "\0\0\0\0")
    refused(good:sub(1, 2) .. be16(4) .. good:sub(5))
  end)

  it("an attribute that overruns the message", function()
    assert.matches("SOFTWARE at offset 20 overruns",
      refused(frame(be16(0x8022) .. be16(5) .. "abcd")))
    refused(frame(be16(0x0031) .. be16(0xFFFF)))
    refused(frame(tlv(0x0006, "ok") .. be16(0x0006) .. be16(1)))
  end)

  local malformed = {
    { 0x0020, "\0\1\0\1\1\2\3", "XOR%-MAPPED%-ADDRESS: 7 bytes for an IPv4 address" },
    { 0x0020, "\0\2\0\1\1\2\3\4", "8 bytes for an IPv6 address" },
    { 0x0020, "\0\3\0\1\1\2\3\4", "unknown address family 3" },
    { 0x0020, "\0\1", "shorter than 4 bytes" },
    { 0x0001, "\0\1\0\1\1\2\3\4\5", "MAPPED%-ADDRESS" },
    { 0x0016, "", "XOR%-RELAYED%-ADDRESS" },
    { 0x0012, ("\0"):rep(20), "XOR%-PEER%-ADDRESS" },
    { 0x8023, "\0\0\0\0\1\2\3\4", "ALTERNATE%-SERVER: unknown address family 0" },
    { 0x0009, "\0\0\4", "ERROR%-CODE: shorter than 4 bytes" },
    { 0x0009, "\0\0\2\0", "class 2 number 0 is not an error code" },
    { 0x0009, "\0\0\7\0", "class 7" },
    { 0x0009, "\0\0\4\100", "number 100" },
    { 0x000A, "\0\1\0", "UNKNOWN%-ATTRIBUTES: odd length 3" },
    { 0x000D, "\0\0\2", "LIFETIME: 3 bytes, not 4" },
    { 0x000D, "\0\0\2\88\0", "LIFETIME: 5 bytes" },
    { 0x0019, "\17\0\0\0\0", "REQUESTED%-TRANSPORT" },
    { 0x0008, ("m"):rep(19), "MESSAGE%-INTEGRITY: 19 bytes, not 20" },
    { 0x8028, "\0\0\0\0\0\0\0\0", "FINGERPRINT: 8 bytes" },
  }
  for _, c in ipairs(malformed) do
    it(("a malformed %s (%q)"):format(c[3]:match("^[%u%%%-]+") or ("0x%04x"):format(c[1]), c[2]),
      function()
        assert.matches("malformed .*" .. c[3], refused(frame(tlv(c[1], c[2]))))
        -- the same through encode's raw
        local s = stun.encode({ method = "binding", class = "success", tid = TID,
          list = { { type = c[1], raw = c[2] } } })
        refused(s)
      end)
  end
end)

describe("frame_length", function()
  it("says how many bytes follow a stream's 20-byte header", function()
    local s = stun.encode({ method = "allocate", class = "success", tid = TID,
      list = { { type = "lifetime", value = 600 } } }, { key = "k", fingerprint = true })
    assert.are.equal(#s - 20, message.frame_length(s:sub(1, 20)))
    assert.are.equal(#s - 20, message.frame_length(s))
    local bare = stun.encode({ method = "binding", class = "request" })
    assert.are.equal(0, message.frame_length(bare))
  end)

  it("refuses what cannot start a STUN message", function()
    local h = stun.encode({ method = "binding", class = "request", tid = TID })
    for _, bad in ipairs { 20, h:sub(1, 19), "\64" .. h:sub(2), h:sub(1, 4) .. "XXXX" .. h:sub(9),
        h:sub(1, 2) .. "\0\2" .. h:sub(5), false } do
      local n, err = message.frame_length(bad)
      assert.is_nil(n)
      assert.are.equal("string", type(err))
    end
    assert.is_nil((message.frame_length(nil)))
  end)
end)

describe("IP addresses", function()
  local texts = { -- RFC 5952 §4: lower case, no leading zeros, the longest zero run as ::
    { "2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001" },
    { "2001:db8::1:0:0:1", "2001:db8:0:0:1:0:0:1" }, -- the first of equal runs
    { "2001:0:0:1::1", "2001:0:0:1:0:0:0:1" },       -- the longest run
    { "2001:db8:0:1:1:1:1:1", "2001:db8::1:1:1:1:1" }, -- one zero group is not compressed
    { "::", "0:0:0:0:0:0:0:0" }, { "::1", "0::1" }, { "1::", "1:0::" },
    { "fe80::", "FE80:0:0:0:0:0:0:0" }, { "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8" },
    { "::ffff:192.0.2.1", "::ffff:c000:201" },       -- §5: IPv4-mapped in dotted form
    { "::c000:201", "::192.0.2.1" },                 -- IPv4-compatible: plain hex
    { "64:ff9b::c000:201", "64:ff9b::192.0.2.1" },
    { "192.0.2.1", "192.0.2.1" }, { "0.0.0.0", "0.0.0.0" },
    { "255.255.255.255", "255.255.255.255" },
  }
  for _, c in ipairs(texts) do
    it("writes " .. c[2] .. " as " .. c[1], function()
      local raw, family = message.ip_bytes(c[2])
      assert.are.equal(c[1]:find(":") and 6 or 4, family)
      assert.are.equal(c[1], message.ip_text(raw))
      assert.are.equal(raw, (message.ip_bytes(c[1])))
    end)
  end

  it("refuses what is not an address", function()
    for _, bad in ipairs { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "1::2::3",
        "12345::", ":::", ":1::", "1::2:", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7::8",
        "g::1", "::1%eth0", "[::1]", "::1.2.3", "1.2.3.4::", "::ffff:1.2.3.256", "host.example" } do
      assert.is_nil(message.ip_bytes(bad), bad)
    end
    assert.is_nil(message.ip_bytes(nil))
    assert.is_nil(message.ip_bytes(42))
  end)

  it("formats addresses as ip:port, IPv6 in brackets", function()
    local v4 = { family = 4, ip = "192.0.2.1", port = 3478 }
    assert.are.equal("192.0.2.1:3478", message.format_address(v4))
    local v6 = { family = 6, ip = "2001:db8::1", port = 0 }
    assert.are.equal("[2001:db8::1]:0", message.format_address(v6))
  end)
end)

describe("misuse raises", function()
  local function raises(pattern, f)
    local ok, err = pcall(f)
    assert.is_false(ok)
    assert.matches(pattern, tostring(err))
  end
  local function enc(msg, opts)
    return function()
      msg.tid = msg.tid or TID
      msg.method = msg.method or "binding"
      msg.class = msg.class or "request"
      stun.encode(msg, opts)
    end
  end
  local function attr(t, v) return enc({ list = { { type = t, value = v } } }) end

  it("message.new without the crypto functions", function()
    raises("crypto.hmac must be a function", function() message.new(nil) end)
    raises("crypto.crc32 must be a function", function()
      message.new({ hmac = print, digest = print, random_bytes = print })
    end)
  end)

  it("a wrong method, class, tid or key", function()
    raises("unknown method bind", enc({ method = "bind" }))
    raises("unknown method 4096", enc({ method = 0x1000 }))
    raises("unknown method %-1", enc({ method = -1 }))
    raises("unknown class response", enc({ class = "response" }))
    raises("tid must be 12 bytes", enc({ tid = "short" }))
    raises("opts.key must be a string", enc({}, { key = 42 }))
  end)

  it("an unknown attribute name or type, or an unknown type without raw bytes", function()
    raises("no type usrname", attr("usrname", "x"))
    raises("no type 65536", attr(0x10000, "x"))
    raises("0x0031: give its bytes as raw", attr(0x0031, "x"))
  end)

  it("values that do not fit their attribute", function()
    raises("USERNAME: expected a string", attr("username", 42))
    raises("XOR%-MAPPED%-ADDRESS: expected { ip =, port = }", attr("xor_mapped_address", "1.2.3.4"))
    raises("not an IP address: host", attr("xor_peer_address", { ip = "host", port = 1 }))
    local v6 = { family = 6, ip = "1.2.3.4", port = 1 }
    raises("family is not the ip's", attr("mapped_address", v6))
    raises("port must be an integer", attr("alternate_server", { ip = "1.2.3.4", port = 65536 }))
    raises("port must be an integer", attr("alternate_server", { ip = "1.2.3.4", port = 1.5 }))
    raises("code = 300%-699", attr("error_code", { code = 200 }))
    raises("code = 300%-699", attr("error_code", { code = 700, reason = "x" }))
    raises("ERROR%-CODE: expected a string", attr("error_code", { code = 400, reason = 4 }))
    raises("entry 2 is not a type", attr("unknown_attributes", { 1, 0x10000 }))
    raises("LIFETIME: expected an integer", attr("lifetime", -1))
    raises("LIFETIME: expected an integer", attr("lifetime", 2 ^ 32))
    raises("protocol number 0%-255", attr("requested_transport", 256))
  end)

  it("MESSAGE-INTEGRITY or FINGERPRINT as values (opts make them; raw forges one)", function()
    raises("MESSAGE%-INTEGRITY comes from opts.key", attr("message_integrity", ("m"):rep(20)))
    raises("FINGERPRINT comes from opts.key or opts.fingerprint", attr("fingerprint", 1))
    local forged = stun.encode({ method = "binding", class = "success", tid = TID,
      list = { { type = "message_integrity", raw = ("m"):rep(20) } } })
    local msg = assert(message.decode(forged))
    assert.is_false(stun.check_integrity(forged, msg, "k"))
  end)

  it("more than 65535 bytes", function()
    raises("SOFTWARE: longer than 65535 bytes", attr("software", ("x"):rep(65536)))
    raises("the message is longer than 65535 bytes", enc({ list = {
      { type = "software", value = ("x"):rep(40000) }, { type = "realm", value = ("y"):rep(30000) },
    } }))
    local full = { { type = "software", value = ("x"):rep(65528) } }
    raises("the message is longer", enc({ list = full }, { fingerprint = true }))
  end)

  it("a long-term key from non-strings", function()
    raises("long_term_key: expected a string", function() stun.long_term_key("u", nil, "p") end)
  end)
end)
