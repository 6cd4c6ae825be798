-- The docs (README.md and docs/*.md) document what the code takes: every
-- top-level setting and serve() option with its variable, as the code
-- declares them (iceservers.settings, iceservers.ngx.settings, the tables
-- scripts/doc-tables.lua prints), every variable the example nginx.conf
-- passes to its workers, and every option (and variable) of the built-in
-- providers.  Read from the declarations themselves, so a new key cannot go
-- undocumented.
local sh = require "support.sh"
local settings = require "iceservers.settings"
local serve = require "iceservers.ngx.settings"

local function read(path) return assert(sh.read_file(path)) end

local DOCS = (function()
  local texts = { read("README.md") }
  local ok, files = sh.run_clean("ls docs/*.md")
  assert(ok, files)
  for path in files:gmatch("[^\n]+") do texts[#texts + 1] = read(path) end
  return table.concat(texts, "\n")
end)()

-- `name` in the docs, alone or at the start of an assignment (`opts.x = true`).
local function documented(name)
  return DOCS:find("`" .. name:gsub("%p", "%%%0") .. "[` ]") ~= nil
end

local function missing(names)
  local out = {}
  for _, name in ipairs(names) do
    if not documented(name) then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

-- Each declaration's name and variable.
local function names_of(list, prefix)
  local out = {}
  for _, s in ipairs(list) do
    out[#out + 1] = (prefix or "") .. s.name
    if s.env then out[#out + 1] = s.env end
  end
  assert(#out >= #list and #list >= 5, "declarations look unread")
  return out
end

local function example_env()
  local out = {}
  for name in read("examples/nginx/nginx.conf"):gmatch("env%s+([%w_]+);") do
    out[#out + 1] = name
  end
  assert(#out >= 20, "env lines look unparsed")
  return out
end

describe("the docs", function()
  it("document every top-level setting and its variable", function()
    assert.are.same({}, missing(names_of(settings.LIST)))
  end)

  it("document every option of serve() and its variable", function()
    local undocumented = {}
    for _, name in ipairs(names_of(serve.LIST)) do
      -- written `opts.key`, or `key` in a table of the options
      if not documented("opts." .. name) and not documented(name) then
        undocumented[#undocumented + 1] = name
      end
    end
    assert.are.same({}, undocumented)
  end)

  it("document every variable of the example nginx.conf's env lines", function()
    assert.are.same({}, missing(example_env()))
  end)

  it("document every option and variable of the built-in providers", function()
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

  -- nginx hands its workers only the variables listed with `env`: a
  -- variable the workers read but the example does not list would be unset
  -- there however the operator set it.
  it("the example nginx.conf passes every variable the workers read", function()
    local listed, unlisted = {}, {}
    for _, name in ipairs(example_env()) do listed[name] = true end
    local names = {}
    for _, list in ipairs { settings.LIST, serve.LIST } do
      for _, s in ipairs(list) do names[#names + 1] = s.env end
    end
    for _, p in ipairs { "coturn", "static", "metered", "twilio", "cloudflare", "xirsys" } do
      for _, spec in pairs(dofile("lua/iceservers/providers/" .. p .. ".lua").options or {}) do
        names[#names + 1] = spec.env
      end
    end
    for _, name in ipairs(names) do
      if not listed[name] then unlisted[#unlisted + 1] = name end
    end
    table.sort(unlisted)
    assert.are.same({}, unlisted)
  end)

  it("document every key of the provider contract in docs/providers.md", function()
    local guide = read("docs/providers.md")
    local undocumented = {}
    for key in pairs(require("iceservers.contract").KEYS) do
      if not guide:find("`" .. key .. "`", 1, true) then undocumented[#undocumented + 1] = key end
    end
    table.sort(undocumented)
    assert.are.same({}, undocumented)
  end)
end)

describe("scripts/doc-tables.lua", function()
  local tables = assert(loadfile("scripts/doc-tables.lua"))("doc-tables")

  it("prints a row per declaration, with its key and variable", function()
    for _, case in ipairs { { tables.settings(), settings.LIST },
        { tables.serve(), serve.LIST } } do
      local text, list = case[1], case[2]
      for _, s in ipairs(list) do
        local row = "| `" .. s.name .. "` | " .. (s.env and ("`" .. s.env .. "`") or "") .. " |"
        assert.truthy(text:find(row, 1, true), row)
      end
    end
    assert.matches("| `coturn` | `secret` | `TURN_SECRET` | string, secret |",
      tables.providers(), 1, true)
  end)

  it("runs as a script", function()
    local interp = rawget(_G, "jit") and "luajit" or "lua5.4"
    local ok, out = sh.run(interp .. " scripts/doc-tables.lua settings")
    assert(ok, out)
    assert.matches("| `cache_ttl` | `ICESERVERS_CACHE_TTL` |", out, 1, true)
  end)
end)
