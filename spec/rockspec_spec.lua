-- The rockspec installs offline with `luarocks make`, for each Lua ABI, and the
-- installed tree (not this checkout) provides the modules.
local sh = require "support.sh"

local function install(lua_version, interpreter)
  local work = sh.tmpdir()
  local tree = work .. "/tree"
  -- A copy of the tracked sources, so the build litters nothing here.
  assert(sh.run_clean("tar --exclude=./build --exclude=./.git -cf - . | tar -C "
    .. sh.quote(work) .. " -xf - && mkdir -p " .. sh.quote(work .. "/src")))
  local ok, out = sh.run_clean("cd " .. sh.quote(work) .. " && luarocks --lua-version "
    .. lua_version .. " make --deps-mode=none --tree " .. sh.quote(tree)
    .. " rockspec/iceservers-scm-1.rockspec")
  assert(ok, out)
  -- The tree first, then the system's paths (lua-cjson comes from Debian).
  local probe = ("package.path=%q..package.path; package.cpath=%q..package.cpath; "
    .. "local c = require 'iceservers.core'; assert(require('iceservers').new{}:get()); "
    .. "print(c.version.module, package.searchpath('iceservers.core', package.cpath))"):format(
      tree .. "/share/lua/" .. lua_version .. "/?.lua;" .. tree .. "/share/lua/" .. lua_version
        .. "/?/init.lua;",
      tree .. "/lib/lua/" .. lua_version .. "/?.so;")
  local ran, got = sh.run_clean("cd / && " .. interpreter .. " -e " .. sh.quote(probe))
  -- The installed wrapper, with the tree's paths as `luarocks path` gives them.
  local cli_ok, cli_out = sh.run_clean("cd / && env -i PATH=/usr/bin:/bin sh -c "
    .. sh.quote("eval \"$(luarocks --lua-version " .. lua_version .. " path --tree "
      .. sh.quote(tree) .. ")\" && " .. sh.quote(tree .. "/bin/iceservers")))
  sh.rmrf(work)
  if ran and not cli_ok then return false, "installed CLI: " .. cli_out, tree end
  return ran, got .. cli_out, tree
end

describe("rockspec/iceservers-scm-1.rockspec", function()
  it("lists every Lua module under lua/", function()
    local text = assert(sh.read_file("rockspec/iceservers-scm-1.rockspec"))
    local ok, files = sh.run_clean("cd lua && find . -name '*.lua' | sort")
    assert(ok, files)
    local count = 0
    for path in files:gmatch("%./([^\n]+)") do
      count = count + 1
      assert.truthy(text:find('"lua/' .. path .. '"', 1, true), path .. " is not in the rockspec")
    end
    assert.truthy(count >= 10)
  end)

  it("lists every C source under src/ for iceservers.core, and no other", function()
    local text = assert(sh.read_file("rockspec/iceservers-scm-1.rockspec"))
    local ok, files = sh.run_clean("cd src && ls *.c")
    assert(ok, files)
    local here, count = {}, 0
    for name in files:gmatch("[^\n]+") do
      here[name], count = true, count + 1
      assert.truthy(text:find('"src/' .. name .. '"', 1, true), name .. " is not in the rockspec")
    end
    for name in text:gmatch('"src/([^"]+%.c)"') do
      assert.truthy(here[name], "the rockspec lists src/" .. name .. ", which does not exist")
    end
    assert.truthy(count >= 5)
  end)

  it("installs offline for Lua 5.4 and the tree requires iceservers.core", function()
    local ok, out, tree = install("5.4", "lua5.4")
    assert(ok, out)
    assert.matches("^%d+%.%d+%.%d+", out)
    assert.truthy(out:find(tree .. "/lib/lua/5.4/iceservers/core.so", 1, true), out)
    assert.truthy(out:find('{"iceServers":[{"urls":["stun:', 1, true), out)
  end)

  it("installs offline for Lua 5.1 and the tree loads in LuaJIT", function()
    local ok, out, tree = install("5.1", "luajit")
    assert(ok, out)
    assert.matches("^%d+%.%d+%.%d+", out)
    assert.truthy(out:find(tree .. "/lib/lua/5.1/iceservers/core.so", 1, true), out)
    assert.truthy(out:find('{"iceServers":[{"urls":["stun:', 1, true), out)
  end)
end)
