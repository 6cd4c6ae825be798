-- The README documents what the code takes: every top-level config key, every
-- option serve() reads, every variable the example nginx.conf passes to its
-- workers, and every option (and variable) of the built-in providers.  Read
-- from the sources themselves, so a new key cannot go undocumented.
local sh = require "support.sh"

local README = assert(sh.read_file("README.md"))

-- `name` in code, alone or at the start of an assignment (`opts.x = true`).
local function documented(name)
  return README:find("`" .. name:gsub("%p", "%%%0") .. "[` ]") ~= nil
end

local function source(path)
  return assert(sh.read_file(path))
end

local function missing(names)
  local out = {}
  for _, name in ipairs(names) do
    if not documented(name) then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

-- The keys of `local TOP_KEYS = { ... }` in the broker.
local function top_keys()
  local block = source("lua/iceservers/broker.lua"):match("local TOP_KEYS = (%b{})")
  assert(block, "no TOP_KEYS table in broker.lua")
  local out = {}
  for key in block:gmatch("([%a_][%w_]*)%s*=%s*true") do out[#out + 1] = key end
  assert(#out >= 10, "TOP_KEYS looks unparsed")
  return out
end

local function serve_options()
  local seen, out = {}, {}
  for key in source("lua/iceservers/ngx.lua"):gmatch("opts%.([%a_][%w_]*)") do
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = "opts." .. key
    end
  end
  assert(#out >= 5, "serve options look unparsed")
  return out
end

local function example_env()
  local out = {}
  for name in source("examples/nginx/nginx.conf"):gmatch("env%s+([%w_]+);") do
    out[#out + 1] = name
  end
  assert(#out >= 20, "env lines look unparsed")
  return out
end

describe("README", function()
  it("documents every top-level config key", function()
    assert.are.same({}, missing(top_keys()))
  end)

  it("documents every option serve() reads", function()
    local names = serve_options()
    local undocumented = {}
    for _, name in ipairs(names) do
      -- written `opts.key` or as `key` in the serve() list
      if not documented(name) and not documented(name:sub(6)) then
        undocumented[#undocumented + 1] = name
      end
    end
    assert.are.same({}, undocumented)
  end)

  it("documents every variable of the example nginx.conf's env lines", function()
    assert.are.same({}, missing(example_env()))
  end)

  it("documents every option and variable of the built-in providers", function()
    local names = {}
    for _, p in ipairs { "coturn", "static", "metered", "twilio", "cloudflare", "xirsys" } do
      local provider = dofile("lua/iceservers/providers/" .. p .. ".lua")
      for key, spec in pairs(provider.options or {}) do
        names[#names + 1] = key
        if spec.env then names[#names + 1] = spec.env end
      end
    end
    assert.are.same({}, missing(names))
  end)
end)
