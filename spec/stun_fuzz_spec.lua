-- Generated-input robustness of the STUN decoder (iceservers.stun.message):
-- random bytes and mutations of valid messages (the RFC 5769 vectors, captured
-- coturn responses, encodings of every attribute) by bit flips, byte changes,
-- truncation, trailing bytes, header-length and attribute-length edits,
-- attribute-type swaps and spliced attributes.  Every case must give nil and
-- a one-line error or a message that passes support.stun_check (structure,
-- checks that never raise, a faithful re-encode); none may raise.
--
-- The generator is a Park-Miller LCG, as in fuzz_lua_spec.lua, so that Lua 5.4
-- and LuaJIT step through the same cases.  ICESERVERS_FUZZ_SEED and
-- ICESERVERS_STUN_FUZZ_COUNT change the run; a failure names the seed, the
-- case and its bytes in hex.
local core = require "iceservers.core"
local message = require "iceservers.stun.message"
local bits = require "iceservers.stun.bits"
local vectors = require "support.stun_vectors"
local check = require "support.stun_check"

local SEED = tonumber(os.getenv("ICESERVERS_FUZZ_SEED") or "") or 20240611
local COUNT = tonumber(os.getenv("ICESERVERS_STUN_FUZZ_COUNT") or "") or 5000
local stun = message.new(core)
local be16 = bits.be16

local function lcg(seed)
  local x = seed % 2147483646 + 1
  local r = {}
  function r.next()
    x = x * 16807 % 2147483647
    return x
  end
  function r.int(lo, hi) return lo + r.next() % (hi - lo + 1) end
  function r.pick(t) return t[r.int(1, #t)] end
  function r.bytes(n)
    local t = {}
    for i = 1, n do t[i] = string.char(r.int(0, 255)) end
    return table.concat(t)
  end
  return r
end

-- Valid messages to mutate.
local function seeds()
  local out = {}
  for _, set in ipairs { vectors.rfc5769, vectors.coturn } do
    local names = {} -- in a fixed order: pairs() differs between Lua 5.4 and LuaJIT
    for name, v in pairs(set) do
      if type(v) == "string" and #v >= 20 and message.decode(v) then names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do out[#out + 1] = set[name] end
  end
  local tid = vectors.rfc5769.tid
  local function add(method, class, list, opts)
    out[#out + 1] = stun.encode({ method = method, class = class, tid = tid, list = list }, opts)
  end
  local both = { key = "k", fingerprint = true }
  add("allocate", "request", { { type = "requested_transport", value = 17 },
    { type = "username", value = "1900000000:u" }, { type = "realm", value = "r" },
    { type = "nonce", value = "n" } }, both)
  add("allocate", "success", {
    { type = "xor_relayed_address", value = { ip = "2001:db8::7", port = 50000 } },
    { type = "xor_mapped_address", value = { ip = "::ffff:10.0.0.1", port = 1 } },
    { type = "lifetime", value = 600 }, { type = "software", value = "x" } }, both)
  add("allocate", "error", { { type = "error_code", value = { code = 420, reason = "Unknown" } },
    { type = "unknown_attributes", value = { 0x0031, 0x0032, 0x0033 } } }, both)
  add("binding", "error", { { type = "error_code", value = { code = 300, reason = "Try" } },
    { type = "alternate_server", value = { ip = "192.0.2.9", port = 3478 } },
    { type = "mapped_address", value = { ip = "fe80::1", port = 2 } } }, { fingerprint = true })
  add("send", "indication", { { type = "xor_peer_address", value = { ip = "1.2.3.4", port = 5 } },
    { type = 0x0013, raw = "data" }, { type = 0x8031, raw = "" } })
  return out
end

local TYPES = { 0x0001, 0x0006, 0x0008, 0x0009, 0x000A, 0x000D, 0x0012, 0x0014, 0x0015, 0x0016,
  0x0019, 0x0020, 0x8022, 0x8023, 0x8028, 0x0031, 0x8031, 0xFFFF, 0x0000 }

-- Offsets (0-based) of the attribute headers of a valid message.
local function attribute_offsets(s)
  local msg = message.decode(s)
  local out = {}
  for _, e in ipairs(msg and msg.list or {}) do out[#out + 1] = e.offset end
  return out
end

local function set(s, at, bytes) -- replace bytes at 0-based offset at
  return s:sub(1, at) .. bytes .. s:sub(at + #bytes + 1)
end

local function fix_length(s)
  if #s < 20 then return s end
  return set(s, 2, be16((#s - 20) % 65536))
end

local BITS = { 1, 2, 4, 8, 16, 32, 64, 128 }

local function mutate(r, s)
  if #s == 0 then return r.bytes(r.int(1, 40)) end
  local kind = r.int(1, 10)
  if kind == 1 then -- flip 1-4 bits
    for _ = 1, r.int(1, 4) do
      local i = r.int(1, #s)
      local b = s:byte(i)
      local bit = r.pick(BITS)
      b = (b % (2 * bit) >= bit) and b - bit or b + bit
      s = s:sub(1, i - 1) .. string.char(b) .. s:sub(i + 1)
    end
  elseif kind == 2 then -- change 1-3 bytes
    for _ = 1, r.int(1, 3) do s = set(s, r.int(0, #s - 1), string.char(r.int(0, 255))) end
  elseif kind == 3 then -- truncate
    s = s:sub(1, r.int(0, #s - 1))
  elseif kind == 4 then -- trailing bytes
    s = s .. r.bytes(r.int(1, 16))
  elseif kind == 5 then -- the header's length
    local len = r.pick { r.int(0, 65535), #s - 20 + r.pick { -8, -4, -1, 1, 4, 8 }, 0 }
    s = set(s, 2, be16(len % 65536))
  elseif kind == 6 or kind == 7 then -- one attribute's length or type
    local offsets = attribute_offsets(s)
    if #offsets == 0 then return s .. r.bytes(4) end
    local at = r.pick(offsets)
    if kind == 6 then
      local old = s:byte(at + 3) * 256 + s:byte(at + 4)
      local len = r.pick { r.int(0, 65535), old + r.pick { -4, -1, 1, 3, 4 }, 0, 0xFFFF }
      s = set(s, at + 2, be16(len % 65536))
    else
      s = set(s, at, be16(r.pick(TYPES)))
    end
    if r.int(0, 1) == 0 then s = fix_length(s) end
  elseif kind == 8 then -- splice an attribute in at a boundary, the length fixed
    local offsets = attribute_offsets(s)
    offsets[#offsets + 1] = #s
    local at = r.pick(offsets)
    local v = r.bytes(r.pick { 0, 1, 2, 4, 8, 12, 20, r.int(0, 40) })
    local attr = be16(r.pick(TYPES)) .. be16(#v) .. v .. ("\0"):rep((4 - #v % 4) % 4)
    s = fix_length(s:sub(1, at) .. attr .. s:sub(at + 1))
  elseif kind == 9 then -- a valid header over random attribute bytes
    s = fix_length(s:sub(1, 20) .. r.bytes(4 * r.int(0, 20)))
  else -- anything
    s = r.bytes(r.int(0, 100))
  end
  return s
end

describe("STUN decoder on generated input", function()
  it(("survives %d random and mutated messages (seed %d)"):format(COUNT, SEED), function()
    local r = lcg(SEED)
    local pool = seeds()
    assert.truthy(#pool >= 15, "seeds")
    local counts = { decoded = 0, refused = 0 }
    for case = 1, COUNT do
      local s = r.pick(pool)
      for _ = 1, r.int(1, 3) do s = mutate(r, s) end
      local ok, outcome = pcall(check, stun, s)
      if not ok then
        error(("seed %d case %d: %s\nbytes: %s"):format(SEED, case, tostring(outcome), core.hex(s)))
      end
      counts[outcome] = counts[outcome] + 1
    end
    -- the mutations reach both sides: the checks on decoded messages ran
    local seen = ("%d decoded, %d refused"):format(counts.decoded, counts.refused)
    assert.truthy(counts.decoded >= COUNT / 20, seen)
    assert.truthy(counts.refused >= COUNT / 4, seen)
  end)

  it("passes the check on every seed as it is", function()
    for i, s in ipairs(seeds()) do
      assert.are.equal("decoded", (check(stun, s)), "seed " .. i)
    end
  end)
end)
