-- iceservers.stun.net_ngx, the probe's transport inside nginx (cosockets,
-- light threads), run in a real nginx: a content handler written by this spec
-- runs Lua sent by it (with the module's upvalues only: no shared state) and
-- answers the returned table as JSON.  The same loopback servers as
-- spec/net_socket_spec.lua (a LuaSocket process, plus a DNS responder for
-- nginx's resolver), nginx's own TLS server with the test CA, another nginx
-- trusting another CA, and a real coturn with a TLS listener.
local core = require "iceservers.core"
local cjson = require "cjson"
local message = require "iceservers.stun.message"
local nginx = require "support.nginx"
local coturn = require "support.coturn"
local sh = require "support.sh"

local SLOW = sh.SLOW
local T = SLOW and 3 or 1 -- the timeout the timing cases use

local start_servers = require("support.net_servers").start


-- Runs the Lua chunk sent as the body (LuaJIT: loadstring) with `net` (the
-- module), `hex` and `unhex` in its environment; answers {res =} or {raised =}.
local HANDLER = [=[
local cjson = require "cjson"
local net = require "iceservers.stun.net_ngx"
local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end
ngx.req.read_body()
local fn, err = loadstring(ngx.req.get_body_data() or "", "=spec")
if not fn then
  ngx.say(cjson.encode { raised = err })
  return
end
setfenv(fn, setmetatable({ net = net, hex = hex, unhex = unhex, ngx = ngx },
  { __index = _G }))
local ok, res = pcall(fn)
ngx.say(cjson.encode(ok and { res = res } or { raised = tostring(res) }))
]=]

describe("iceservers.stun.net_ngx in nginx", function()
  local srv, web, wrong, dir, other_dir

  lazy_setup(function()
    srv = start_servers()
    dir = sh.tmpdir("netngx")
    sh.write_file(dir .. "/handler.lua", HANDLER)
    local location = ([[ location = /lua { content_by_lua_file %s/handler.lua; } ]]):format(dir)
    web = nginx.start{
      http = ([[
        lua_ssl_trusted_certificate ${ca_file};
        lua_ssl_verify_depth 4;
        resolver 127.0.0.1:%d ipv6=off;
        resolver_timeout 2s;
      ]]):format(srv.dns),
      server = location .. [[ location / { return 200 "hi"; } ]],
    }
    other_dir = sh.tmpdir("otherca")
    nginx.make_ca(other_dir, "another CA")
    wrong = nginx.start{
      tls = false,
      http = ([[ lua_ssl_trusted_certificate %s/ca.crt; ]]):format(other_dir),
      server = location,
    }
  end)

  lazy_teardown(function()
    if srv then
      sh.terminate(srv.pid, 2)
      sh.rmrf(srv.dir)
    end
    if wrong then wrong:stop() end
    if web then web:stop() end
    if dir then sh.rmrf(dir) end
    if other_dir then sh.rmrf(other_dir) end
  end)

  -- Runs code in nginx (default: web) with ${name} from vars; its result.
  local function inside(code, vars, server)
    vars = vars or {}
    code = code:gsub("%${([%w_]+)}", function(k)
      local v = vars[k]
      if v == nil then v = srv[k] end
      if v == nil then v = ({ tls_port = web.tls_port, http_port = web.port })[k] end
      assert(v ~= nil, "no value for ${" .. k .. "}")
      return type(v) == "string" and ("%q"):format(v) or tostring(v)
    end)
    local res, err = core.http_request{ method = "POST", url = (server or web):url("/lua"),
      body = code, timeout = 60 }
    assert(res, err)
    assert.are.equal(200, res.status, res.body)
    local out = cjson.decode(res.body)
    assert(out.raised == nil, out.raised)
    return out.res
  end

  -- An HTTP/1.0 GET through conn, inside nginx: the status line's first bytes.
  local GET = [[
    local function get(c, err)
      if not c then return err end
      assert(c:send("GET / HTTP/1.0\r\nHost: x\r\n\r\n"))
      local head, rerr = c:receive(12)
      c:close()
      return head or rerr
    end
  ]]

  describe("UDP", function()
    it("sends a datagram and receives the answer, twice on one conn", function()
      assert.are.same({ "ping one", ("\0\1\2"):rep(300) }, inside[[
        local c = assert(net.udp("127.0.0.1", ${udp_echo}, { timeout = 5 }))
        assert(c:send("ping one"))
        local a = c:receive()
        assert(c:send(("\0\1\2"):rep(300)))
        local b = c:receive(10)
        c:close()
        return { a, b }
      ]])
    end)

    it("times out, is refused on a closed port, drops datagrams from elsewhere", function()
      local r = inside([[
        local out = {}
        local c = assert(net.udp("127.0.0.1", ${udp_silent}, { timeout = 0.3 }))
        assert(c:send("hello?"))
        ngx.update_time()
        local t0 = ngx.now()
        out.silent = select(2, c:receive())
        ngx.update_time()
        out.took = ngx.now() - t0
        c:close()
        c = assert(net.udp("127.0.0.1", ${closed}, { timeout = 5 }))
        assert(c:send("anyone?"))
        out.closed = select(2, c:receive())
        c:close()
        c = assert(net.udp("127.0.0.1", ${udp_echo}, { timeout = 0.5 }))
        assert(c:send("OTHER"))
        out.other = select(2, c:receive())
        assert(c:send("mine"))
        out.mine = c:receive()
        c:close()
        return out
      ]], { closed = sh.free_port() })
      assert.are.equal("timeout", r.silent)
      assert.is_true(r.took >= 0.29 and r.took < 0.3 + T, r.took)
      assert.are.equal("refused", r.closed)
      assert.are.equal("timeout", r.other)
      assert.are.equal("mine", r.mine)
    end)

    it("resolves names through nginx's resolver, and pins them", function()
      local r = inside[[
        local out = {}
        local c = assert(net.udp("echo.test", ${udp_echo}, { timeout = 5 }))
        assert(c:send("by name"))
        out.named = c:receive()
        c:close()
        local pinned = net.new{ resolve = { ["pinned.invalid:" .. ${udp_echo}] = "127.0.0.1" } }
        c = assert(pinned.udp("pinned.invalid", ${udp_echo}, { timeout = 5 }))
        assert(c:send("pinned"))
        out.pinned = c:receive()
        c:close()
        out.missing = select(2, net.udp("nowhere.invalid", ${udp_echo}, { timeout = 5 }))
        return out
      ]]
      assert.are.equal("by name", r.named)
      assert.are.equal("pinned", r.pinned)
      assert.matches("^resolve: nowhere%.invalid: ", r.missing)
    end)

    it("speaks IPv6 (a closed port on ::1 is refused)", function()
      local text = sh.read_file("/proc/net/if_inet6") or ""
      if not text:find("^0+1 ") and not text:find("\n0+1 ") then
        return pending("no IPv6 loopback here")
      end
      assert.are.same({ "refused", "refused", "refused" }, inside([[
        local out = {}
        for i, host in ipairs { "::1", "[::1]" } do
          local c = assert(net.udp(host, ${closed}, { timeout = 5 }))
          assert(c:send("v6"))
          out[i] = select(2, c:receive())
          c:close()
        end
        out[3] = select(2, net.tcp("::1", ${closed}, { timeout = 5 }))
        return out
      ]], { closed = sh.free_port() }))
    end)
  end)

  describe("TCP", function()
    it("reads exactly n bytes, waits for split ones, and sees the close", function()
      assert.are.same({ "0123", "456789", "SPLIT-in-two-pieces", "closed" }, inside[[
        local c = assert(net.tcp("127.0.0.1", ${tcp_echo}, { timeout = 5 }))
        assert(c:send("0123456789"))
        local out = { c:receive(4), c:receive(6) }
        assert(c:send("SPLIT-in-two-pieces"))
        out[3] = c:receive(19)
        assert(c:send("CLOSE"))
        out[4] = select(2, c:receive(20))
        c:close()
        return out
      ]])
    end)

    it("answers refused, timeout and connect: timed out by their stage", function()
      local r = inside([[
        local out = {}
        out.refused = select(2, net.tcp("127.0.0.1", ${closed}, { timeout = 5 }))
        local c = assert(net.tcp("127.0.0.1", ${tcp_mute}, { timeout = 0.3 }))
        assert(c:send("hello?"))
        out.mute = select(2, c:receive(20))
        c:close()
        ngx.update_time()
        local t0 = ngx.now()
        out.full = select(2, net.tcp("127.0.0.1", ${tcp_full}, { timeout = 0.5 }))
        ngx.update_time()
        out.took = ngx.now() - t0
        out.missing = select(2, net.tcp("nowhere.invalid", ${tcp_echo}, { timeout = 5 }))
        return out
      ]], { closed = sh.free_port() })
      assert.are.equal("refused", r.refused)
      assert.are.equal("timeout", r.mute)
      assert.are.equal("connect: timed out", r.full)
      assert.is_true(r.took >= 0.49 and r.took < 0.5 + T, r.took)
      assert.matches("^resolve: nowhere%.invalid: ", r.missing)
    end)
  end)

  describe("TLS", function()
    it("verifies against lua_ssl_trusted_certificate, by name", function()
      local r = inside(GET .. [[
        local pinned = net.new{ resolve = { ["turn.test:" .. ${tls_port}] = "127.0.0.1" } }
        return {
          name = get(net.tcp("localhost", ${tls_port}, { tls = true })),
          resolver = get(net.tcp("mock.test", ${tls_port}, { tls = true })),
          sni = get(net.tcp("127.0.0.1", ${tls_port}, { tls = true, sni = "mock.test" })),
          other = get(pinned.tcp("turn.test", ${tls_port}, { tls = true })),
          other_sni = get(net.tcp("127.0.0.1", ${tls_port}, { tls = true,
            sni = "other.test" })),
          ip = get(net.tcp("127.0.0.1", ${tls_port}, { tls = true })),
          ip_unverified = get(net.tcp("127.0.0.1", ${tls_port}, { tls = true,
            verify = false })),
          plain = get(net.tcp("127.0.0.1", ${http_port}, { tls = true,
            sni = "localhost" })),
        }
      ]])
      assert.are.equal("HTTP/1.1 200", r.name)
      assert.are.equal("HTTP/1.1 200", r.resolver) -- mock.test from the DNS responder
      assert.are.equal("HTTP/1.1 200", r.sni)
      assert.are.equal("tls: the certificate is not for turn.test", r.other)
      assert.are.equal("tls: the certificate is not for other.test", r.other_sni)
      assert.are.equal("tls: cannot verify a certificate for an IP address inside nginx"
        .. " (give the host name, or sni)", r.ip)
      assert.are.equal("HTTP/1.1 200", r.ip_unverified)
      assert.matches("^tls: ", r.plain)
    end)

    it("refuses a certificate of a CA nginx does not trust, unless verify = false", function()
      local r = inside(GET .. [[
        -- this nginx has no resolver: a pin
        local pinned = net.new{ resolve = { ["localhost:" .. ${tls_port}] = "127.0.0.1" } }
        return {
          verified = get(pinned.tcp("localhost", ${tls_port}, { tls = true })),
          unverified = get(pinned.tcp("localhost", ${tls_port}, { tls = true,
            verify = false })),
          unresolved = get(net.tcp("localhost", ${tls_port}, { tls = true })),
        }
      ]], nil, wrong)
      assert.matches("^tls: certificate verify failed %(.+%)$", r.verified)
      assert.are.equal("HTTP/1.1 200", r.unverified)
      assert.are.equal('resolve: localhost: no resolver defined to resolve "localhost"',
        r.unresolved)
    end)

    it("times out a handshake nobody answers", function()
      assert.are.same({ "tls: handshake timed out" }, inside[[
        return { select(2, net.tcp("localhost", ${tcp_mute}, { tls = true, timeout = 0.5,
          resolve = { ["localhost:" .. ${tcp_mute}] = "127.0.0.1" } })) }
      ]])
    end)
  end)

  describe("net.run", function()
    it("returns each task's result in order", function()
      assert.are.same({ "a", "timeout", "echo" }, inside[[
        return net.run {
          function() return "a" end,
          function()
            local c = assert(net.udp("127.0.0.1", ${udp_silent}, { timeout = 0.2 }))
            assert(c:send("x"))
            return select(2, c:receive())
          end,
          function()
            local c = assert(net.udp("127.0.0.1", ${udp_echo}, { timeout = 5 }))
            assert(c:send("echo"))
            return c:receive()
          end,
        }
      ]])
    end)

    it("runs 100 probes at once: 10 silent ones, and TCP and TLS among them", function()
      local r = inside(GET .. [[
        local tasks, finished = {}, {}
        ngx.update_time()
        local t0 = ngx.now()
        local function udp(port, i)
          local c = assert(net.udp("127.0.0.1", port, { timeout = ${T} }))
          assert(c:send("probe " .. i))
          local answer, err = c:receive()
          c:close()
          return answer or err
        end
        for i = 1, 100 do
          tasks[i] = function()
            local r
            if i <= 10 then r = udp(${udp_silent}, i)
            elseif i <= 13 then r = select(2, net.tcp("127.0.0.1", ${tcp_full}, { timeout = ${T} }))
            elseif i <= 16 then r = get(net.tcp("localhost", ${tls_port}, { tls = true,
              timeout = ${T} }))
            else r = udp(${udp_echo}, i) end
            ngx.update_time()
            finished[i] = ngx.now() - t0
            return r
          end
        end
        local results = net.run(tasks)
        ngx.update_time()
        return { results = results, finished = finished, took = ngx.now() - t0 }
      ]], { T = T })
      for i = 1, 100 do
        local want = i <= 10 and "timeout" or i <= 13 and "connect: timed out"
          or i <= 16 and "HTTP/1.1 200" or ("probe " .. i)
        assert.are.equal(want, r.results[i])
        if i > 13 then assert.is_true(r.finished[i] < T, r.finished[i]) end
      end
      assert.is_true(r.took >= T * 0.99 and r.took < 1.5 * T, r.took)
    end)

    it("raises a task's error, and for tasks that are not functions", function()
      local r = inside[[
        local out = {}
        out[1] = select(2, pcall(net.run, { function() error("boom") end }))
        out[2] = select(2, pcall(net.run, { 42 }))
        out[3] = #net.run({})
        return out
      ]]
      assert.matches("net.run: task 1 failed: .*boom", r[1])
      assert.matches("net.run: task 1 is not a function", r[2])
      assert.are.equal(0, r[3])
    end)
  end)

  describe("against coturn's UDP, TCP and TLS listeners", function()
    local turn, stun

    lazy_setup(function()
      turn = coturn.start{ secrets = { "net-ngx-spec" }, tls = true }
      stun = message.new(core)
    end)

    lazy_teardown(function()
      if turn then turn:stop() end
    end)

    it("gets a Binding success over UDP, TCP and TLS", function()
      local tid = stun.new_tid()
      local request = stun.encode({ method = "binding", class = "request", tid = tid },
        { fingerprint = true })
      local r = inside([[
        local request = unhex(${request})
        local function stream(c)
          assert(c:send(request))
          local head = assert(c:receive(20))
          local n = head:byte(3) * 256 + head:byte(4)
          local answer = head .. assert(c:receive(n))
          c:close()
          return hex(answer)
        end
        local pin = { ["turn.test:" .. ${tls_port}] = "127.0.0.1" }
        local c = assert(net.udp("127.0.0.1", ${port}, { timeout = 5 }))
        assert(c:send(request))
        local out = { hex(assert(c:receive())) }
        c:close()
        out[2] = stream(assert(net.tcp("127.0.0.1", ${port}, { timeout = 5 })))
        out[3] = stream(assert(net.tcp("localhost", ${tls_port}, { timeout = 10, tls = true,
          resolve = { ["localhost:" .. ${tls_port}] = "127.0.0.1" } })))
        out[4] = select(2, net.tcp("turn.test", ${tls_port}, { timeout = 10, tls = true,
          resolve = pin }))
        return out
      ]], { request = core.hex(request), port = turn.port, tls_port = turn.tls_port })
      for i = 1, 3 do
        local bytes = r[i]:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
        local msg = assert(message.decode(bytes))
        assert.are.equal(tid, msg.tid)
        assert.are.equal("success", msg.class)
        assert.is_true(stun.check_fingerprint(bytes, msg))
        assert.are.equal("127.0.0.1", msg.attrs.xor_mapped_address.ip)
      end
      -- (with Debian's lua-resty-core 0.1.25, a handshake that completes at
      -- once loses nginx's reason: "untrusted, or not for turn.test")
      assert.matches("^tls: .*not for turn%.test%)?$", r[4])
    end)
  end)

  it("raises for a caller's mistakes", function()
    local r = inside[[
      return {
        select(2, pcall(net.udp, nil, 3478)),
        select(2, pcall(net.tcp, "127.0.0.1", 0)),
        select(2, pcall(net.udp, "127.0.0.1", 3478, "fast")),
      }
    ]]
    assert.matches("net: host must be a string", r[1])
    assert.matches("net: port must be an integer 1%-65535", r[2])
    assert.matches("net: opts must be a table", r[3])
  end)
end)
