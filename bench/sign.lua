-- B1: TURN REST credentials per second on one core, one implementation per
-- process.  Every implementation runs the same loop: a username
-- "<expiry>:user-<i>" (a different user id each time) and its password,
-- base64(HMAC-SHA1(secret, username)).
--
--   lua5.4|luajit bench/sign.lua iceservers|luaossl SECONDS
--
-- Prints "rate=<credentials per second> n=<count> check=<password of user-1>".
-- The same loop runs inside nginx for OpenResty's ngx.hmac_sha1 (bench/app.lua).
dofile("bench/paths.lua")

local core = require "iceservers.core"
local common = require "bench.common"

local impl, seconds = arg[1], tonumber(arg[2]) or 1
local SECRET = common.SECRET

local sign
if impl == "iceservers" then
  -- keyed once, and called as the coturn provider calls it (through LuaJIT's
  -- FFI where there is one: iceservers.runtime.ffi swaps it in)
  require "iceservers.runtime.ffi"
  local signer = core.hmac_key("sha1", SECRET)
  sign = function(username) return signer:b64digest(username) end
elseif impl == "luaossl" then
  local hmac = require "openssl.hmac"
  local b64 = require("mime").b64
  sign = function(username) return (b64(hmac.new(SECRET, "sha1"):final(username))) end
else
  error("usage: sign.lua iceservers|luaossl SECONDS")
end

local check = sign(common.EXPIRY .. ":user-1")
assert(check == core.b64encode(core.hmac("sha1", SECRET, common.EXPIRY .. ":user-1")),
  impl .. " computes a wrong password")
print(common.rate_loop(sign, seconds, core.monotonic) .. " check=" .. check)
