-- The Janus proof: Debian's real janus, its nat section's turn_rest_api
-- pointing at the example nginx (examples/nginx/nginx.conf, TURN_PROVIDER=
-- coturn, ICESERVERS_API_KEY), gathers through the TURN server the endpoint
-- named, with the credentials it signed, before it answers an offer to the
-- echotest plugin: its answer SDP must hold a relay candidate that a real
-- coturn allocated.  POST (Janus' default when turn_rest_api_method is unset)
-- and GET; and with a wrong key, no credentials and no relay.
--
-- Janus gathers nothing on loopback (spec/support/janus.lua tells why), so
-- coturn, nginx and Janus run in a network namespace the harness makes
-- (`unshare -n`, or `unshare -rn` when not root); without one this FAILS,
-- on purpose.  Needs Debian's janus and iproute2: `make deps` installs them.
local janus = require "support.janus"

local ENDPOINT_TTL = 86400 -- the coturn provider's default TURN_TTL

local function lines(text, needle)
  local found = {}
  for line in text:gmatch("[^\n]+") do
    if line:find(needle, 1, true) then found[#found + 1] = line end
  end
  return found
end

-- What Janus logged of its TURN REST call (not the request line: it holds the key).
local function rest_lines(log)
  local found = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("TURN REST", 1, true) or line:find("Invalid response", 1, true)
      or line:find("Couldn't", 1, true) then
      found[#found + 1] = line
    end
  end
  return found
end

-- The access log lines of requests to the endpoint (method, status).
local function endpoint_requests(log)
  local list = {}
  for method, status in log:gmatch('"(%u+) /ice%-servers" (%d+)') do
    list[#list + 1] = method .. " " .. status
  end
  return list
end

-- The usernames coturn allocated a relay for.
local function allocations(turn_log)
  local users = {}
  for user in turn_log:gmatch("user <([^>]*)>: incoming packet ALLOCATE processed, success") do
    users[#users + 1] = user
  end
  return users
end

local function of_type(sdp, typ)
  local list = {}
  for _, c in ipairs(janus.candidates(sdp)) do
    if c.type == typ then list[#list + 1] = c end
  end
  return list
end

describe("Janus with turn_rest_api on the example endpoint #integration", function()
  local results, started

  lazy_setup(function()
    started = os.time()
    results = janus.turn_rest{ cases = {
      { name = "post" },                     -- turn_rest_api_method unset: POST
      { name = "get", method = "GET" },
      { name = "wrong key", wrong_key = true },
    } }
  end)

  -- A case that must have gathered a relay through coturn with the
  -- endpoint's credentials, having asked the endpoint with `method`.
  local function assert_relayed(name, method)
    local r = results[name]
    assert(r.answer, ("no answer from Janus (%s): %s\n--- Janus log (end) ---\n%s")
      :format(name, tostring(r.error), r.janus_log:sub(-3000)))
    local context = "\n--- answer ---\n" .. r.answer .. "\n--- Janus' TURN REST lines ---\n"
      .. table.concat(rest_lines(r.janus_log), "\n")

    -- Janus asked the endpoint once, with that method, and the endpoint said yes.
    assert.are.same({ method .. " 200" }, endpoint_requests(r.access_log), r.access_log)
    assert(#lines(r.janus_log, "Got credentials from the TURN REST API backend!") == 1,
      "Janus got no credentials from the endpoint" .. context)
    assert.are.same({}, lines(r.error_log, "[error]"))

    -- The answer holds a relay from coturn's relay address and port window,
    -- allocated for Janus' own host candidate.
    local relays = of_type(r.answer, "relay")
    assert(#relays >= 1, "no typ relay candidate" .. context)
    local relay = results.relay
    for _, c in ipairs(relays) do
      assert.are.equal("udp", c.transport, c.line)
      assert.are.equal(relay.address, c.address, c.line)
      assert(c.port >= relay.min_port and c.port <= relay.max_port,
        ("%s: port outside coturn's %d-%d"):format(c.line, relay.min_port, relay.max_port))
      assert.are.equal(results.host, c.raddr, c.line)
      assert.is_number(c.rport, c.line)
    end

    -- coturn allocated it for the endpoint's username: an expiry one TTL ahead.
    local users = allocations(r.turn_log)
    assert(#users >= 1, "coturn allocated no relay:\n" .. r.turn_log:sub(-2000))
    for _, user in ipairs(users) do
      local expiry = tonumber(user:match("^(%d+)$"))
      assert(expiry, "not an expiry username: " .. user)
      assert(expiry >= started + ENDPOINT_TTL - 5 and expiry <= os.time() + ENDPOINT_TTL + 5,
        "expiry " .. user .. " is not one TTL ahead")
    end
    -- Janus can send the key in the query only; the example's log format
    -- leaves queries out.
    assert.is_false(r.key_in_access_log)
  end

  it("POSTs (turn_rest_api_method unset) and gathers a relay candidate from coturn", function()
    assert_relayed("post", "POST")
  end)

  it("GETs (turn_rest_api_method = GET) and gathers a relay candidate from coturn", function()
    assert_relayed("get", "GET")
  end)

  it("gets no credentials and gathers no relay with a wrong key", function()
    local r = results["wrong key"]
    assert(r.answer, "no answer from Janus: " .. tostring(r.error))
    assert.are.same({ "POST 401" }, endpoint_requests(r.access_log), r.access_log)
    -- Janus ignores the status; it reads the 401's body as a REST answer
    assert.are.equal(1, #lines(r.janus_log, "Invalid response: missing username"))
    assert.are.same({}, lines(r.janus_log, "Got credentials from the TURN REST API backend!"))
    assert.are.same({}, of_type(r.answer, "relay"))
    assert(#of_type(r.answer, "host") >= 1, "no host candidate:\n" .. r.answer)
    assert.are.same({}, allocations(r.turn_log))
  end)
end)
