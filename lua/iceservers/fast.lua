--[[
The two calls into the C core that the nginx endpoint makes on every request
(a credential's base64 HMAC, and JSON string quoting), through LuaJIT's FFI
where it can: a compiled trace calls a Lua C function only by leaving the
trace, and the rest of the request then runs in the interpreter
(bench/RESULTS.md).  Elsewhere, or if the core library cannot be opened by
path, these are the core's own functions; both give the same bytes (checked
when this module loads).

  fast.b64digest(signer, msg)   signer:b64digest(msg), for a core.hmac_key signer
                                (anything else raises, as the method does)
  fast.json_quote(s[, s2])      core.json_quote(s[, s2]): one or two strings
  fast.ffi                      true when the FFI paths are in use
]]
local core = require "iceservers.core"

-- The signer's own C method: it checks its self argument, where a method
-- call on a lookalike would call whatever that object's b64digest is.
local signer_b64digest = core.hmac_key("sha1", "").b64digest

local M = {
  b64digest = signer_b64digest,
  json_quote = core.json_quote,
  ffi = false,
}

local jit = rawget(_G, "jit")
local searchpath = package.searchpath
-- The FFI entry reads any pointer as a signer, so only a userdata with the
-- signer's real metatable may reach it.  getmetatable gives the __metatable
-- field, which any newproxy can copy; debug.getmetatable (compiled by LuaJIT)
-- gives the table itself, which only core.hmac_key sets.
local getmt = rawget(_G, "debug") and debug.getmetatable
if not (jit and searchpath and getmt) then return M end
local SIGNER_MT = getmt(core.hmac_key("sha1", ""))
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
local QUOTE_MAX = 160 -- longer strings (rare) go through the core's function
local qbuf = ffi.new("char[?]", 2 + 6 * QUOTE_MAX)
local dbuf = ffi.new("char[?]", 96)

local function quote(s)
  if type(s) ~= "string" or #s > QUOTE_MAX then return core.json_quote(s) end
  return ffi_string(qbuf, lib.iceservers_ffi_json_quote(s, #s, qbuf))
end

local function json_quote(s, s2)
  if s2 ~= nil then return quote(s), quote(s2) end
  return quote(s)
end

-- Anything the FFI entry must not see, and its 0 (a finalized signer), goes
-- to the method, which raises for it.
local function b64digest(signer, msg)
  if type(msg) ~= "string" or getmt(signer) ~= SIGNER_MT then
    return signer_b64digest(signer, msg)
  end
  local n = lib.iceservers_ffi_b64digest(signer, msg, #msg, dbuf)
  if n == 0 then return signer_b64digest(signer, msg) end
  return ffi_string(dbuf, n)
end

-- Only if they write what the core's functions write.
local ok = pcall(function()
  local all = {}
  for c = 0, 255 do all[#all + 1] = string.char(c) end
  local sample = table.concat(all, "", 1, 150)
  assert(json_quote(sample) == core.json_quote(sample))
  local a, b = json_quote("a/b", 'q"')
  assert(a == '"a\\/b"' and b == '"q\\""')
  local signer = core.hmac_key("sha1", "iceservers")
  assert(b64digest(signer, "1800000000:user") == signer:b64digest("1800000000:user"))
end)
if ok then
  M.b64digest, M.json_quote, M.ffi = b64digest, json_quote, true
end

return M
