-- B2 and B6: broker:get(user) per second, with a different user id each call,
-- for the coturn provider (signs each time) and for a REST provider's cached
-- answer (Metered, whose API is a function returning a canned answer: only the
-- first get calls it).  Then B6's Lua side: the Lua heap after a full
-- collection, before and after CALLS more gets.
--
--   lua5.4|luajit bench/get.lua coturn|rest SECONDS [CALLS]
--
-- Prints "rate=<gets/s> n=<count> kb_before=<KiB> kb_after=<KiB>".
dofile("bench/paths.lua")

local iceservers = require "iceservers"
local core = require "iceservers.core"
local common = require "bench.common"

local which, seconds, calls = arg[1], tonumber(arg[2]) or 1, tonumber(arg[3]) or 0

local config = { stun_urls = common.STUN_URLS, log = function() end }
if which == "coturn" then
  config.providers = "coturn"
  config.coturn = { secret = common.SECRET, urls = common.TURN_URLS }
elseif which == "rest" then
  local upstream_calls = 0
  config.providers = "metered"
  config.metered = { api_url = "https://metered.invalid", api_key = common.METERED_KEY }
  config.http = function()
    upstream_calls = upstream_calls + 1
    assert(upstream_calls == 1, "the cached path called the provider again")
    return { status = 200, headers = { ["content-type"] = "application/json" },
      body = common.METERED_ANSWER }
  end
else
  error("usage: get.lua coturn|rest SECONDS [CALLS]")
end
local broker = iceservers.new(config)

local servers, meta = assert(broker:get("user-0"))
assert(#servers >= 2 and meta.ttl)
assert(meta.provider == (which == "coturn" and "coturn" or "metered"))

local batch = 10000
local function run(n)
  for i = 1, n do
    local s = broker:get("user-" .. i)
    if not s then error("get failed") end
  end
end
run(batch) -- warm up

local n, t0 = 0, core.monotonic()
local elapsed
repeat
  run(batch)
  n = n + batch
  elapsed = core.monotonic() - t0
until elapsed >= seconds

local before, after = 0, 0
if calls > 0 then
  collectgarbage("collect")
  collectgarbage("collect")
  before = collectgarbage("count")
  run(calls)
  collectgarbage("collect")
  collectgarbage("collect")
  after = collectgarbage("count")
end
print(("rate=%.0f n=%d kb_before=%.1f kb_after=%.1f"):format(n / elapsed, n, before, after))
