-- Regions in nginx: the example nginx.conf with its geo block switched on
-- (ICESERVERS_REGION_VAR=turn_region) and two regional coturn pools, each
-- with its own secret and its own real coturn.  Requests from 127.0.0.2 and
-- 127.0.0.3 (curl --interface) get their region's URLs; each coturn accepts
-- its region's credentials and refuses the other's; a request from
-- 127.0.0.1 (no region) gets TURN_DEFAULT_REGION's.
local coturn = require "support.coturn"
local nginx = require "support.nginx"
local sh = require "support.sh"
local cjson = require "cjson"

local EXAMPLE = "examples/nginx/nginx.conf"

-- The example with its commented geo block (and nothing else) switched on.
local function with_geo(dir)
  local text = assert(sh.read_file(EXAMPLE))
  local from = text:find("    #geo $turn_region {", 1, true)
  assert(from, "the example nginx.conf has no commented geo block")
  local to = text:find("\n    #}", from, true)
  local block = text:sub(from, to + #"\n    #}" - 1)
  local on = block:gsub("\n    #", "\n    "):gsub("^    #", "    ")
  local path = dir .. "/nginx.conf"
  sh.write_file(path, text:sub(1, from - 1) .. on .. text:sub(to + #"\n    #}"))
  return path, on
end

describe("regional pools in nginx, chosen by the example's geo block #integration", function()
  local eu, us, srv, tmp
  local EU_SECRET, US_SECRET = "eu-secret-" .. os.time(), "us-secret-" .. os.time()

  lazy_setup(function()
    tmp = sh.tmpdir("regions")
    eu = coturn.start{ secrets = { EU_SECRET } }
    us = coturn.start{ secrets = { US_SECRET } }
    local template, block = with_geo(tmp)
    assert.truthy(block:find("127.0.0.2/32   eu;", 1, true), block)
    assert.truthy(block:find("127.0.0.3/32   us;", 1, true), block)
    local function pool(t)
      return ("turn:127.0.0.1:%d?transport=udp,turn:127.0.0.1:%d?transport=tcp")
        :format(t.port, t.port)
    end
    srv = nginx.start{ template = template, env = {
      TURN_PROVIDER = "coturn", STUN_URLS = "", ICESERVERS_REGION_VAR = "turn_region",
      TURN_REGIONS = "eu,us", TURN_DEFAULT_REGION = "eu",
      TURN_URLS_EU = pool(eu), TURN_SECRET_EU = EU_SECRET,
      TURN_URLS_US = pool(us), TURN_SECRET_US = US_SECRET,
    } }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if eu then eu:stop() end
    if us then us:stop() end
    if tmp then sh.rmrf(tmp) end
  end)

  -- The answer to a request from `from` (a loopback address), decoded.
  local function ask(from)
    local ok, out = sh.run_clean(("curl -sS --max-time 10 --interface %s %s")
      :format(from, sh.quote(srv:url("/ice-servers"))))
    assert(ok, out)
    local decoded, doc = pcall(cjson.decode, out)
    assert(decoded, out)
    return doc
  end

  local function port_of(doc)
    assert.are.equal(1, #doc.iceServers, cjson.encode(doc))
    local e = doc.iceServers[1]
    local port = tonumber(e.urls[1]:match(":(%d+)%?"))
    for _, u in ipairs(e.urls) do assert.are.equal(port, tonumber(u:match(":(%d+)%?"))) end
    return port, e
  end

  it("answers each client address with its region's pool, and a real coturn takes them",
    function()
      local eu_port, eu_entry = port_of(ask("127.0.0.2"))
      local us_port, us_entry = port_of(ask("127.0.0.3"))
      assert.are.equal(eu.port, eu_port)
      assert.are.equal(us.port, us_port)
      -- no region (127.0.0.1 is not in the geo block): the default region's
      assert.are.equal(eu.port, (port_of(ask("127.0.0.1"))))
      local results = coturn.allocate_all {
        { port = eu.port, user = eu_entry.username, password = eu_entry.credential },
        { port = us.port, user = us_entry.username, password = us_entry.credential },
        -- each region's secret is its own: eu's credentials on us's coturn fail
        { port = us.port, user = eu_entry.username, password = eu_entry.credential },
      }
      assert(results[1][1], "eu's coturn refused eu's credentials: " .. results[1][2])
      assert(results[2][1], "us's coturn refused us's credentials: " .. results[2][2])
      assert.is_false(results[3][1], "us's coturn took eu's credentials")
      assert.is_true(eu:accepted(eu_entry.username))
      assert.is_true(us:accepted(us_entry.username))
      assert.is_true(us:rejected(eu_entry.username))
    end)
end)
