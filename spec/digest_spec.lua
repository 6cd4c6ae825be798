-- core.digest and core.crc32 (src/ice_digest.c) against published vectors
-- (RFC 1321, FIPS 180-2 examples, the CRC-32 check value) and zlib's crc32,
-- on both Lua ABIs, and their refusal of misuse.
local core = require "iceservers.core"

local function seq(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

describe("core.digest", function()
  local vectors = {
    { "md5", "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "md5", "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "md5", "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "md5", seq(0, 255), "e2c865db4162bed963bfaa9ef6ac18f0" },
    { "md5", string.rep("a", 1000000), "7707d6ae4e027c70eea2a935c2296f21" },
    { "sha1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "sha256", "\0", "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" },
    { "sha384", "abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
      .. "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7" },
    { "sha512", "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
  }
  for i, v in ipairs(vectors) do
    it("matches vector " .. i .. " (" .. v[1] .. ", " .. #v[2] .. " bytes)", function()
      assert.are.equal(v[3], core.hex(core.digest(v[1], v[2])))
    end)
  end

  it("gives the STUN long-term key of RFC 5769 §2.4", function()
    -- MD5("<username>:example.org:TheMatrIX"); its MAC is checked in stun_message_spec
    local user = "\227\131\158\227\131\136\227\131\170\227\131\131\227\130\175\227\130\185"
    assert.are.equal(16, #core.digest("md5", user .. ":example.org:TheMatrIX"))
  end)

  it("raises on an unknown algorithm or a non-string message", function()
    for _, call in ipairs {
      function() core.digest("MD5", "x") end,
      function() core.digest("sha3", "x") end,
      function() core.digest("md4", "x") end,
      function() core.digest(nil, "x") end,
      function() core.digest("md5") end,
      function() core.digest("md5", 42) end,
      function() core.digest("md5", {}) end,
    } do
      assert.has_error(call)
    end
    local ok, err = pcall(core.digest, "sha3", "x")
    assert.is_false(ok)
    assert.matches("unknown algorithm 'sha3' %(expected md5, sha1, sha256, sha384 or sha512%)", err)
  end)
end)

describe("core.crc32", function()
  local vectors = { -- zlib.crc32 of each
    { "123456789", 0xCBF43926 }, -- the check value of CRC-32/ISO-HDLC
    { "", 0 },
    { "a", 0xE8B7BE43 },
    { "The quick brown fox jumps over the lazy dog", 0x414FA339 },
    { seq(0, 255), 0x29058C73 },
    { string.rep("\0", 32), 0x190A55AD },
    { string.rep("\255", 32), 0xFF6CAB0B },
  }
  for i, v in ipairs(vectors) do
    it("matches zlib on vector " .. i .. " (" .. #v[1] .. " bytes)", function()
      assert.are.equal(v[2], core.crc32(v[1]))
    end)
  end

  it("returns a non-negative integer below 2^32 (an integer on Lua 5.3+)", function()
    local c = core.crc32("123456789")
    assert.is_true(c >= 2 ^ 31 and c < 2 ^ 32) -- the top bit set: no sign
    assert.are.equal(0, c % 1)
    if math.type then assert.are.equal("integer", math.type(c)) end
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() core.crc32(123456789) end)
    assert.has_error(function() core.crc32(nil) end)
    assert.has_error(function() core.crc32({}) end)
  end)
end)
