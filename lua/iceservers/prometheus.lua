--[[
The metrics in the Prometheus text exposition format 0.0.4, from what the
nginx runtime counts (plain Lua: the specs render it outside nginx too).

  prometheus.text(counters, urls) -> the page
    counters: event -> label -> number, as iceservers.ngx counts them:
      request (label: the status), hit, miss, upstream, failure, stale,
      degraded (label: the provider), upstream_ms (the summed latency),
      upstream_le (label "provider|i": calls that took at most BUCKETS[i])
    urls: url -> { up = bool, rtt_ms =, failures = { reason -> count } }
  prometheus.CONTENT_TYPE, prometheus.BUCKETS
]]
local M = {}

M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
-- upstream latency buckets, seconds
M.BUCKETS = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

local concat, sort, format = table.concat, table.sort, string.format

-- A label value: backslash, double quote and line feed escaped, as the format says.
local function label(v)
  return (tostring(v):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end
M.label = label

local function number(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return format("%d", v) end
  return format("%.15g", v)
end

local function keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  sort(out)
  return out
end

-- One metric family: HELP, TYPE, and its samples ({labels text, value}).
local function family(out, name, kind, help, samples)
  out[#out + 1] = "# HELP " .. name .. " " .. help
  out[#out + 1] = "# TYPE " .. name .. " " .. kind
  for _, s in ipairs(samples) do
    out[#out + 1] = name .. s[1] .. " " .. number(s[2])
  end
end

local function by(counters, event, key)
  local samples = {}
  local per = counters[event] or {}
  for _, l in ipairs(keys(per)) do
    samples[#samples + 1] = { format('{%s="%s"}', key, label(l)), per[l] }
  end
  return samples
end

local COUNTERS = {
  { "hit", "iceservers_cache_hits_total", "Answers served from the cache." },
  { "miss", "iceservers_cache_misses_total", "Requests that found no fresh cached answer." },
  { "failure", "iceservers_provider_failures_total", "Failed provider calls." },
  { "stale", "iceservers_stale_answers_total",
    "Cached answers served while their refresh failed." },
  { "degraded", "iceservers_degraded_answers_total",
    "STUN-only answers served because every provider failed." },
}

local function histogram(out, counters)
  local name = "iceservers_upstream_duration_seconds"
  out[#out + 1] = "# HELP " .. name .. " Provider API calls, by how long they took."
  out[#out + 1] = "# TYPE " .. name .. " histogram"
  local le = counters.upstream_le or {}
  local count, sum = counters.upstream or {}, counters.upstream_ms or {}
  for _, p in ipairs(keys(count)) do
    local cum = 0
    for i, bound in ipairs(M.BUCKETS) do
      cum = cum + (le[p .. "|" .. i] or 0)
      out[#out + 1] = format('%s_bucket{provider="%s",le="%s"} %s', name, label(p),
        number(bound), number(cum))
    end
    out[#out + 1] = format('%s_bucket{provider="%s",le="+Inf"} %s', name, label(p),
      number(count[p]))
    out[#out + 1] = format('%s_sum{provider="%s"} %s', name, label(p),
      number((sum[p] or 0) / 1000))
    out[#out + 1] = format('%s_count{provider="%s"} %s', name, label(p), number(count[p]))
  end
end

function M.text(counters, urls)
  counters, urls = counters or {}, urls or {}
  local out = {}
  family(out, "iceservers_requests_total", "counter", "Endpoint requests, by HTTP status.",
    by(counters, "request", "status"))
  for _, c in ipairs(COUNTERS) do
    family(out, c[2], "counter", c[3], by(counters, c[1], "provider"))
  end
  family(out, "iceservers_upstream_requests_total", "counter", "Provider API calls.",
    by(counters, "upstream", "provider"))
  histogram(out, counters)
  local up, rtt, failed = {}, {}, {}
  for _, u in ipairs(keys(urls)) do
    local s = urls[u]
    local l = format('{url="%s"}', label(u))
    up[#up + 1] = { l, s.up and 1 or 0 }
    if s.rtt_ms then rtt[#rtt + 1] = { l, s.rtt_ms / 1000 } end
    for _, r in ipairs(keys(s.failures)) do
      failed[#failed + 1] = { format('{url="%s",reason="%s"}', label(u), label(r)),
        s.failures[r] }
    end
  end
  family(out, "iceservers_url_up", "gauge",
    "1 when the URL's last probes worked (or it was not probed yet), 0 when it is down.", up)
  family(out, "iceservers_probe_rtt_seconds", "gauge",
    "Round-trip time of the URL's last answered probe.", rtt)
  family(out, "iceservers_probe_failures_total", "counter", "Failed probes, by reason.", failed)
  return concat(out, "\n") .. "\n"
end

return M
