--[[
The two calls into the C core that the nginx endpoint makes on every request
(a credential's base64 HMAC, and JSON string quoting), through LuaJIT's FFI
where it can: a compiled trace calls a Lua C function only by leaving the
trace, and the rest of the request then runs in the interpreter
(bench/RESULTS.md).  Swapped in once, when this module loads, as
lua-resty-core swaps its FFI functions in under the old names: the
`b64digest` method of every core.hmac_key signer becomes the FFI one, so a
provider's `ctx.crypto.hmac_key(...):b64digest(msg)` is the fastest there is
without knowing of it.  Elsewhere (Lua 5.4, no FFI, a core that cannot be
opened by path) nothing changes.  Either way the bytes are the same: the FFI
paths are taken only if they write what the core's functions write on a
sample, checked here.

  ffi.json_quote(s[, s2])   core.json_quote: one or two strings
  ffi.active                true when the FFI paths are in use
  ffi.c                     the core's own C functions, json_quote and
                            b64digest(signer, msg), to compare against
]]
local core = require "iceservers.core"

-- debug.getmetatable gives the signers' real metatable (getmetatable gives its
-- __metatable field, which any newproxy can copy); its __index holds the
-- methods.  The FFI entry reads any pointer as a signer, so only a userdata
-- with that very metatable may reach it.
local getmt = rawget(_G, "debug") and debug.getmetatable
local SIGNER_MT = getmt and getmt(core.hmac_key("sha1", ""))
local methods = SIGNER_MT and SIGNER_MT.__index
-- The C method, also when a previous load of this module swapped it (busted
-- loads modules afresh per file; the core's metatable stays).
local c_b64digest = SIGNER_MT and (rawget(SIGNER_MT, "c_b64digest") or methods.b64digest)
  or core.hmac_key("sha1", "").b64digest

local M = {
  json_quote = core.json_quote,
  active = false,
  c = { json_quote = core.json_quote, b64digest = c_b64digest },
}

local jit = rawget(_G, "jit")
local searchpath = package.searchpath
if not (jit and searchpath and SIGNER_MT) then return M end
local has_ffi, ffi = pcall(require, "ffi")
local path = has_ffi and searchpath("iceservers.core", package.cpath)
if not path then return M end

local opened, lib = pcall(function()
  -- declared once per process (this module may be loaded again, as busted does)
  pcall(ffi.cdef, [[
    size_t iceservers_ffi_b64digest(const void *signer, const char *msg, size_t n, char *out);
    size_t iceservers_ffi_json_quote(const char *s, size_t n, char *out);
  ]])
  local l = ffi.load(path)
  assert(l.iceservers_ffi_b64digest and l.iceservers_ffi_json_quote)
  return l
end)
if not opened then return M end

local ffi_string, type = ffi.string, type
local c_quote = core.json_quote
local QUOTE_MAX = 160 -- longer strings (rare) go through the core's function
local qbuf = ffi.new("char[?]", 2 + 6 * QUOTE_MAX)
local dbuf = ffi.new("char[?]", 96)

-- Neither quote nor b64digest ends in `return ffi_string(...)`: LuaJIT cannot
-- end a trace that starts at a tail call of a builtin, and a function where
-- that happened often enough is blacklisted, with every trace through it.
local function quote(s)
  if type(s) ~= "string" or #s > QUOTE_MAX then return c_quote(s) end
  local q = ffi_string(qbuf, lib.iceservers_ffi_json_quote(s, #s, qbuf))
  return q
end

local function json_quote(s, s2)
  if s2 ~= nil then return quote(s), quote(s2) end
  return quote(s)
end

-- Anything the FFI entry must not see, and its 0 (a finalized signer), goes
-- to the C method, which raises for it.
local function b64digest(signer, msg)
  if type(msg) ~= "string" or getmt(signer) ~= SIGNER_MT then
    return c_b64digest(signer, msg)
  end
  local n = lib.iceservers_ffi_b64digest(signer, msg, #msg, dbuf)
  if n == 0 then return c_b64digest(signer, msg) end
  local d = ffi_string(dbuf, n)
  return d
end

-- Only if they write what the core's functions write.
local ok = pcall(function()
  local all = {}
  for c = 0, 255 do all[#all + 1] = string.char(c) end
  local sample = table.concat(all, "", 1, 150)
  assert(json_quote(sample) == c_quote(sample))
  local a, b = json_quote("a/b", 'q"')
  assert(a == '"a\\/b"' and b == '"q\\""')
  local signer = core.hmac_key("sha1", "iceservers")
  assert(b64digest(signer, "1800000000:user") == c_b64digest(signer, "1800000000:user"))
end)
if ok then
  rawset(SIGNER_MT, "c_b64digest", c_b64digest)
  methods.b64digest = b64digest
  M.json_quote, M.active = json_quote, true
end

return M
