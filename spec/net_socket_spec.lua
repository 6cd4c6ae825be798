-- iceservers.stun.net_socket, the probe's transport for plain Lua and the CLI
-- (LuaSocket, LuaSec and core.x509_check_host), against real loopback
-- servers: a LuaSocket process (UDP echo and silent ports, a TCP echo, a TCP
-- listener that never answers and one whose accept queue is full), a real
-- nginx with the test CA for TLS, and a real coturn with a TLS listener.
-- Errors must start with the contract's stage words (resolve, connect, tls,
-- timeout, refused, closed), and net.run must wait for all its tasks at once.
local core = require "iceservers.core"
local net = require "iceservers.stun.net_socket"
local message = require "iceservers.stun.message"
local nginx = require "support.nginx"
local coturn = require "support.coturn"
local sh = require "support.sh"

local SLOW = sh.SLOW -- TLS above all is slower under valgrind or ASan
local T = SLOW and 3 or 1 -- the timeout the timing cases use

local start_servers = require("support.net_servers").start

local function has_ipv6_loopback()
  local text = sh.read_file("/proc/net/if_inet6") or ""
  return text:find("^0+1 ") ~= nil or text:find("\n0+1 ") ~= nil
end

-- The seconds fn takes, and its results.
local function timed(fn, ...)
  local t0 = sh.now()
  local r = { fn(...) }
  return sh.now() - t0, r
end

describe("iceservers.stun.net_socket", function()
  local srv, web, other_dir, other_ca

  lazy_setup(function()
    srv = start_servers()
    web = nginx.start{ server = [[ location / { return 200 "hi"; } ]] }
    other_dir = sh.tmpdir("otherca")
    other_ca = nginx.make_ca(other_dir, "another CA")
  end)

  lazy_teardown(function()
    if srv then
      sh.terminate(srv.pid, 2)
      sh.rmrf(srv.dir)
    end
    if web then web:stop() end
    if other_dir then sh.rmrf(other_dir) end
  end)

  -- An HTTP/1.0 GET through conn: the status line's first 12 bytes.
  local function get(conn)
    assert(conn:send("GET / HTTP/1.0\r\nHost: x\r\n\r\n"))
    local head, err = conn:receive(12)
    conn:close()
    return head, err
  end

  describe("UDP", function()
    it("sends a datagram and receives the answer, twice on one conn", function()
      local c = assert(net.udp("127.0.0.1", srv.udp_echo, { timeout = 5 }))
      assert.are.equal(true, c:send("ping one"))
      assert.are.equal("ping one", c:receive())
      assert.are.equal(true, c:send(("\0\1\2"):rep(300)))
      assert.are.equal(("\0\1\2"):rep(300), c:receive(10)) -- n ignored: one datagram
      c:close()
    end)

    it("times out on a server that never answers, after the conn's timeout", function()
      local c = assert(net.udp("127.0.0.1", srv.udp_silent, { timeout = 0.3 }))
      assert(c:send("hello?"))
      local took, r = timed(c.receive, c)
      assert.are.same({ nil, "timeout" }, r)
      assert.is_true(took >= 0.29 and took < 0.3 + T, took)
      c:settimeout(0.1) -- the next receive's timeout
      took, r = timed(c.receive, c)
      assert.are.same({ nil, "timeout" }, r)
      assert.is_true(took >= 0.09 and took < 0.1 + T, took)
      c:close()
    end)

    it("answers refused for a closed port (ICMP port unreachable)", function()
      local c = assert(net.udp("127.0.0.1", sh.free_port(), { timeout = 5 }))
      assert(c:send("anyone?"))
      local took, r = timed(c.receive, c)
      assert.are.same({ nil, "refused" }, r)
      assert.is_true(took < T + 1, took)
      c:close()
    end)

    it("takes no datagram from another address than the server's", function()
      local c = assert(net.udp("127.0.0.1", srv.udp_echo, { timeout = 0.5 }))
      assert(c:send("OTHER")) -- answered from the silent port
      assert.are.same({ nil, "timeout" }, { c:receive() })
      assert(c:send("mine"))
      assert.are.equal("mine", c:receive())
      c:close()
    end)

    it("resolves names, and pins them as ICESERVERS_RESOLVE does", function()
      local c = assert(net.udp("localhost", srv.udp_echo, { timeout = 5 }))
      assert(c:send("by name"))
      assert.are.equal("by name", c:receive())
      c:close()
      local pinned = net.new{ resolve = { ["echo.test:" .. srv.udp_echo] = "127.0.0.1" } }
      c = assert(pinned.udp("echo.test", srv.udp_echo, { timeout = 5 }))
      assert(c:send("pinned"))
      assert.are.equal("pinned", c:receive())
      c:close()
      local ok, err = net.udp("nowhere.invalid", srv.udp_echo, { timeout = 1 })
      assert.is_nil(ok)
      assert.matches("^resolve: nowhere%.invalid: ", err)
    end)

    it("speaks IPv6 (a closed port on ::1 is refused)", function()
      if not has_ipv6_loopback() then return pending("no IPv6 loopback here") end
      for _, host in ipairs { "::1", "[::1]" } do
        local c = assert(net.udp(host, sh.free_port(), { timeout = 5 }))
        assert(c:send("v6"))
        assert.are.same({ nil, "refused" }, { c:receive() })
        c:close()
      end
      assert.are.same({ nil, "refused" }, { net.tcp("::1", sh.free_port(), { timeout = 5 }) })
    end)
  end)

  describe("TCP", function()
    it("reads exactly n bytes from the stream", function()
      local c = assert(net.tcp("127.0.0.1", srv.tcp_echo, { timeout = 5 }))
      assert(c:send("0123456789"))
      assert.are.equal("0123", c:receive(4))
      assert.are.equal("456789", c:receive(6))
      assert(c:send("SPLIT-in-two-pieces")) -- 3 bytes, 0.2 s, the rest
      assert.are.equal("SPLIT-in-two-pieces", c:receive(#"SPLIT-in-two-pieces"))
      c:close()
    end)

    it("answers refused for a closed port", function()
      local took, r = timed(net.tcp, "127.0.0.1", sh.free_port(), { timeout = 5 })
      assert.are.same({ nil, "refused" }, r)
      assert.is_true(took < T + 1, took)
    end)

    it("times out a receive from a server that never answers", function()
      local c = assert(net.tcp("127.0.0.1", srv.tcp_mute, { timeout = 0.3 }))
      assert(c:send("hello?"))
      local took, r = timed(c.receive, c, 20)
      assert.are.same({ nil, "timeout" }, r)
      assert.is_true(took >= 0.29 and took < 0.3 + T, took)
      c:close()
    end)

    it("times out a connect that gets no answer (a full accept queue)", function()
      local took, r = timed(net.tcp, "127.0.0.1", srv.tcp_full, { timeout = 0.5 })
      assert.are.same({ nil, "connect: timed out" }, r)
      assert.is_true(took >= 0.49 and took < 0.5 + T, took)
    end)

    it("answers closed when the server closes the connection", function()
      local c = assert(net.tcp("127.0.0.1", srv.tcp_echo, { timeout = 5 }))
      assert(c:send("CLOSE"))
      assert.are.same({ nil, "closed" }, { c:receive(20) })
      c:close()
    end)

    it("resolves names (a name that does not resolve is a resolve error)", function()
      local c = assert(net.tcp("localhost", srv.tcp_echo, { timeout = 5 }))
      assert(c:send("x"))
      assert.are.equal("x", c:receive(1))
      c:close()
      local ok, err = net.tcp("nowhere.invalid", srv.tcp_echo, { timeout = 1 })
      assert.is_nil(ok)
      assert.matches("^resolve: nowhere%.invalid: ", err)
    end)
  end)

  describe("TLS", function()
    local function tls(host, opts)
      opts.tls = true
      opts.timeout = opts.timeout or 10
      return net.tcp(host, opts.port or web.tls_port, opts)
    end

    it("connects to a certificate of the trusted CA for the right name", function()
      assert.are.equal("HTTP/1.1 200", get(assert(tls("localhost", { cafile = web.ca_file }))))
      -- an IP literal is checked against the certificate's IP addresses (no SNI)
      assert.are.equal("HTTP/1.1 200", get(assert(tls("127.0.0.1", { cafile = web.ca_file }))))
      -- sni names the server, and the certificate must be for it
      assert.are.equal("HTTP/1.1 200",
        get(assert(tls("127.0.0.1", { sni = "mock.test", cafile = web.ca_file }))))
      local pinned = net.new{ resolve = { ["turn.test:" .. web.tls_port] = "127.0.0.1" } }
      assert.are.equal("HTTP/1.1 200", get(assert(pinned.tcp("turn.test", web.tls_port,
        { tls = true, sni = "mock.test", cafile = web.ca_file, timeout = 10 }))))
    end)

    it("refuses a certificate for another name (LuaSec alone would accept it)", function()
      local ok, err = tls("127.0.0.1", { sni = "other.test", cafile = web.ca_file })
      assert.is_nil(ok)
      assert.are.equal("tls: the certificate is not for other.test", err)
      local pinned = net.new{ resolve = { ["other.test:" .. web.tls_port] = "127.0.0.1" } }
      ok, err = pinned.tcp("other.test", web.tls_port,
        { tls = true, cafile = web.ca_file, timeout = 10 })
      assert.is_nil(ok)
      assert.are.equal("tls: the certificate is not for other.test", err)
    end)

    it("refuses a certificate of an unknown CA, saying why", function()
      local ok, err = tls("localhost", { cafile = other_ca })
      assert.is_nil(ok)
      assert.are.equal("tls: certificate verify failed (unable to get local issuer certificate)",
        err)
      -- without cafile, the system store: it does not hold the test CA either
      ok, err = tls("localhost", {})
      assert.is_nil(ok)
      assert.matches("^tls: certificate verify failed", err)
    end)

    it("fails at the TLS stage for a CA file it cannot read", function()
      local ok, err = tls("localhost", { cafile = "/nonexistent/ca.pem" })
      assert.is_nil(ok)
      assert.are.equal("tls: cannot read the CA file: /nonexistent/ca.pem: "
        .. "No such file or directory", err)
      assert.is_nil(err:find("\n", 1, true))
    end)

    it("accepts any certificate with verify = false", function()
      assert.are.equal("HTTP/1.1 200", get(assert(tls("localhost", { cafile = other_ca,
        verify = false }))))
      assert.are.equal("HTTP/1.1 200", get(assert(tls("127.0.0.1", { sni = "other.test",
        verify = false }))))
    end)

    it("fails at the TLS stage against a server that does not speak TLS", function()
      local ok, err = tls("127.0.0.1", { port = web.port, cafile = web.ca_file })
      assert.is_nil(ok)
      assert.matches("^tls: ", err)
      local took, r = timed(tls, "127.0.0.1", { port = srv.tcp_mute, cafile = web.ca_file,
        timeout = 0.5 })
      assert.are.same({ nil, "tls: handshake timed out" }, r)
      assert.is_true(took >= 0.49 and took < 0.5 + T, took)
    end)
  end)

  describe("net.run", function()
    it("returns each task's result in order", function()
      local results = net.run {
        function() return "a" end,
        function()
          local c = assert(net.udp("127.0.0.1", srv.udp_silent, { timeout = 0.2 }))
          assert(c:send("x"))
          local _, err = c:receive()
          c:close()
          return err
        end,
        function()
          local c = assert(net.udp("127.0.0.1", srv.udp_echo, { timeout = 5 }))
          assert(c:send("echo"))
          local data = c:receive()
          c:close()
          return data
        end,
      }
      assert.are.same({ "a", "timeout", "echo" }, results)
    end)

    it("waits for 12 probes at once: 8 silent ones take about one timeout", function()
      local tasks, finished = {}, {}
      local t0 = sh.now()
      for i = 1, 12 do
        local port = i <= 8 and srv.udp_silent or srv.udp_echo
        tasks[i] = function()
          local c = assert(net.udp("127.0.0.1", port, { timeout = T }))
          local answer, err
          -- as the probe does: a retransmission after a shorter wait
          for _, wait in ipairs { T / 4, T * 3 / 4 } do
            assert(c:send("probe " .. i))
            c:settimeout(wait)
            answer, err = c:receive()
            if answer then break end
          end
          c:close()
          finished[i] = sh.now() - t0
          return answer or err
        end
      end
      local took, r = timed(net.run, tasks)
      local results = r[1]
      for i = 1, 12 do
        assert.are.equal(i <= 8 and "timeout" or ("probe " .. i), results[i])
      end
      assert.is_true(took >= T * 0.99 and took < 2 * T, took)
      for i = 9, 12 do assert.is_true(finished[i] < T / 2, finished[i]) end
    end)

    it("waits at once for TCP connects, TLS handshakes and UDP answers", function()
      local tasks = {}
      for i = 1, 3 do
        tasks[#tasks + 1] = function() -- the full accept queue: no connection
          return select(2, net.tcp("127.0.0.1", srv.tcp_full, { timeout = T }))
        end
        tasks[#tasks + 1] = function() -- accepted, never a TLS answer
          return select(2, net.tcp("127.0.0.1", srv.tcp_mute, { timeout = T, tls = true,
            cafile = web.ca_file }))
        end
        tasks[#tasks + 1] = function()
          local c = assert(net.udp("127.0.0.1", srv.udp_silent, { timeout = T }))
          assert(c:send("x" .. i))
          return select(2, c:receive())
        end
        tasks[#tasks + 1] = function() -- a real handshake among them
          local c, err = net.tcp("localhost", web.tls_port, { timeout = 2 * T, tls = true,
            cafile = web.ca_file })
          return c and get(c) or err
        end
      end
      local took, r = timed(net.run, tasks)
      for i = 0, 2 do
        assert.are.same({ "connect: timed out", "tls: handshake timed out", "timeout",
          "HTTP/1.1 200" }, { r[1][4 * i + 1], r[1][4 * i + 2], r[1][4 * i + 3],
          r[1][4 * i + 4] })
      end
      assert.is_true(took >= T * 0.99 and took < 2 * T, took)
    end)

    it("blocks outside net.run and in a task's own coroutines", function()
      local c = assert(net.udp("127.0.0.1", srv.udp_silent, { timeout = 0.2 }))
      local took = timed(function()
        c:receive()
        c:receive()
      end)
      assert.is_true(took >= 0.39, took) -- one after the other
      local results = net.run { function()
        local inner = coroutine.wrap(function() return c:receive() end)
        return select(2, inner())
      end }
      assert.are.same({ "timeout" }, results)
      c:close()
    end)

    it("raises a task's error, and for tasks that are not functions", function()
      local waiting -- a conn of another task, waiting when the error comes
      local ok, err = pcall(net.run, {
        function()
          waiting = assert(net.udp("127.0.0.1", srv.udp_silent, { timeout = 30 }))
          return waiting:receive()
        end,
        function() error("boom", 0) end,
      })
      assert.is_false(ok)
      assert.are.equal("net.run: task 2 failed: boom", err)
      -- the abandoned task's socket is closed at once
      assert.are.same({ nil, "closed" }, { waiting:send("still there?") })
      assert.has_error(function() net.run { 42 } end, "net.run: task 1 is not a function")
      assert.has_error(function() net.run { function() coroutine.yield() end } end,
        "net.run: task 1 yielded outside a net call")
      assert.are.same({}, net.run {})
    end)
  end)

  it("raises for a caller's mistakes", function()
    assert.has_error(function() net.udp(nil, 3478) end, "net: host must be a string")
    assert.has_error(function() net.tcp("127.0.0.1", 0) end,
      "net: port must be an integer 1-65535")
    assert.has_error(function() net.udp("127.0.0.1", 3478, "fast") end,
      "net: opts must be a table")
  end)

  describe("against coturn's UDP, TCP and TLS listeners", function()
    local turn, stun

    lazy_setup(function()
      turn = coturn.start{ secrets = { "net-socket-spec" }, tls = { names = { "turn.spec.test" } } }
      stun = message.new(core)
    end)

    lazy_teardown(function()
      if turn then turn:stop() end
    end)

    -- A Binding request through conn; the decoded success.
    local function binding(conn, stream)
      local tid = stun.new_tid()
      assert(conn:send(stun.encode({ method = "binding", class = "request", tid = tid },
        { fingerprint = true })))
      local bytes, err
      if stream then
        local head = assert(conn:receive(20))
        local n = assert(message.frame_length(head))
        bytes = head .. assert(conn:receive(n))
      else
        bytes, err = conn:receive()
        assert(bytes, err)
      end
      conn:close()
      local msg = assert(message.decode(bytes))
      assert.are.equal(tid, msg.tid)
      assert.is_true(stun.check_fingerprint(bytes, msg))
      return msg
    end

    it("gets a Binding success over UDP, TCP and TLS", function()
      for _, case in ipairs {
        { net.udp("127.0.0.1", turn.port, { timeout = 5 }) },
        { net.tcp("127.0.0.1", turn.port, { timeout = 5 }), true },
        { net.tcp("127.0.0.1", turn.tls_port, { timeout = 10, tls = true,
          cafile = turn.ca_file }), true },
        { net.tcp("localhost", turn.tls_port, { timeout = 10, tls = true,
          cafile = turn.ca_file }), true },
        -- a name given to the harness (tls.names), pinned to the loopback
        { net.new{ resolve = { ["turn.spec.test:" .. turn.tls_port] = "127.0.0.1" } }.tcp(
          "turn.spec.test", turn.tls_port, { timeout = 10, tls = true, cafile = turn.ca_file }),
          true },
      } do
        local msg = binding(assert(case[1]), case[2])
        assert.are.equal("success", msg.class)
        assert.are.equal("127.0.0.1", msg.attrs.xor_mapped_address.ip)
      end
    end)

    it("refuses coturn's certificate for another name or from another CA", function()
      local ok, err = net.tcp("127.0.0.1", turn.tls_port, { timeout = 10, tls = true,
        sni = "turn.other.test", cafile = turn.ca_file })
      assert.is_nil(ok)
      assert.are.equal("tls: the certificate is not for turn.other.test", err)
      ok, err = net.tcp("127.0.0.1", turn.tls_port, { timeout = 10, tls = true,
        cafile = other_ca })
      assert.is_nil(ok)
      assert.matches("^tls: certificate verify failed", err)
    end)
  end)
end)
