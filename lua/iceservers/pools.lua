--[[
The TURN host pools of a self-hosted provider (coturn, static): one pool
from its own options (urls, pick, ...), or one per region from its
`regions` option (iceservers.options' type "regions"), with `default_region`
naming the pool of requests with no or an unknown region (without it, the
provider's own urls, when given, are that pool).

  pools.build(opts, decl, make) -> pools  (decl: the provider's options)
      make(fields, label, urls, pick) builds one pool of the provider's kind
      from its fields (a region's, the rest inherited from opts; label(option)
      names an option of it in errors), its URLs (checked, canonical) and its
      pick; raises a one-line config error
  pools.of(p, req)  -> the pool that serves req (its region's, else the default)
  p.names           the region names, sorted (the prober asks for each)

Each pool keeps `urls` (canonical, checked once) and `pick` (how many of its
hosts a user gets; nil: all), which the provider puts on its answer's entry.
]]
local options = require "iceservers.options"
local normalize = require "iceservers.normalize"

local M = {}

-- A pool's URLs (its own or the provider's), checked and canonical.
local function urls_of(fields, opts, label)
  local urls = fields.urls or opts.urls or error(label("urls") .. " is not set", 0)
  return normalize.turn_urls(urls, fields.urls and label("urls") or "TURN_URLS")
end

local function check_pick(v, label)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= math.floor(v) or v < 1 then
    error(("%s must be a whole number of hosts, 1 or more"):format(label), 0)
  end
  return v
end

function M.build(opts, decl, make)
  local p = { by_region = {}, names = {} }
  local env_of = {} -- option -> its variable, for labels
  for k, spec in pairs(decl) do env_of[k] = spec.env end
  local function top_label(option)
    local var = env_of[option]
    return var and ("%s (%s)"):format(option, var) or option
  end
  if opts.regions then
    for region, fields in pairs(opts.regions) do
      local suffix = options.region_suffix(region)
      local function label(option)
        local var = env_of[option]
        return ("regions.%s.%s%s"):format(region, option,
          var and (" (" .. var .. "_" .. suffix .. ")") or "")
      end
      local urls, pick = urls_of(fields, opts, label), check_pick(fields.pick or opts.pick,
        label("pick"))
      local pool = make(fields, label, urls, pick)
      pool.urls, pool.pick = urls, pick
      p.by_region[region] = pool
      p.names[#p.names + 1] = region
    end
    table.sort(p.names)
  end
  local default_region = opts.default_region
  if default_region ~= nil then
    if not opts.regions then
      error(("%s is set but %s is not"):format(top_label("default_region"),
        top_label("regions")), 0)
    end
    if opts.urls then
      error(("set %s or %s, not both: either is the pool of requests with no region")
        :format(top_label("urls"), top_label("default_region")), 0)
    end
    p.default = p.by_region[default_region]
    if not p.default then
      error(("%s '%s' is not one of %s (%s)"):format(top_label("default_region"),
        tostring(default_region):gsub("%c", "?"), top_label("regions"),
        table.concat(p.names, ", ")), 0)
    end
  elseif opts.urls or not opts.regions then
    if not opts.urls then
      error(("needs option 'urls'%s or 'regions'%s"):format(
        env_of.urls and (" (" .. env_of.urls .. ")") or "",
        env_of.regions and (" (" .. env_of.regions .. ")") or ""), 0)
    end
    local urls, pick = urls_of({}, opts, top_label), check_pick(opts.pick, top_label("pick"))
    p.default = make({}, top_label, urls, pick)
    p.default.urls, p.default.pick = urls, pick
  else
    error(("with %s, set %s (or %s): the pool of requests with no or an unknown region")
      :format(top_label("regions"), top_label("default_region"), top_label("urls")), 0)
  end
  return p
end

function M.of(p, req)
  local region = req and req.region
  return region and p.by_region[region] or p.default
end

return M
