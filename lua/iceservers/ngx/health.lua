--[[
Health inside nginx: the prober's rounds and what every worker reads of them,
through the shared dict.

  source(dict)          -> {up = function(url) -> false when down, version}:
                           the health source of the workers' brokers (a dict
                           read at most once a second per worker, never a probe)
  start(get_broker, o)  -> in init_worker: a timer every o.health_interval s;
                           one worker per node runs each round (a lock in the
                           dict), probing what get_broker():health_targets()
                           hands out
  urls(dict, failures)  -> url -> {up, rtt_ms, failures}: for the metrics

In the dict: "health|url|<url>" (iceservers.health's state), "health|down"
and "health|urls" (the URLs down and probed, one per line), the failure
counters "metrics|probe_failure|<reason>|<url>", all expiring when no round
writes them again (a URL no provider hands out any more is forgotten).
]]
local health = require "iceservers.health"
local probe = require "iceservers.stun.probe"
local net = require "iceservers.stun.net_ngx"
local core = require "iceservers.core"
local clock = require "iceservers.ngx.clock"

local M = {}

local DOWN, URLS, LOCK, RUNNING = "health|down", "health|urls", "health|lock", "health|running"
local FAILURE = "metrics|probe_failure|"
local concat = table.concat

local function store(dict)
  return {
    get = function(_, key) return dict:get(key) end,
    set = function(_, key, value, ttl) dict:set(key, value, ttl or 0) end,
  }
end

function M.source(dict)
  local at, text, down, version = -1, nil, {}, 0
  local function refresh()
    local now = clock.time()
    if now == at then return end
    at = now
    local t = dict:get(DOWN)
    if t ~= text then
      text, down, version = t, {}, version + 1
      for u in (t or ""):gmatch("[^\n]+") do down[u] = true end
    end
  end
  return {
    version = function()
      refresh()
      return version
    end,
    up = function(url) return not down[url] end,
  }
end

-- How long a round's writes live: a few intervals, at least a minute.
local function keep(o) return math.max(3 * o.health_interval + o.health_timeout, 60) end

-- One round, in the worker that took the lock: probe, record, log each change.
function M.round(broker, o, dict, log)
  local items = broker:health_targets(o.health_providers)
  local results = probe.list(items, { net = net, crypto = core, now = core.monotonic,
    timeout = o.health_timeout, run = net.run })
  local ttl = keep(o)
  local tracker = health.tracker(store(dict), { fall = o.health_fall, rise = o.health_rise,
    keep = ttl })
  local down, urls = {}, {}
  for i, r in ipairs(results) do
    local url = items[i].url
    local s, changed = tracker:record(url, r, clock.time())
    urls[#urls + 1] = url
    if not r.ok then
      -- a counter lives as long as its URL is probed (incr's ttl is only its first)
      local key = FAILURE .. s.reason .. "|" .. url
      dict:incr(key, 1, 0, ttl)
      dict:expire(key, ttl)
    end
    if changed then
      log("warn", s.up and (url .. " up") or (url .. " down: " .. (s.error or s.reason)))
    end
    if not s.up then down[#down + 1] = url end
  end
  dict:set(DOWN, concat(down, "\n"), ttl)
  dict:set(URLS, concat(urls, "\n"), ttl)
  return results
end

function M.start(get_broker, o, dict, log)
  local function tick(premature)
    if premature then return end
    -- one worker per node and interval, and never two rounds at once (one
    -- lasts about a probe's timeout: its probes run together)
    if not dict:add(LOCK, true, math.max(o.health_interval - 0.2, 0.5)) then return end
    if not dict:add(RUNNING, true, o.health_timeout + 5) then return end
    local broker = get_broker()
    local ok, err = true, nil
    if broker then ok, err = pcall(M.round, broker, o, dict, log) end
    dict:delete(RUNNING)
    if not ok then log("error", "health round failed: " .. tostring(err)) end
  end
  local ok, err = ngx.timer.at(0, tick)
  if ok then ok, err = ngx.timer.every(o.health_interval, tick) end
  if not ok then error("iceservers: could not start the health timer: " .. tostring(err), 0) end
  return true
end

-- failures: "<reason>|<url>" -> count, the counters' probe_failure event as
-- the metrics page read them with the others (one walk of the dict's keys).
function M.urls(dict, failures)
  local out = {}
  local tracker = health.tracker(store(dict))
  for url in (dict:get(URLS) or ""):gmatch("[^\n]+") do
    local s = tracker:state(url)
    if s then out[url] = { up = s.up, rtt_ms = s.rtt_ms, failures = {} } end
  end
  for label, n in pairs(failures or {}) do
    local reason, url = label:match("^(%w+)|(.+)$")
    if reason and out[url] then out[url].failures[reason] = n end
  end
  return out
end

return M
