-- iceservers.stun.probe: the STUN/TURN probe logic, first against a fake net
-- (a fake clock, scripted replies from support.stun_mock's server logic run
-- in process) for every branch, then against the same server as a separate
-- process over real UDP on 127.0.0.1 for what coturn never sends.
local core = require "iceservers.core"
local message = require "iceservers.stun.message"
local probe = require "iceservers.stun.probe"
local mock = require "support.stun_mock"
local sh = require "support.sh"

local SLOW = sh.slow(3)
local LATENCY = 0.001 -- the fake net's one-way time for a delivered message
local CRED = { username = mock.USER, credential = mock.PASSWORD }
local MAPPED = "192.0.2.1:40000"
local RELAYED = "127.0.0.1:50000"

---------------------------------------------------------------------------
-- the fake net: a clock that moves only when a receive waits, and a server
-- function (bytes -> list of replies) behind every connection.  A reply is
-- the bytes of a datagram (UDP) or of the stream (TCP), or { err = "..." }
-- for a receive that fails.

local function fake(server, o)
  o = o or {}
  local f = { t = 100, opened = {}, sent = {}, receives = {}, closed = 0 }
  local handle = type(server) == "function" and server or function(b) return server:handle(b) end
  function f.now() return f.t end
  local function conn(kind)
    local c, queue, buf = {}, {}, ""
    function c.settimeout(_, t)
      assert(type(t) == "number" and t > 0, "settimeout with " .. tostring(t))
      c.timeout = t
    end
    function c.send(_, bytes)
      f.sent[#f.sent + 1] = { t = f.t, bytes = bytes, msg = assert(message.decode(bytes)) }
      if o.send_error then return nil, o.send_error end
      for _, r in ipairs(handle(bytes) or {}) do
        if kind == "tcp" and type(r) == "string" then buf = buf .. r else queue[#queue + 1] = r end
      end
      return true
    end
    function c.receive(_, n)
      f.receives[#f.receives + 1] = n or false
      if kind == "tcp" then
        assert(type(n) == "number" and n > 0, "a stream read needs a size")
        if #buf >= n then
          local out = buf:sub(1, n)
          buf = buf:sub(n + 1)
          f.t = f.t + LATENCY
          return out
        end
      end
      local r = table.remove(queue, 1)
      if type(r) == "table" then return nil, r.err end
      if kind == "udp" and r then
        f.t = f.t + LATENCY
        return r
      end
      if o.eof then return nil, "closed" end
      f.t = f.t + c.timeout
      return nil, "timeout"
    end
    function c.close() f.closed = f.closed + 1 end
    return c
  end
  f.net = {
    udp = function(host, port, opts)
      f.opened[#f.opened + 1] = { kind = "udp", host = host, port = port, opts = opts }
      if o.open_error then return nil, o.open_error end
      return conn("udp")
    end,
    tcp = function(host, port, opts)
      f.opened[#f.opened + 1] = { kind = "tcp", host = host, port = port, opts = opts }
      if o.open_error then return nil, o.open_error end
      return conn("tcp")
    end,
  }
  f.opts = { net = f.net, crypto = core, now = f.now, timeout = o.timeout or 5,
    software = o.software }
  function f.probe(url, cred) return probe.url(url, cred, f.opts) end
  -- the methods of what was sent, "allocate+" for an authenticated one
  function f.methods()
    local names = { [1] = "binding", [3] = "allocate", [4] = "refresh" }
    local out = {}
    for i, s in ipairs(f.sent) do
      out[i] = names[s.msg.method] .. (s.msg.attrs.message_integrity and "+" or "")
    end
    return out
  end
  return f
end

-- A hook that answers the authenticated Allocate (after our auth check) with fn's list.
local function on_auth_allocate(fn)
  return function(self, req, bytes)
    if self:check_auth(req, bytes) then return nil end
    return fn(self, req)
  end
end

local function server(hooks) return mock.server(hooks) end

local function assert_failed(r, stage, pattern)
  assert.is_false(r.ok)
  assert.are.equal(stage, r.stage)
  assert.is_string(r.error)
  assert.is_nil(r.error:find("[%c]"))
  if pattern then assert.truthy(r.error:find(pattern), r.error) end
end

---------------------------------------------------------------------------

describe("probe against a fake net", function()
  describe("stun:", function()
    it("sends a Binding with FINGERPRINT and reports the mapped address", function()
      local srv = server("turn")
      local f = fake(srv)
      local r = f.probe("stun:stun.example.com:3479")
      assert.is_true(r.ok)
      assert.are.equal("done", r.stage)
      assert.are.equal(MAPPED, r.mapped)
      assert.is_nil(r.relayed)
      assert.are.equal(1, r.exchanges)
      assert.are.equal(1, r.sent)
      assert.is_true(r.checked)
      assert.are.equal(LATENCY * 1000, r.rtt_ms)
      assert.are.equal(mock.SOFTWARE, r.software)
      assert.are.same(
        { kind = "udp", host = "stun.example.com", port = 3479, opts = { timeout = 5 } },
        f.opened[1])
      assert.is_true(srv.log[1].fingerprint)
      assert.are.equal(1, f.closed)
      assert.is_nil(r.error)
      assert.is_nil(r.code)
    end)

    it("defaults the port to 3478 and sends SOFTWARE when asked", function()
      local srv = server("turn")
      local f = fake(srv, { software = "iceservers-probe" })
      assert.is_true(f.probe("stun:127.0.0.1").ok)
      assert.are.equal(3478, f.opened[1].port)
      assert.are.equal("iceservers-probe", srv.log[1].software)
    end)

    it("takes MAPPED-ADDRESS when there is no XOR-MAPPED-ADDRESS, and IPv6", function()
      local f = fake(server { binding = function(self, req)
        return { self:answer(req, "success", { { type = "mapped_address",
          value = { ip = "2001:db8::7", port = 9 } } }) }
      end })
      local r = f.probe("stun:[::1]:3478")
      assert.is_true(r.ok)
      assert.are.equal("[2001:db8::7]:9", r.mapped)
      assert.are.equal("::1", f.opened[1].host)
    end)

    it("reports a Binding success without an address, and a Binding error", function()
      local f = fake(server { binding = function(self, req)
        return { self:answer(req, "success") }
      end })
      assert_failed(f.probe("stun:h"), "request", "no mapped address")
      f = fake(server { binding = function(self, req)
        return { self:error(req, 400, "Bad Request") }
      end })
      local r = f.probe("stun:h")
      assert_failed(r, "request")
      assert.are.equal("400 Bad Request", r.error)
      assert.are.equal(400, r.code)
      assert.are.equal("Bad Request", r.reason)
    end)

    it("stuns: is a TLS stream with SNI for a name, none for an IP literal", function()
      local f = fake(server("turn"))
      assert.is_true(f.probe("stuns:stun.example.com").ok)
      local o = f.opened[1]
      assert.are.equal("tcp", o.kind)
      assert.are.equal(5349, o.port)
      assert.is_true(o.opts.tls)
      assert.are.equal("stun.example.com", o.opts.sni)
      f = fake(server("turn"))
      assert.is_true(f.probe("stuns:127.0.0.1:5350").ok)
      assert.is_nil(f.opened[1].opts.sni)
      assert.is_true(f.opened[1].opts.tls)
    end)
  end)

  describe("turn:", function()
    it("challenge, authenticated Allocate, Refresh LIFETIME 0: three exchanges", function()
      local srv = server("turn")
      local f = fake(srv)
      local r = f.probe("turn:turn.example.com:3478?transport=udp", CRED)
      assert.is_true(r.ok, r.error)
      assert.are.equal("done", r.stage)
      assert.are.equal(3, r.exchanges)
      assert.are.equal(3, r.sent)
      assert.are.equal(RELAYED, r.relayed)
      assert.are.equal(MAPPED, r.mapped)
      assert.are.equal(mock.LIFETIME, r.lifetime)
      assert.is_true(r.released)
      assert.is_true(r.checked)
      assert.is_nil(r.warning)
      assert.are.same({ "allocate", "allocate+", "refresh+" }, f.methods())
      assert.are.equal(0, srv.log[3].lifetime)
      assert.is_false(srv.allocation) -- deleted
      for i = 1, 2 do assert.are.equal(17, srv.log[i].transport) end
      for i = 1, 3 do assert.is_true(srv.log[i].fingerprint) end
      assert.are.equal(mock.REALM, f.sent[2].msg.attrs.realm)
      assert.are.equal(mock.USER, f.sent[2].msg.attrs.username)
      assert.are.equal("mock-nonce-1", f.sent[3].msg.attrs.nonce)
      -- a fresh transaction id for each request
      assert.are_not.equal(f.sent[1].msg.tid, f.sent[2].msg.tid)
      assert.are_not.equal(f.sent[2].msg.tid, f.sent[3].msg.tid)
      assert.are.equal(LATENCY * 1000, r.rtt_ms)
      assert.are.equal(3 * LATENCY * 1000, r.elapsed_ms)
    end)

    it("without a credential stops at the 401: reachable, credentials not checked", function()
      local f = fake(server("turn"))
      local r = f.probe("turn:h:3478")
      assert.is_true(r.ok)
      assert.is_false(r.checked)
      assert.are.equal("reachable, credentials not checked", r.reason)
      assert.are.equal(1, r.exchanges)
      assert.is_nil(r.relayed)
      assert.are.same({ "allocate" }, f.methods())
    end)

    it("a 401 challenge without REALM or NONCE is an error", function()
      local f = fake(server { allocate = function(self, req)
        return { self:error(req, 401, "Unauthorized", { { type = "realm", value = "r" } }) }
      end })
      local r = f.probe("turn:h", CRED)
      assert_failed(r, "request", "^401 Unauthorized %(the challenge has no REALM or NONCE%)$")
      assert.are.equal(401, r.code)
    end)

    it("a wrong password: the server's 401 after the authenticated Allocate", function()
      local srv = server("turn")
      local f = fake(srv)
      local r = f.probe("turn:h", { username = mock.USER, credential = "wrong" })
      assert_failed(r, "request")
      assert.are.equal("401 Unauthorized", r.error)
      assert.are.equal(401, r.code)
      assert.are.equal("Unauthorized", r.reason)
      assert.is_true(r.checked)
      assert.are.equal(2, r.exchanges)
      assert.are.same({ "allocate", "allocate+" }, f.methods())
    end)

    it("438 is retried once with the new nonce; a second 438 is the verdict", function()
      local srv = server("stale_438")
      local f = fake(srv)
      local r = f.probe("turn:h", CRED)
      assert.is_true(r.ok, r.error)
      assert.are.equal(4, r.exchanges)
      assert.are.same({ "allocate", "allocate+", "allocate+", "refresh+" }, f.methods())
      assert.are.equal("mock-nonce-2", f.sent[3].msg.attrs.nonce)
      assert.are.equal("mock-nonce-2", f.sent[4].msg.attrs.nonce)
      f = fake(server { allocate = function(self, req)
        if req.attrs.message_integrity then
          self.nonce_n = self.nonce_n + 1
          return { self:challenge(req, 438, "Stale Nonce") }
        end
      end })
      r = f.probe("turn:h", CRED)
      assert_failed(r, "request")
      assert.are.equal("438 Stale Nonce", r.error)
      assert.are.equal(3, r.exchanges)
    end)

    it("a server that allocates without authentication: ok, not checked, released", function()
      local srv = server { allocate = function(self, req)
        self.allocation = true
        return { self:allocate_success(req, nil) }
      end, refresh = function(self, req)
        assert(not req.attrs.message_integrity)
        self.allocation = false
        return { self:answer(req, "success", { { type = "lifetime", value = 0 } }) }
      end }
      local f = fake(srv)
      local r = f.probe("turn:h", CRED)
      assert.is_true(r.ok)
      assert.is_false(r.checked)
      assert.is_true(r.released)
      assert.are.equal("allocated without credentials", r.reason)
      assert.are.same({ "allocate", "refresh" }, f.methods())
    end)

    it("an Allocate success without XOR-RELAYED-ADDRESS is an error", function()
      local f = fake(server { allocate = on_auth_allocate(function(self, req)
        return { self:answer(req, "success", { { type = "lifetime", value = 600 } }, self.key) }
      end) })
      assert_failed(f.probe("turn:h", CRED), "request", "no XOR%-RELAYED%-ADDRESS")
    end)

    it("turns: and turn:?transport=tcp are streams; turns: defaults to 5349 with SNI", function()
      local f = fake(server("turn"))
      local r = f.probe("turns:turn.example.com", CRED)
      assert.is_true(r.ok, r.error)
      assert.are.same({ kind = "tcp", host = "turn.example.com", port = 5349,
        opts = { timeout = 5, tls = true, sni = "turn.example.com" } }, f.opened[1])
      f = fake(server("turn"))
      assert.is_true(f.probe("turn:127.0.0.1:3478?transport=tcp", CRED).ok)
      assert.are.same({ timeout = 5, tls = false }, f.opened[1].opts)
    end)

    it("passes verify and cafile to the net for TLS", function()
      local f = fake(server("turn"))
      f.opts.verify, f.opts.cafile = false, "/tmp/ca.pem"
      assert.is_true(f.probe("turns:turn.example.com", CRED).ok)
      assert.is_false(f.opened[1].opts.verify)
      assert.are.equal("/tmp/ca.pem", f.opened[1].opts.cafile)
    end)
  end)

  describe("server errors", function()
    local CODES = {
      { 300, "Try Alternate" }, { 400, "Bad Request" }, { 403, "Forbidden" },
      { 420, "Unknown Attribute" }, { 437, "Allocation Mismatch" },
      { 440, "Address Family not Supported" }, { 441, "Wrong Credentials" },
      { 442, "Unsupported Transport Protocol" }, { 486, "Allocation Quota Reached" },
      { 500, "Server Error" }, { 508, "Insufficient Capacity" },
    }

    it("to the first Allocate: code, reason and '<code> <reason>'", function()
      for _, c in ipairs(CODES) do
        local f = fake(server { allocate = function(self, req)
          return { self:error(req, c[1], c[2]) }
        end })
        local r = f.probe("turn:h", CRED)
        assert_failed(r, "request")
        assert.are.equal(c[1], r.code)
        assert.are.equal(c[2], r.reason)
        assert.are.equal(c[1] .. " " .. c[2], r.error)
        -- 437: once more from another socket (see the next case), to the same end
        assert.are.equal(c[1] == 437 and 2 or 1, r.exchanges)
        assert.are.equal(c[1] == 437 and 2 or 1, #f.opened)
        assert.are.equal(c[1] == 437 or nil, r.retried)
        assert.is_nil(r.stale_port)
      end
    end)

    it("437 to the first Allocate (an earlier probe's port again): once more from another",
      function()
        local first = true
        local f = fake(server { allocate = function(self, req)
          if first then
            first = false
            return { self:error(req, 437, "Mismatched allocation: wrong transaction ID") }
          end
        end })
        local r = f.probe("turn:h", CRED)
        assert.is_true(r.ok, r.error)
        assert.is_true(r.retried)
        assert.is_true(r.released)
        assert.are.equal(4, r.exchanges)
        assert.are.equal(2, #f.opened)
        assert.are.same({ "allocate", "allocate", "allocate+", "refresh+" }, f.methods())
      end)

    it("to the authenticated Allocate with a valid MESSAGE-INTEGRITY: the same", function()
      for _, c in ipairs(CODES) do
        local f = fake(server { allocate = on_auth_allocate(function(self, req)
          return { self:error(req, c[1], c[2], nil, self.key) }
        end) })
        local r = f.probe("turn:h", CRED)
        assert_failed(r, "request")
        assert.are.equal(c[1] .. " " .. c[2], r.error)
        assert.are.equal(c[1] == 437 and 3 or 2, r.exchanges) -- 437: then a Refresh
      end
    end)

    it("without MESSAGE-INTEGRITY only 400, 401, 420, 438 count; others are discarded", function()
      for _, c in ipairs(CODES) do
        local f = fake(server { allocate = on_auth_allocate(function(self, req)
          return { self:error(req, c[1], c[2]) }
        end) })
        local r = f.probe("turn:h", CRED)
        if c[1] == 400 or c[1] == 420 then
          assert.are.equal(c[1], r.code)
        else
          assert_failed(r, "request",
            ("^request: the %d response has no MESSAGE%%-INTEGRITY"):format(c[1]))
          assert.is_nil(r.code)
          assert.are.equal(1, r.exchanges)
          assert.is_true(r.sent > 2) -- it kept retransmitting, waiting for a valid answer
        end
      end
    end)

    it("a phrase-less error gets the RFC's phrase; server text is one clean line", function()
      local f = fake(server { allocate = function(self, req)
        return { self:error(req, 403, "") }
      end })
      local r = f.probe("turn:h", CRED)
      assert.are.equal("403 Forbidden", r.error)
      assert.are.equal("", r.reason)
      f = fake(server { allocate = function(self, req)
        return { self:error(req, 486, "Quota\n\27[31mreached\0 " .. ("é"):rep(200)) }
      end })
      r = f.probe("turn:h", CRED)
      assert_failed(r, "request", "^486 Quota  %[31mreached")
      assert.is_nil(r.reason:find("%c"))
      assert.truthy(#r.reason <= 163)
      assert.truthy(r.reason:find("é...", 1, true)) -- cut between characters
      f = fake(server { allocate = function(self, req) return { self:error(req, 599, "Odd") } end })
      assert.are.equal("599 Odd", f.probe("turn:h", CRED).error)
    end)

    it("300 names the ALTERNATE-SERVER and 420 the UNKNOWN-ATTRIBUTES", function()
      local f = fake(server("alternate_300"))
      local r = f.probe("turn:h", CRED)
      assert.are.equal("300 Try Alternate (alternate server 127.0.0.1:3479)", r.error)
      assert.are.equal("127.0.0.1:3479", r.alternate)
      f = fake(server("unknown_420"))
      r = f.probe("turn:h", CRED)
      assert.are.equal("420 Unknown Attribute (unknown attributes: 0x0019)", r.error)
      assert.are.same({ "0x0019" }, r.unknown)
    end)

    it("437 to the authenticated Allocate: reported, and the allocation released", function()
      local srv = server { allocate = on_auth_allocate(function(self, req)
        self.allocation = true -- as if an earlier transmission had allocated
        return { self:error(req, 437, "Allocation Mismatch", nil, self.key) }
      end) }
      local f = fake(srv)
      local r = f.probe("turn:h", CRED)
      assert.are.equal("437 Allocation Mismatch", r.error)
      assert.are.same({ "allocate", "allocate+", "refresh+" }, f.methods())
      assert.is_false(srv.allocation)
    end)
  end)

  describe("response checks (RFC 8489 §6.3, §9.2.5)", function()
    it("a success with a wrong or no MESSAGE-INTEGRITY is never ok (UDP: after the deadline)",
      function()
        for _, name in ipairs { "wrong_mi", "no_mi" } do
          local f = fake(server(name), { timeout = 2 })
          local r = f.probe("turn:h", CRED)
          local how = name == "wrong_mi" and "a wrong" or "no"
          assert_failed(r, "request",
            "^request: the success response has " .. how .. " MESSAGE%-INTEGRITY %(%d discarded%)$")
          assert.is_nil(r.relayed)
          assert.truthy(f.t - 100 >= 2 and f.t - 100 < 2.1)
        end
      end)

    it("over TCP a bad MESSAGE-INTEGRITY ends the probe at once", function()
      local f = fake(server("wrong_mi"))
      local r = f.probe("turn:h?transport=tcp", CRED)
      assert_failed(r, "request", "^request: the success response has a wrong MESSAGE%-INTEGRITY$")
      assert.truthy(f.t - 100 < 0.1)
    end)

    it("a wrong-MI answer then a valid one: the valid one counts", function()
      local f = fake(server { allocate = on_auth_allocate(function(self, req)
        self.allocation = true
        return { self:allocate_success(req, self.wrong_key), self:allocate_success(req, self.key) }
      end) })
      local r = f.probe("turn:h", CRED)
      assert.is_true(r.ok, r.error)
      assert.are.equal(3, r.exchanges)
    end)

    it("discards another tid, a bad FINGERPRINT, a truncated message, another method", function()
      for _, name in ipairs { "binding_wrong_tid", "binding_bad_fp", "binding_truncated" } do
        local f = fake(server(name))
        local r = f.probe("stun:h")
        assert.is_true(r.ok, name)
        assert.are.equal(MAPPED, r.mapped) -- not the decoy's address
        assert.are.equal(1, r.sent)
      end
      local f = fake(server { binding = function(self, req)
        local wrong = self.stun.encode({ method = "allocate", class = "success", tid = req.tid,
          list = { { type = "xor_mapped_address", value = mock.DECOY } } })
        local ind = self.stun.encode({ method = "binding", class = "indication", tid = req.tid })
        return { wrong, ind, "\0\1", ("x"):rep(40), self:binding(req)[1] }
      end })
      local r = f.probe("stun:h")
      assert.is_true(r.ok)
      assert.are.equal(MAPPED, r.mapped)
    end)

    it("only discarded answers until the deadline: a timeout that says what was discarded",
      function()
        local f = fake(server("truncated_only"), { timeout = 1 })
        local r = f.probe("stun:h")
        assert_failed(r, "timeout",
          "^timeout: no valid answer within 1 s %(discarded: 2 malformed %(the header says")
        f = fake(server("silence"), { timeout = 1 })
        r = f.probe("stun:h")
        assert_failed(r, "timeout", "^timeout: no answer within 1 s$")
      end)

    it("unknown comprehension-required attributes in a response: an error naming them",
      function()
        local f = fake(server("unknown_attr"))
        local r = f.probe("turn:h", CRED)
        assert_failed(r, "request",
          "^request: unknown comprehension%-required attributes in the response: 0x0042$")
      end)

    it("an error response without ERROR-CODE is an error", function()
      local f = fake(server { binding = function(self, req)
        return { self:answer(req, "error") }
      end })
      assert_failed(f.probe("stun:h"), "request", "without ERROR%-CODE")
    end)

    it("never raises on mutated answers (seeded)", function()
      math.randomseed(12)
      local base = server("turn")
      local function mutate(bytes)
        local b = { bytes:byte(1, -1) }
        for _ = 1, math.random(1, 4) do
          local i = math.random(1, #b)
          b[i] = math.random(0, 255)
        end
        local s = string.char(unpack and unpack(b) or table.unpack(b))
        if math.random() < 0.2 then s = s:sub(1, math.random(0, #s)) end
        return s
      end
      for _ = 1, 300 do
        local which = math.random(1, 3)
        local n = 0
        local srv = mock.server("turn")
        srv.key = base.key
        local f = fake(function(bytes)
          n = n + 1
          local out = srv:handle(bytes)
          if n == which then
            for i, o in ipairs(out) do out[i] = mutate(o) end
          end
          return out
        end, { timeout = 1 })
        local ok, r = pcall(f.probe, "turn:h", CRED)
        assert.is_true(ok, tostring(r))
        assert.is_boolean(r.ok)
        if not r.ok then assert.is_string(r.error) end
      end
    end)
  end)

  describe("UDP retransmission (RFC 8489 §6.2.1)", function()
    it("retransmits at 0.5, 1.5, 3.5 s and gives up at the timeout", function()
      local f = fake(server("silence"), { timeout = 5 })
      local r = f.probe("turn:h", CRED)
      assert_failed(r, "timeout", "^timeout: no answer within 5 s$")
      local times = {}
      for i, s in ipairs(f.sent) do times[i] = s.t - 100 end
      assert.are.same({ 0, 0.5, 1.5, 3.5 }, times)
      assert.are.equal(4, r.sent)
      assert.are.equal(0, r.exchanges)
      assert.are.equal(5, f.t - 100)
      assert.are.equal(5000, r.elapsed_ms)
      assert.is_nil(r.rtt_ms)
    end)

    it("at most 7 transmissions, then 16 RTO: the transaction fails before a long timeout",
      function()
        local f = fake(server("silence"), { timeout = 100 })
        local r = f.probe("stun:h")
        assert.are.equal("timeout", r.stage)
        assert.are.equal(7, r.sent)
        assert.are.equal(31.5 + 8, f.t - 100)
      end)

    it("a lost first datagram: the retransmit gets the answer; rtt from the first send", function()
      local f = fake(server("lose_first"))
      local r = f.probe("turn:h", CRED)
      assert.is_true(r.ok)
      assert.are.equal(3, r.exchanges)
      assert.are.equal(4, r.sent)
      assert.are.equal(500 + LATENCY * 1000, r.rtt_ms)
    end)

    it("the Refresh's answer lost, the retransmit's 437 or 438 (no MI) counts as released",
      function()
        for _, name in ipairs { "refresh_lost", "refresh_438" } do
          local srv = server(name)
          local f = fake(srv)
          local r = f.probe("turn:h", CRED)
          assert.is_true(r.ok, r.error)
          assert.is_true(r.released, name)
          assert.is_nil(r.warning)
          assert.are.equal(3, r.exchanges)
          assert.are.equal(4, r.sent)
          assert.is_false(srv.allocation)
        end
      end)

    it("a 438 to a Refresh sent once is a stale nonce: retried with the new nonce", function()
      local srv = server { refresh = function(self, req)
        if not self.fired then
          self.fired = true
          self.nonce_n = self.nonce_n + 1
          return { self:challenge(req, 438, "Stale Nonce") }
        end
      end }
      local f = fake(srv)
      local r = f.probe("turn:h", CRED)
      assert.is_true(r.released)
      assert.are.same({ "allocate", "allocate+", "refresh+", "refresh+" }, f.methods())
      assert.are.equal("mock-nonce-2", f.sent[4].msg.attrs.nonce)
      assert.is_false(srv.allocation)
    end)

    it("a failed or unanswered Refresh: still ok (it allocated), released false, a warning",
      function()
        local f = fake(server { refresh = function(self, req)
          return { self:error(req, 500, "Server Error", nil, self.key) }
        end })
        local r = f.probe("turn:h", CRED)
        assert.is_true(r.ok)
        assert.is_false(r.released)
        assert.are.equal("refresh: 500 Server Error", r.warning)
        f = fake(server { refresh = function() return {} end }, { timeout = 2 })
        r = f.probe("turn:h", CRED)
        assert.is_true(r.ok)
        assert.is_false(r.released)
        assert.truthy(r.warning:find("^refresh: timeout"))
        assert.are.equal(2, r.exchanges)
      end)
  end)

  describe("streams (TCP, TLS)", function()
    it("reads each message as the 20-byte header, then exactly its length; no retransmits",
      function()
        local f = fake(server("turn"))
        local r = f.probe("turn:h?transport=tcp", CRED)
        assert.is_true(r.ok, r.error)
        assert.are.equal(3, r.sent)
        local sizes = f.receives
        assert.are.equal(6, #sizes)
        for i = 1, 6, 2 do
          assert.are.equal(20, sizes[i])
          assert.truthy(sizes[i + 1] > 0 and sizes[i + 1] % 4 == 0)
        end
      end)

    it("silence on a stream: one transmission, a timeout at the deadline", function()
      local f = fake(server("silence"), { timeout = 3 })
      local r = f.probe("turn:h?transport=tcp", CRED)
      assert_failed(r, "timeout")
      assert.are.equal(1, r.sent)
      assert.are.equal(3, f.t - 100)
    end)

    it("a stream that is not STUN, or closes, ends the probe", function()
      local f = fake(function() return { ("\255"):rep(40) } end)
      assert_failed(f.probe("stuns:h"), "request", "^request: not a STUN stream")
      f = fake(function() return {} end, { eof = true })
      assert_failed(f.probe("stuns:h"), "request", "^request: the server closed the connection$")
    end)

    it("discards a message with another tid on a stream and reads the next", function()
      local f = fake(server("binding_wrong_tid"))
      local r = f.probe("stuns:h")
      assert.is_true(r.ok)
      assert.are.equal(MAPPED, r.mapped)
    end)
  end)

  describe("transport failures", function()
    it("the net's stage word becomes the stage", function()
      local cases = {
        { "resolve: no such host", "resolve" }, { "connect: connection refused", "connect" },
        { "tls: certificate verify failed", "tls" }, { "refused", "connect" },
        { "timeout", "timeout" }, { "something odd", "request" },
      }
      for _, c in ipairs(cases) do
        local f = fake(server("turn"), { open_error = c[1] })
        local r = f.probe("turns:h", CRED)
        assert_failed(r, c[2])
        assert.are.equal(c[2] == "request" and "request: " .. c[1] or c[1], r.error)
        assert.are.equal(0, r.sent)
      end
    end)

    it("an ICMP refusal on receive or a send error", function()
      local f = fake(function() return { { err = "refused" } } end)
      local r = f.probe("stun:h")
      assert_failed(r, "connect", "^refused$")
      assert.are.equal(1, f.closed)
      f = fake(server("turn"), { send_error = "refused" })
      assert_failed(f.probe("stun:h"), "connect", "^refused$")
    end)

    it("hands the net what is left of the timeout", function()
      local f = fake(server("turn"), { timeout = 2.5 })
      f.probe("turn:h?transport=tcp", CRED)
      assert.are.equal(2.5, f.opened[1].opts.timeout)
    end)
  end)

  describe("the API", function()
    it("a URL it cannot probe is a result with stage url", function()
      local f = fake(server("turn"))
      for _, u in ipairs { "http://x", "turns:h?transport=udp", "turn:", 42 } do
        local r = f.probe(u, CRED)
        assert_failed(r, "url", "^url: ")
        assert.are.equal(u, r.url)
      end
      assert.are.equal(0, #f.opened)
    end)

    it("raises on programming mistakes: opts, credential", function()
      local f = fake(server("turn"))
      assert.has_error(function() probe.url("stun:h", nil, nil) end)
      assert.has_error(function() probe.url("stun:h", nil, { net = f.net, crypto = core }) end,
        "probe: opts.now (a monotonic clock) is required")
      assert.has_error(function()
        probe.url("stun:h", nil, { net = {}, crypto = core, now = f.now })
      end)
      assert.has_error(function()
        probe.url("stun:h", nil, { net = f.net, crypto = {}, now = f.now })
      end)
      assert.has_error(function()
        probe.url("stun:h", nil, { net = f.net, crypto = core, now = f.now, timeout = 0 })
      end)
      assert.has_error(function() f.probe("turn:h", { username = "u" }) end)
      assert.has_error(function() f.probe("turn:h", "secret") end)
    end)

    it("takes the clock from net.now when opts.now is not given", function()
      local f = fake(server("turn"))
      f.net.now = f.now
      local r = probe.url("stun:h", nil, { net = f.net, crypto = core })
      assert.is_true(r.ok)
    end)

    it("list: results in order, sequential without opts.run, through opts.run with it", function()
      local srv = server("turn")
      local f = fake(srv)
      local items = { { url = "stun:a" }, { url = "turn:b", credential = CRED }, { url = "bad" },
        { url = "turn:c" } }
      local results = probe.list(items, f.opts)
      assert.are.equal(4, #results)
      assert.are.equal("stun:a", results[1].url)
      assert.is_true(results[1].ok and results[2].ok and results[2].checked)
      assert.are.equal("url", results[3].stage)
      assert.is_false(results[4].checked)
      local got
      f.opts.run = function(tasks)
        got = #tasks
        local out = {}
        for i = #tasks, 1, -1 do out[i] = tasks[i]() end
        return out
      end
      results = probe.list(items, f.opts)
      assert.are.equal(4, got)
      assert.are.equal("turn:c", results[4].url)
      assert.has_error(function() probe.list({ { url = "stun:a", credential = 5 } }, f.opts) end)
    end)

    it("requires nothing runtime-specific", function()
      local src = assert(sh.read_file("lua/iceservers/stun/probe.lua"))
      src = src:gsub("^%-%-%[%[.-%]%]", "") -- the header's usage example
      local required = {}
      for name in src:gmatch('require%s*%(?%s*"([^"]+)"') do required[#required + 1] = name end
      table.sort(required)
      assert.are.same({ "iceservers.normalize", "iceservers.stun.message" }, required)
      assert.is_nil(src:find("ngx%."))
    end)
  end)
end)

---------------------------------------------------------------------------
-- the same server over real UDP (a LuaSocket process on 127.0.0.1)

describe("probe against the UDP mock server", function()
  local socket = require "socket"
  local net = require "iceservers.stun.net_socket"
  local m
  local SCENARIOS = { "turn", "silence", "lose_first", "binding_wrong_tid", "binding_bad_fp",
    "binding_truncated", "wrong_mi", "no_mi", "unknown_420", "alternate_300", "stale_438",
    "unknown_attr", "refresh_lost" }

  setup(function() m = mock.start(SCENARIOS) end)
  teardown(function() if m then m:stop() end end)

  local function run(scenario, cred, timeout)
    local url = (cred == false and "stun:127.0.0.1:%d" or "turn:127.0.0.1:%d?transport=udp")
      :format(m.ports[scenario])
    local t0 = socket.gettime()
    local r = probe.url(url, cred ~= false and (cred or CRED) or nil,
      { net = net, crypto = core, now = core.monotonic, timeout = timeout or 5 * SLOW })
    return r, socket.gettime() - t0
  end

  it("the baseline: a full TURN probe, the Refresh with LIFETIME 0 seen by the server", function()
    local r = run("turn")
    assert.is_true(r.ok, r.error)
    assert.are.equal(3, r.exchanges)
    assert.are.equal(RELAYED, r.relayed)
    assert.truthy(r.mapped:find("^127%.0%.0%.1:%d+$"))
    assert.is_true(r.released)
    local reqs = m:requests("turn")
    assert.are.equal(3, #reqs)
    assert.are.same({ "refresh", true, 0 }, { reqs[3].method, reqs[3].auth, reqs[3].lifetime })
  end)

  it("a wrong MESSAGE-INTEGRITY, or none, on the success is never ok", function()
    for _, name in ipairs { "wrong_mi", "no_mi" } do
      local r, took = run(name, nil, 1.5)
      assert_failed(r, "request", "MESSAGE%-INTEGRITY")
      assert.is_nil(r.relayed)
      assert.truthy(took < 1.5 + 1 * SLOW, took)
    end
  end)

  it("another tid and a bad FINGERPRINT are ignored, the right answer taken", function()
    for _, name in ipairs { "binding_wrong_tid", "binding_bad_fp", "binding_truncated" } do
      local r = run(name, false)
      assert.is_true(r.ok, name .. ": " .. tostring(r.error))
      assert.truthy(r.mapped:find("^127%.0%.0%.1:"), r.mapped)
      assert.are.equal(1, r.sent)
    end
  end)

  it("420 with UNKNOWN-ATTRIBUTES and 300 with ALTERNATE-SERVER", function()
    local r = run("unknown_420")
    assert.are.equal("420 Unknown Attribute (unknown attributes: 0x0019)", r.error)
    r = run("alternate_300")
    assert.are.equal("300 Try Alternate (alternate server 127.0.0.1:3479)", r.error)
    assert.are.equal(300, r.code)
  end)

  it("438 then success", function()
    local r = run("stale_438")
    assert.is_true(r.ok, r.error)
    assert.are.equal(4, r.exchanges)
  end)

  it("an unknown comprehension-required attribute in the success", function()
    assert_failed(run("unknown_attr"), "request", "0x0042")
  end)

  it("a lost first datagram: the retransmit works", function()
    local r, took = run("lose_first")
    assert.is_true(r.ok, r.error)
    assert.are.equal(4, r.sent)
    assert.truthy(r.rtt_ms >= 500, r.rtt_ms)
    assert.truthy(took >= 0.5)
  end)

  it("the Refresh's answer lost: the retransmit's 437 counts as released", function()
    local r = run("refresh_lost")
    assert.is_true(r.ok, r.error)
    assert.is_true(r.released)
    local reqs = m:requests("refresh_lost")
    assert.are.equal(4, #reqs)
    assert.are.equal("refresh", reqs[4].method)
  end)

  it("silence: a timeout within the timeout and a margin, four transmissions", function()
    local r, took = run("silence", nil, 2)
    assert_failed(r, "timeout", "^timeout: no answer within 2 s$")
    assert.truthy(took >= 2 and took < 2 + 1 * SLOW, took)
    assert.are.equal(3, r.sent) -- 0, 0.5, 1.5
    assert.are.equal(3, #m:requests("silence"))
  end)

  it("list through net.run: three silent servers among six take one timeout, not three",
    function()
      local items = {}
      for i = 1, 6 do
        local name = i % 2 == 0 and "silence" or "turn"
        items[i] = { url = ("turn:127.0.0.1:%d"):format(m.ports[name]), credential = CRED }
      end
      local t0 = socket.gettime()
      local results = probe.list(items, { net = net, crypto = core, now = core.monotonic,
        timeout = 2, run = net.run })
      local took = socket.gettime() - t0
      for i, r in ipairs(results) do
        assert.are.equal(items[i].url, r.url)
        assert.are.equal(i % 2 == 1, r.ok, r.error)
        if i % 2 == 0 then assert.are.equal("timeout", r.stage) end
      end
      assert.truthy(took >= 2 and took < 2 + 1.5 * SLOW, took)
    end)
end)
