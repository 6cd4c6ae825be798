--[==[
A small STUN/TURN server for the probe's specs: what coturn does (Binding,
the 401 challenge, long-term MESSAGE-INTEGRITY, Allocate, Refresh), plus the
faults coturn never sends, chosen by scenario.  Two ways to use it:

In process (spec/probe_spec.lua's fake net), no sockets:
  local mock = require "support.stun_mock"
  local srv = mock.server("wrong_mi")        -- or a table of hooks, see SCENARIOS
  local replies = srv:handle(bytes)          -- a list of datagrams (maybe empty)
  srv.log                                    -- { {method=, class=, auth=, lifetime=, tid=} ... }

As a process on 127.0.0.1 (real UDP, LuaSocket), one socket per scenario:
  local m = mock.start{ "turn", "silence", ... }   -- lua5.4 spec/support/stun_mock.lua
  m.ports.turn, m.pid, m.dir
  m:log()   -- the requests seen: { {scenario=, method=, class=, auth=, lifetime=} ... }
  m:stop()  -- TERM by PID; removes m.dir; safe twice

The credential is mock.USER / mock.PASSWORD in realm mock.REALM; relayed
addresses are mock.RELAYED; in process the mapped address is mock.MAPPED.
Scenarios:
  turn             the server as coturn does it (401 and 437 without MESSAGE-INTEGRITY)
  silence          never answers
  lose_first       drops the first datagram it gets, then as turn
  binding_wrong_tid  a Binding success with another tid (mapped 203.0.113.66), then the right one
  binding_bad_fp   a success with a broken FINGERPRINT (mapped 203.0.113.66), then the right one
  binding_truncated  the success cut short by 8 bytes, then the whole one
  truncated_only   only ever the truncated success
  wrong_mi         the authenticated Allocate's success keyed with another password
  no_mi            that success without MESSAGE-INTEGRITY
  unknown_420      420 with UNKNOWN-ATTRIBUTES 0x0019 to every Allocate
  alternate_300    300 with ALTERNATE-SERVER 127.0.0.1:3479 to every Allocate
  stale_438        the first authenticated Allocate gets 438 and a new nonce
  unknown_attr     the success carries comprehension-required attribute 0x0042
  refresh_lost     the first Refresh deletes the allocation but its answer is lost:
                   a retransmit gets 437 (no allocation), as from coturn
  refresh_438      the same, the retransmit gets 438 (a new nonce)
]==]
local message = require "iceservers.stun.message"

local M = {}

M.REALM = "mock.test"
M.USER = "1900000000:probe"
M.PASSWORD = "mock-password"
M.MAPPED = { ip = "192.0.2.1", port = 40000 }
M.RELAYED = { ip = "127.0.0.1", port = 50000 }
M.DECOY = { ip = "203.0.113.66", port = 1 } -- in answers the probe must discard
M.ALTERNATE = { ip = "127.0.0.1", port = 3479 }
M.SOFTWARE = "stun_mock"
M.LIFETIME = 600

local function crypto() return require "iceservers.core" end

---------------------------------------------------------------------------
-- the server logic

local Server = {}
Server.__index = Server

-- hooks: a scenario's functions (see SCENARIOS); each may return a list of
-- datagrams to send instead of the default answer, or nil for the default.
function M.server(hooks, opts)
  if type(hooks) == "string" then
    local name = hooks
    hooks = M.SCENARIOS[name]
    assert(hooks, "stun_mock: no scenario " .. name)
  end
  opts = opts or {}
  local stun = message.new(opts.crypto or crypto())
  return setmetatable({
    hooks = hooks or {}, stun = stun, log = {}, nonce_n = 1, allocation = false,
    seen = 0, refreshes = 0, allocates = 0,
    key = stun.long_term_key(M.USER, M.REALM, M.PASSWORD),
    wrong_key = stun.long_term_key(M.USER, M.REALM, "not-" .. M.PASSWORD),
  }, Server)
end

function Server:nonce() return "mock-nonce-" .. self.nonce_n end

-- A response to req: class, attribute list, key (nil: no MI).
function Server:answer(req, class, list, key, tid)
  local attrs = { { type = "software", value = M.SOFTWARE } }
  for _, a in ipairs(list or {}) do attrs[#attrs + 1] = a end
  return self.stun.encode({ method = req.method, class = class, tid = tid or req.tid,
    list = attrs }, { key = key, fingerprint = true })
end

function Server:error(req, code, reason, extra, key)
  local list = { { type = "error_code", value = { code = code, reason = reason } } }
  for _, a in ipairs(extra or {}) do list[#list + 1] = a end
  return self:answer(req, "error", list, key)
end

function Server:challenge(req, code, reason)
  return self:error(req, code, reason, {
    { type = "realm", value = M.REALM }, { type = "nonce", value = self:nonce() } })
end

function Server:mapped()
  return self.peer or M.MAPPED
end

function Server:binding(req)
  return { self:answer(req, "success", { { type = "xor_mapped_address", value = self:mapped() } }) }
end

function Server:allocate_success(req, key, extra)
  local list = {
    { type = "xor_relayed_address", value = M.RELAYED },
    { type = "xor_mapped_address", value = self:mapped() },
    { type = "lifetime", value = M.LIFETIME },
  }
  for _, a in ipairs(extra or {}) do list[#list + 1] = a end
  return self:answer(req, "success", list, key)
end

-- Is req authenticated with our key and nonce?  nil or the refusal to send.
function Server:check_auth(req, bytes)
  local a = req.attrs
  if not (a.username and a.realm and a.nonce and a.message_integrity) then
    return { self:challenge(req, 401, "Unauthorized") }
  end
  if a.nonce ~= self:nonce() then return { self:challenge(req, 438, "Stale Nonce") } end
  if a.username ~= M.USER or a.realm ~= M.REALM
    or not self.stun.check_integrity(bytes, req, self.key) then
    return { self:challenge(req, 401, "Unauthorized") }
  end
  return nil
end

function Server:allocate(req, bytes)
  local refused = self:check_auth(req, bytes)
  if refused then return refused end
  if self.allocation then
    return { self:error(req, 437, "Allocation Mismatch") }
  end
  self.allocation = true
  return { self:allocate_success(req, self.key) }
end

function Server:refresh(req, bytes)
  local refused = self:check_auth(req, bytes)
  if refused then return refused end
  if not self.allocation then return { self:error(req, 437, "Allocation Mismatch") } end
  if req.attrs.lifetime == 0 then self.allocation = false end
  return { self:answer(req, "success", { { type = "lifetime", value = req.attrs.lifetime or 600 } },
    self.key) }
end

local NAMES = {}
for name, n in pairs(message.METHODS) do NAMES[n] = name end

-- The datagrams to send for these bytes (a list, maybe empty).
function Server:handle(bytes)
  self.seen = self.seen + 1
  local req = message.decode(bytes)
  if not req or req.class ~= "request" then return {} end
  local method = NAMES[req.method] or req.method
  local a = req.attrs
  self.log[#self.log + 1] = { method = method, class = req.class, tid = req.tid,
    auth = a.message_integrity ~= nil, lifetime = a.lifetime, nonce = a.nonce,
    fingerprint = self.stun.check_fingerprint(bytes, req),
    software = a.software, transport = a.requested_transport }
  local hook = self.hooks[method] or self.hooks.any
  if hook then
    local out = hook(self, req, bytes)
    if out then return out end
  end
  if method == "binding" then return self:binding(req) end
  if method == "allocate" then return self:allocate(req, bytes) end
  if method == "refresh" then return self:refresh(req, bytes) end
  return { self:error(req, 400, "Bad Request") }
end

---------------------------------------------------------------------------
-- faults

local function with_other_tid(self, req, list)
  return self:answer(req, "success", list, nil, self.stun.new_tid())
end

local function bad_fingerprint(bytes)
  local last = bytes:byte(#bytes)
  return bytes:sub(1, -2) .. string.char((last + 1) % 256)
end

local function decoy(self, req)
  return self:answer(req, "success", { { type = "xor_mapped_address", value = M.DECOY } })
end

local function first_authenticated(fn)
  return function(self, req, bytes)
    if req.attrs.message_integrity and not self.fired then
      self.fired = true
      return fn(self, req, bytes)
    end
  end
end

-- A Refresh that deletes the allocation, its answer lost; the next one gets `after`.
local function lost_refresh(after)
  return function(self, req, bytes)
    self.refreshes = self.refreshes + 1
    if self.refreshes == 1 then
      self:refresh(req, bytes)
      return {}
    end
    return after(self, req, bytes)
  end
end

M.SCENARIOS = {
  turn = {},
  silence = { any = function() return {} end },
  lose_first = { any = function(self) if self.seen == 1 then return {} end end },
  binding_wrong_tid = {
    binding = function(self, req)
      local other = with_other_tid(self, req, { { type = "xor_mapped_address", value = M.DECOY } })
      return { other, self:binding(req)[1] }
    end,
  },
  binding_bad_fp = {
    binding = function(self, req)
      return { bad_fingerprint(decoy(self, req)), self:binding(req)[1] }
    end,
  },
  binding_truncated = {
    binding = function(self, req)
      local good = self:binding(req)[1]
      return { good:sub(1, -9), good }
    end,
  },
  truncated_only = {
    any = function(self, req) return { self:binding(req)[1]:sub(1, -9) } end,
  },
  wrong_mi = {
    allocate = function(self, req, bytes)
      if self:check_auth(req, bytes) then return nil end
      return { self:allocate_success(req, self.wrong_key) }
    end,
  },
  no_mi = {
    allocate = function(self, req, bytes)
      if self:check_auth(req, bytes) then return nil end
      return { self:allocate_success(req, nil) }
    end,
  },
  unknown_420 = {
    allocate = function(self, req)
      return { self:error(req, 420, "Unknown Attribute",
        { { type = "unknown_attributes", value = { 0x0019 } } }) }
    end,
  },
  alternate_300 = {
    allocate = function(self, req)
      return { self:error(req, 300, "Try Alternate",
        { { type = "alternate_server", value = M.ALTERNATE } }) }
    end,
  },
  stale_438 = {
    allocate = first_authenticated(function(self, req)
      self.nonce_n = self.nonce_n + 1
      return { self:challenge(req, 438, "Stale Nonce") }
    end),
  },
  unknown_attr = {
    allocate = function(self, req, bytes)
      if self:check_auth(req, bytes) then return nil end
      self.allocation = true
      return { self:allocate_success(req, self.key, { { type = 0x0042, raw = "odd!" } }) }
    end,
  },
  refresh_lost = {
    refresh = lost_refresh(function(self, req, bytes) return self:refresh(req, bytes) end),
  },
  refresh_438 = {
    refresh = lost_refresh(function(self, req)
      self.nonce_n = self.nonce_n + 1
      return { self:challenge(req, 438, "Stale Nonce") }
    end),
  },
}

---------------------------------------------------------------------------
-- the process

local function serve(dir, names)
  local socket = require "socket"
  local socks, by_sock = {}, {}
  local ports = {}
  for _, name in ipairs(names) do
    local udp = assert(socket.udp())
    assert(udp:setsockname("127.0.0.1", 0))
    local _, port = udp:getsockname()
    socks[#socks + 1] = udp
    by_sock[udp] = { name = name, servers = {} }
    ports[#ports + 1] = name .. " " .. port
  end
  local log = assert(io.open(dir .. "/log", "a"))
  log:setvbuf("line")
  local f = assert(io.open(dir .. "/ports.tmp", "w"))
  f:write(table.concat(ports, "\n"), "\nready\n")
  f:close()
  os.rename(dir .. "/ports.tmp", dir .. "/ports")
  local stop_at = socket.gettime() + 600 -- never outlive a forgotten spec for long
  while socket.gettime() < stop_at do
    local readable = socket.select(socks, nil, 1)
    for _, udp in ipairs(readable or {}) do
      local bytes, ip, port = udp:receivefrom()
      if bytes then
        local entry = by_sock[udp]
        -- one server (allocation state) per client address, as TURN's 5-tuple
        local peer = ip .. ":" .. port
        local srv = entry.servers[peer]
        if not srv then
          srv = M.server(entry.name)
          srv.peer = { ip = ip, port = port }
          entry.servers[peer] = srv
        end
        local before = #srv.log
        local replies = srv:handle(bytes)
        for i = before + 1, #srv.log do
          local e = srv.log[i]
          log:write(("%s %s %s %s %s\n"):format(entry.name, e.method, e.auth and "auth" or "noauth",
            tostring(e.lifetime), peer))
        end
        for _, r in ipairs(replies) do udp:sendto(r, ip, port) end
      end
    end
  end
end

---------------------------------------------------------------------------
-- the spec side

local Mock = {}
Mock.__index = Mock

function Mock:log()
  local sh = require "support.sh"
  local out = {}
  for line in (sh.read_file(self.dir .. "/log") or ""):gmatch("[^\n]+") do
    local scenario, method, auth, lifetime, peer = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    out[#out + 1] = { scenario = scenario, method = method, auth = auth == "auth",
      lifetime = tonumber(lifetime), peer = peer }
  end
  return out
end

-- The log lines of one scenario.
function Mock:requests(scenario)
  local out = {}
  for _, e in ipairs(self:log()) do
    if e.scenario == scenario then out[#out + 1] = e end
  end
  return out
end

function Mock:stop()
  if self.stopped then return end
  self.stopped = true
  local sh = require "support.sh"
  sh.terminate(self.pid, 3)
  sh.rmrf(self.dir)
end

function M.start(names)
  local sh = require "support.sh"
  local dir = sh.tmpdir("stunmock")
  local args = {}
  for i, n in ipairs(names) do
    assert(M.SCENARIOS[n], "stun_mock: no scenario " .. n)
    args[i] = sh.quote(n)
  end
  local ok, out = sh.run_clean(("LUA_PATH='lua/?.lua;spec/?.lua;;' LUA_CPATH='build/5.4/?.so;;'"
    .. " exec lua5.4 spec/support/stun_mock.lua %s %s >%s/out 2>&1 & echo $!")
    :format(sh.quote(dir), table.concat(args, " "), sh.quote(dir)))
  local pid = ok and tonumber(out:match("(%d+)%s*$"))
  assert(pid, "stun_mock: could not start: " .. out)
  local m = setmetatable({ pid = pid, dir = dir, ports = {} }, Mock)
  local deadline = sh.now() + 10
  while true do
    local text = sh.read_file(dir .. "/ports")
    if text and text:find("ready", 1, true) then
      for name, port in text:gmatch("(%S+) (%d+)\n") do m.ports[name] = tonumber(port) end
      return m
    end
    if not sh.alive(pid) or sh.now() > deadline then
      local why = sh.read_file(dir .. "/out") or ""
      m:stop()
      error("stun_mock: did not come up: " .. why, 2)
    end
    sh.sleep(0.05)
  end
end

-- Run as a script: lua5.4 spec/support/stun_mock.lua DIR SCENARIO...
if arg and arg[0] and arg[0]:match("stun_mock%.lua$") and select("#", ...) > 0
  and (...) ~= "support.stun_mock" then
  local dir = arg[1]
  local names = {}
  for i = 2, #arg do names[#names + 1] = arg[i] end
  serve(dir, names)
end

return M
