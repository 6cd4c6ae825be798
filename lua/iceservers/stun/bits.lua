-- Big-endian integers and XOR over byte strings, from one source for Lua 5.4
-- and LuaJIT 2.1: LuaJIT has no string.pack and its parser rejects the 5.3
-- bit operators, so byte arithmetic does the packing and bxor comes from
-- whatever the running Lua offers.
local byte, char, floor = string.byte, string.char, math.floor

local M = {}

-- bxor(a, b) for integers 0 .. 2^32 - 1, result in the same range.
local function pick_bxor()
  -- Lua 5.3+: the operator, compiled at run time so LuaJIT never parses it.
  local native = (loadstring or load)("return function(a, b) return a ~ b end")
  if native then return native() end
  local ok, lib = pcall(require, "bit") -- LuaJIT's BitOp: signed 32-bit results
  if ok and type(lib) == "table" and lib.bxor then
    local bx = lib.bxor
    return function(a, b) return bx(a, b) % 4294967296 end
  end
  local bit32 = rawget(_G, "bit32") -- Lua 5.2
  if bit32 then return bit32.bxor end
  return function(a, b) -- plain Lua 5.1: bit by bit
    local r, p = 0, 1
    while a > 0 or b > 0 do
      if a % 2 ~= b % 2 then r = r + p end
      a, b, p = floor(a / 2), floor(b / 2), p * 2
    end
    return r
  end
end
M.bxor = pick_bxor()
local bxor = M.bxor

-- The unsigned 16- or 32-bit integer at s[i..]; the caller checks the length.
function M.u16(s, i)
  local a, b = byte(s, i, i + 1)
  return a * 256 + b
end

function M.u32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

function M.be16(n)
  return char(floor(n / 256) % 256, n % 256)
end

function M.be32(n)
  return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- a XOR b byte by byte; b at least as long as a.
function M.xor(a, b)
  local out = {}
  for i = 1, #a do out[i] = char(bxor(byte(a, i), byte(b, i))) end
  return table.concat(out)
end

return M
