-- luacheck: globals ngx
--[[
Where the guard's counters and revocations live (iceservers.ngx.guard):

  stores.dict(dict)   the node's lua_shared_dict (every worker of the node)
  stores.redis(o)     a Redis server (every node), through Debian's
                      lua-nginx-redis (`require "nginx.redis"`): o.redis
                      "host:port", o.redis_password, o.redis_timeout
                      (seconds, for connect, send and read), pooled
                      connections

Each store: store:incr(key, window) -> count[, seconds left]; store:ttl(key)
-> seconds left (asked when incr gave none); store:set(key,
value, seconds); store:get(key) -> value or nil; store:delete(key);
store:keys(prefix) -> keys.  A Redis store returns nil, err when the server
does not answer in time; the guard then applies ICESERVERS_REDIS_FAIL.
Redis has no TLS here: keep it on a private network.
]]
local M = {}

local Dict = {}
Dict.__index = Dict

function M.dict(dict) return setmetatable({ dict = dict }, Dict) end

-- incr with init_ttl creates the counter with its window as lifetime: one
-- step.  The seconds left are not read here: the guard asks ttl only for a
-- count over its limit, so a request under it costs one dict operation.
function Dict:incr(key, window)
  return (self.dict:incr(key, 1, 0, window))
end

function Dict:ttl(key) return tonumber((self.dict:ttl(key))) end

function Dict:set(key, value, seconds) return self.dict:set(key, value, seconds) end
function Dict:get(key) return self.dict:get(key) end
function Dict:delete(key) self.dict:delete(key) end

function Dict:keys(prefix)
  local out = {}
  for _, k in ipairs(self.dict:get_keys(0)) do
    if k:sub(1, #prefix) == prefix then out[#out + 1] = k end
  end
  return out
end

local Redis = {}
Redis.__index = Redis

local PREFIX = "iceservers:"
local POOL_IDLE_MS, POOL_SIZE = 30000, 64
-- INCR and EXPIRE in one step (a script runs atomically): a window starts at
-- a key's first request, and a key never outlives it.
local INCR = [[
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('TTL', KEYS[1])
if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return { n, t }
]]
local KEYS = [[return redis.call('KEYS', ARGV[1])]]

function M.redis(o)
  local host, port = o.redis:match("^%[?([^%]]+)%]?:(%d+)$")
  if not host then error("ICESERVERS_REDIS must be host:port", 0) end
  return setmetatable({ host = host, port = tonumber(port), password = o.redis_password,
    timeout_ms = math.floor((o.redis_timeout or 0.2) * 1000) }, Redis)
end

-- One command on a pooled connection; the connection goes back to the pool
-- only after a complete answer.
function Redis:call(cmd, ...)
  local red = require("nginx.redis"):new()
  red:set_timeout(self.timeout_ms)
  local ok, err = red:connect(self.host, self.port)
  if not ok then return nil, "redis: " .. tostring(err) end
  if self.password and red:get_reused_times() == 0 then
    ok = red:auth(self.password)
    if not ok then
      red:close()
      return nil, "redis: auth failed"
    end
  end
  local res
  res, err = red[cmd](red, ...)
  if res == nil then
    red:close()
    return nil, "redis: " .. tostring(err)
  end
  red:set_keepalive(POOL_IDLE_MS, POOL_SIZE)
  return res
end

function Redis:incr(key, window)
  local res, err = self:call("eval", INCR, 1, PREFIX .. key, window)
  if not res then return nil, err end
  return tonumber(res[1]), tonumber(res[2])
end

function Redis:set(key, value, seconds)
  return self:call("set", PREFIX .. key, value, "EX", math.max(1, math.ceil(seconds)))
end

function Redis:get(key)
  local v, err = self:call("get", PREFIX .. key)
  if v == nil then return nil, err end
  if v == ngx.null then return nil end
  return tonumber(v) or v
end

function Redis:delete(key) return self:call("del", PREFIX .. key) end

function Redis:keys(prefix)
  local res, err = self:call("eval", KEYS, 0, PREFIX .. prefix .. "*")
  if not res then return nil, err end
  local out = {}
  for i, k in ipairs(res) do out[i] = k:sub(#PREFIX + 1) end
  return out
end

return M
