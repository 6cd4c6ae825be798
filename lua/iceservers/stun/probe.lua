--[[
Probe: does a STUN or TURN server of an ICE server list really answer, and
does it take the credential?  A STUN Binding (RFC 8489) against stun:/stuns:
URLs; against turn:/turns: an Allocate (RFC 8656) with REQUESTED-TRANSPORT
UDP, the 401 challenge, the authenticated Allocate (a 438 retried once with
the new nonce), then a Refresh with LIFETIME 0 so that no probe holds an
allocation on the server.  Three request/response exchanges when nothing is
lost.

  local probe = require "iceservers.stun.probe"
  local r = probe.url("turn:turn.example.com:3478?transport=udp",
    { username = u, credential = p },        -- nil: TURN is probed up to the 401
    { net = net, crypto = require "iceservers.core", now = clock, timeout = 5,
      software = nil, cafile = nil, verify = true })
  local results = probe.list({ { url =, credential = }, ... }, opts)

No sockets and no runtime module here: opts.net opens connections (the
transport contract: net.udp / net.tcp -> conn with send, receive, settimeout,
close; errors start with their stage word), opts.crypto hashes (as for
iceservers.stun.message), opts.now is a monotonic clock in seconds (or
net.now).  The probe blocks only inside conn:send and conn:receive, so a
runtime's scheduler (opts.run, see list) can run many at once.

The result (never a raise for anything the network or a server sends):
  url        the URL as given
  ok         true when the server did what the URL promises
  stage      "done" when ok, else where it failed: "url", "resolve",
             "connect" (also "refused": ICMP port unreachable or TCP RST),
             "tls", "request" (the server's error or a broken answer),
             "timeout"
  code, reason  the server's error code and its reason phrase (control
             characters replaced): only for error responses
  error      one line: "401 Unauthorized", "timeout: no answer within 5 s", ...
  rtt_ms     the first exchange's time, its first transmission to its answer
  elapsed_ms the whole probe (connect and every exchange)
  mapped, relayed  "ip:port" ("[v6]:port") from XOR-MAPPED-ADDRESS (else
             MAPPED-ADDRESS) and XOR-RELAYED-ADDRESS
  lifetime   the allocation's LIFETIME (s)
  exchanges  request/response exchanges that got an answer; sent counts
             transmissions (UDP retransmits included)
  checked    false only when a TURN credential was not put to the test (none
             given: ok means "reachable, credentials not checked"; or the
             server allocated without asking for one)
  released   TURN: true once the Refresh (LIFETIME 0) was answered; when false,
             ok stays true and warning says why (the allocation then expires
             on the server by itself)
  alternate  300: the ALTERNATE-SERVER;  unknown  420: the UNKNOWN-ATTRIBUTES
             ({"0x0019", ...});  software  the server's SOFTWARE, if any

Responses are checked as RFC 8489 §6.3 and §9.2.5 say: another transaction
id, another method, a bad FINGERPRINT or a message that does not decode is
discarded and the client keeps waiting (within the deadline); a success or an
error other than 400, 401, 420 and 438 to an authenticated request needs a
valid MESSAGE-INTEGRITY: on UDP one without is discarded (retransmits go on;
if nothing better comes, the result names the integrity failure, never ok),
on TCP/TLS it ends the probe; unknown comprehension-required attributes in an
accepted response end it too.  Exception: a 437 or 438 to the Refresh counts
as released BEFORE the integrity rule: coturn 4.6.1 sends both without
MESSAGE-INTEGRITY, and all they say is that the allocation is gone (437), or
that an earlier transmission of this Refresh already deleted it (438 to a
retransmitted Refresh); a 438 to a Refresh sent once is a stale nonce: it is
retried once with the new nonce.

UDP retransmits per RFC 8489 §6.2.1: RTO 500 ms, doubling, at most 7
transmissions, the whole probe within opts.timeout (default 5 s, from before
the connection is opened).  TCP and TLS send once and read whole messages by
the header's length.  Long-term credentials only, the key MD5(username ":"
realm ":" password) with MESSAGE-INTEGRITY (HMAC-SHA1): no SHA256, USERHASH
or SASLprep.
]]
local message = require "iceservers.stun.message"
local normalize = require "iceservers.normalize"

local floor, min = math.floor, math.min
local concat = table.concat

local M = {}

M.RTO = 0.5   -- RFC 8489 §6.2.1: the initial retransmission timeout (s)
M.RC = 7      -- transmissions at most
M.RM = 16     -- after the last one, wait RM * RTO
M.TIMEOUT = 5 -- the default for a whole probe (s)

local DEFAULT_PORTS = { stun = 3478, turn = 3478, stuns = 5349, turns = 5349 }
local MAX_TEXT = 160 -- bytes of server text (reason phrases, SOFTWARE) kept

local REASONS = { -- RFC 8489 §14.8, RFC 8656 §18: for a server that sends no phrase
  [300] = "Try Alternate", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [420] = "Unknown Attribute", [437] = "Allocation Mismatch",
  [438] = "Stale Nonce", [440] = "Address Family not Supported",
  [441] = "Wrong Credentials", [442] = "Unsupported Transport Protocol",
  [486] = "Allocation Quota Reached", [500] = "Server Error",
  [508] = "Insufficient Capacity",
}
-- Errors RFC 8489 §9.2.5 lets come without MESSAGE-INTEGRITY.
local NO_MI_NEEDED = { [400] = true, [401] = true, [420] = true, [438] = true }
local FP_TYPE = 0x8028
local UDP = 17

---------------------------------------------------------------------------
-- text

-- Server text as one printable line: control bytes become spaces, at most
-- MAX_TEXT bytes, cut before a UTF-8 continuation byte.
local function clean(s)
  s = tostring(s):gsub("%c", " ")
  if #s > MAX_TEXT then
    local cut = MAX_TEXT
    while cut > 0 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
      cut = cut - 1
    end
    s = s:sub(1, cut) .. "..."
  end
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function hex_types(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = ("0x%04X"):format(t) end
  return out
end

local function ms(seconds)
  return floor(seconds * 10000 + 0.5) / 10
end

local function seconds_text(s)
  return (("%.3f"):format(s):gsub("%.?0+$", ""))
end

---------------------------------------------------------------------------
-- the URL

-- { scheme, host, port, stream, tls, turn, url } or nil, err.
function M.parse(url)
  local u, err = normalize.parse_url(url)
  if not u then return nil, err end
  local tls = u.scheme == "stuns" or u.scheme == "turns"
  local transport = u.transport or (tls and "tcp" or "udp")
  return {
    scheme = u.scheme, host = u.host, port = u.port or DEFAULT_PORTS[u.scheme],
    stream = transport == "tcp", tls = tls, turn = u.turn, url = u.url,
  }
end

---------------------------------------------------------------------------
-- one probe's state: s = { r (the result), stun, net, conn, u, now, t0,
-- deadline, software, cafile, verify, discards = { why -> count } }

local STAGE_WORDS = { resolve = "resolve", connect = "connect", tls = "tls",
  timeout = "timeout", refused = "connect" }

-- A failure from the net ("refused", "tls: ...") as { stage, error }.
local function net_failure(err)
  err = clean(err or "unknown error")
  local stage = STAGE_WORDS[err:match("^(%a+)") or ""]
  if stage then return { stage = stage, error = err } end
  if err == "closed" then err = "the server closed the connection" end
  return { stage = "request", error = "request: " .. err }
end

local function request_failure(fmt, ...)
  return { stage = "request", error = "request: " .. fmt:format(...) }
end

local function timed_out(s)
  local parts, n = {}, 0
  for why, count in pairs(s.discards) do
    parts[#parts + 1] = ("%d %s"):format(count, why)
    n = n + count
  end
  table.sort(parts)
  if s.integrity then -- answers came, but none RFC 8489 lets a client trust
    return request_failure("%s (%d discarded%s)", s.integrity, n,
      #parts > 1 and ": " .. concat(parts, ", ") or "")
  end
  local text = "timeout: no answer within " .. seconds_text(s.timeout) .. " s"
  if n > 0 then
    text = ("timeout: no valid answer within %s s (discarded: %s)")
      :format(seconds_text(s.timeout), concat(parts, ", "))
  end
  return { stage = "timeout", error = text }
end

local function discard(s, why)
  s.discards[why] = (s.discards[why] or 0) + 1
end

-- The server's error response as a failure: code, reason, a one-line error.
local function server_failure(msg)
  local ec = msg.attrs.error_code
  local reason = clean(ec.reason)
  local f = { stage = "request", code = ec.code, reason = reason,
    error = ec.code .. " " .. (reason ~= "" and reason or REASONS[ec.code] or "Error") }
  local alt = msg.attrs.alternate_server
  if ec.code == 300 and alt then
    f.alternate = message.format_address(alt)
    f.error = f.error .. " (alternate server " .. f.alternate .. ")"
  end
  local unknown = msg.attrs.unknown_attributes
  if ec.code == 420 and unknown and #unknown > 0 then
    f.unknown = hex_types(unknown)
    f.error = f.error .. " (unknown attributes: " .. concat(f.unknown, ", ") .. ")"
  end
  return f
end

---------------------------------------------------------------------------
-- one transaction

local function has_fingerprint(msg)
  for _, e in ipairs(msg.list) do
    if e.type == FP_TYPE then return true end
  end
  return false
end

-- What to do with bytes that came while waiting for the answer to `req`:
-- "discard", why | "fail", failure | "accept", msg.
local function judge(s, bytes, req)
  local msg, err = message.decode(bytes)
  if not msg then return "discard", "malformed (" .. clean(err) .. ")" end
  if msg.tid ~= req.tid then return "discard", "with another transaction id" end
  if msg.method ~= req.method or (msg.class ~= "success" and msg.class ~= "error") then
    return "discard", "not a response to the request"
  end
  if has_fingerprint(msg) and not s.stun.check_fingerprint(bytes, msg) then
    return "discard", "with a bad FINGERPRINT"
  end
  local ec = msg.attrs.error_code
  if msg.class == "error" and not ec then
    return "fail", request_failure("an error response without ERROR-CODE")
  end
  local code = ec and ec.code
  if msg.class == "error" and req.done_codes and req.done_codes[code] then
    return "accept", msg -- before the integrity rule: see the header
  end
  if req.key and not (msg.class == "error" and NO_MI_NEEDED[code]) then
    if not s.stun.check_integrity(bytes, msg, req.key) then
      local what = msg.class == "success" and "the success response" or ("the %d response")
        :format(code)
      local why = ("%s has %s MESSAGE-INTEGRITY"):format(what,
        msg.attrs.message_integrity and "a wrong" or "no")
      if s.u.stream then return "fail", request_failure("%s", why) end
      s.integrity = why
      return "discard", "failing MESSAGE-INTEGRITY"
    end
  end
  if #msg.unknown > 0 then
    return "fail", request_failure("unknown comprehension-required attributes in the response: %s",
      concat(hex_types(msg.unknown), ", "))
  end
  return "accept", msg
end

-- Reads one message from a stream by the header's length: bytes or nil, err.
local function receive_frame(s)
  local header, err = s.conn:receive(20)
  if not header then return nil, err end
  local n, bad = message.frame_length(header)
  if not n then return nil, "not a STUN stream: " .. bad end
  if n == 0 then return header end
  local left = s.deadline - s.now()
  if left <= 0 then return nil, "timeout" end
  s.conn:settimeout(left)
  local body, err2 = s.conn:receive(n)
  if not body then return nil, err2 end
  return header .. body
end

local function send(s, req)
  s.r.sent = s.r.sent + 1
  local ok, err = s.conn:send(req.bytes)
  if not ok then return net_failure(err) end
  return nil
end

-- Sends req (retransmitting on UDP) until an answer is accepted: msg,
-- transmissions; or nil, failure.
local function transact(s, req)
  local sends, rto, wait_until, first_sent = 0, M.RTO, nil, nil
  while true do
    local t = s.now()
    if t >= s.deadline then return nil, timed_out(s) end
    if sends == 0 or (not s.u.stream and t >= wait_until and sends < M.RC) then
      local f = send(s, req)
      if f then return nil, f end
      sends = sends + 1
      first_sent = first_sent or t
      wait_until = t + (sends == M.RC and M.RTO * M.RM or rto)
      rto = rto * 2
    elseif not s.u.stream and t >= wait_until then
      return nil, timed_out(s) -- RFC 8489: the transaction failed before the deadline
    end
    local wait = s.u.stream and s.deadline - t or min(wait_until, s.deadline) - t
    s.conn:settimeout(wait)
    local bytes, err
    if s.u.stream then bytes, err = receive_frame(s) else bytes, err = s.conn:receive() end
    if bytes then
      local verdict, v = judge(s, bytes, req)
      if verdict == "accept" then
        s.r.exchanges = s.r.exchanges + 1
        s.r.rtt_ms = s.r.rtt_ms or ms(s.now() - first_sent)
        local soft = v.attrs.software
        if soft and not s.r.software then s.r.software = clean(soft) end
        return v, sends
      elseif verdict == "fail" then
        return nil, v
      end
      discard(s, v)
    elseif not tostring(err):match("^timeout") then
      if s.u.stream and tostring(err):match("^not a STUN stream") then
        return nil, request_failure("%s", clean(err))
      end
      return nil, net_failure(err)
    elseif s.u.stream then
      return nil, timed_out(s)
    end
  end
end

-- A request of `method` with these attributes (and SOFTWARE, MESSAGE-INTEGRITY
-- when auth, FINGERPRINT), then its transaction.
local function request(s, method, list, auth, done_codes)
  local attrs = {}
  if s.software then attrs[1] = { type = "software", value = s.software } end
  for _, a in ipairs(list) do attrs[#attrs + 1] = a end
  if auth then
    attrs[#attrs + 1] = { type = "username", value = auth.username }
    attrs[#attrs + 1] = { type = "realm", value = auth.realm }
    attrs[#attrs + 1] = { type = "nonce", value = auth.nonce }
  end
  local tid = s.stun.new_tid()
  local bytes = s.stun.encode({ method = method, class = "request", tid = tid, list = attrs },
    { key = auth and auth.key, fingerprint = true })
  s.integrity = nil -- what failed is told about the transaction it failed in
  s.discards = {}
  return transact(s, { bytes = bytes, tid = tid, method = message.METHODS[method],
    key = auth and auth.key, done_codes = done_codes })
end

---------------------------------------------------------------------------
-- STUN

local function binding(s)
  local msg, f = request(s, "binding", {})
  if not msg then return f end
  if msg.class == "error" then return server_failure(msg) end
  local a = msg.attrs.xor_mapped_address or msg.attrs.mapped_address
  if not a then return request_failure("the Binding success has no mapped address") end
  s.r.mapped = message.format_address(a)
  return nil
end

---------------------------------------------------------------------------
-- TURN

local ALLOCATE = { { type = "requested_transport", value = UDP } }
local REFRESH_DONE = { [437] = true, [438] = true }

local function code_of(msg)
  return msg.class == "error" and msg.attrs.error_code.code or nil
end

-- Takes the nonce (and realm) of a 401 or 438; false when one is missing.
local function take_challenge(s, auth, msg)
  local realm, nonce = msg.attrs.realm or (auth and auth.realm), msg.attrs.nonce
  if not realm or not nonce then return false end
  auth.realm, auth.nonce = realm, nonce
  if auth.password then auth.key = s.stun.long_term_key(auth.username, realm, auth.password) end
  return true
end

-- Refresh with LIFETIME 0: deletes the allocation.  Sets released/warning.
local function release(s, auth)
  for attempt = 1, 2 do
    local msg, f_or_sends = request(s, "refresh", { { type = "lifetime", value = 0 } }, auth,
      REFRESH_DONE)
    if not msg then
      s.r.warning = "refresh: " .. f_or_sends.error
      return
    end
    local code = code_of(msg)
    if not code or code == 437 or (code == 438 and f_or_sends > 1) then
      s.r.released = true
      return
    end
    if code ~= 438 or attempt == 2 or not auth or not take_challenge(s, auth, msg) then
      s.r.warning = "refresh: " .. server_failure(msg).error
      return
    end
  end
end

local function allocated(s, msg, auth)
  local relayed = msg.attrs.xor_relayed_address
  if not relayed then return request_failure("the Allocate success has no XOR-RELAYED-ADDRESS") end
  s.r.relayed = message.format_address(relayed)
  local mapped = msg.attrs.xor_mapped_address
  s.r.mapped = mapped and message.format_address(mapped) or nil
  s.r.lifetime = msg.attrs.lifetime
  s.r.released = false
  release(s, auth)
  return nil
end

local function turn(s, credential)
  local msg, f = request(s, "allocate", ALLOCATE)
  if not msg then return f end
  if msg.class == "success" then -- a server without authentication
    s.r.checked = false
    s.r.reason = "allocated without credentials"
    return allocated(s, msg, nil)
  end
  local code = code_of(msg)
  if code == 437 then -- see run: an allocation of an earlier socket on this port
    local fail = server_failure(msg)
    fail.stale_port = true
    return fail
  end
  if code ~= 401 then return server_failure(msg) end
  local auth = credential and { username = credential.username, password = credential.credential }
    or {}
  if not take_challenge(s, auth, msg) then
    local fail = server_failure(msg)
    fail.error = fail.error .. " (the challenge has no REALM or NONCE)"
    return fail
  end
  if not credential then
    s.r.checked = false
    s.r.reason = "reachable, credentials not checked"
    return nil
  end
  for attempt = 1, 2 do
    msg, f = request(s, "allocate", ALLOCATE, auth)
    if not msg then return f end
    if code_of(msg) ~= 438 or attempt == 2 then break end
    if not take_challenge(s, auth, msg) then return server_failure(msg) end
  end
  if msg.class == "error" then
    local fail = server_failure(msg)
    -- 437 to our own Allocate: most likely its success was lost and a
    -- retransmit met the allocation it made; delete that one too.
    if fail.code == 437 then release(s, auth) end
    return fail
  end
  return allocated(s, msg, auth)
end

---------------------------------------------------------------------------
-- the API

local stun_for = setmetatable({}, { __mode = "k" })

local function check_opts(opts)
  if type(opts) ~= "table" then error("probe: opts must be a table", 3) end
  local net = opts.net
  if type(net) ~= "table" or type(net.udp) ~= "function" or type(net.tcp) ~= "function" then
    error("probe: opts.net must have udp and tcp functions", 3)
  end
  local now = opts.now or net.now
  if type(now) ~= "function" then error("probe: opts.now (a monotonic clock) is required", 3) end
  local timeout = opts.timeout or M.TIMEOUT
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 then
    error("probe: opts.timeout must be a positive number", 3)
  end
  if opts.software ~= nil and type(opts.software) ~= "string" then
    error("probe: opts.software must be a string", 3)
  end
  local crypto = opts.crypto
  local stun = type(crypto) == "table" and stun_for[crypto]
  if not stun then
    local ok, made = pcall(message.new, crypto)
    if not ok then error("probe: opts.crypto: " .. tostring(made), 3) end
    stun = made
    if type(crypto) == "table" then stun_for[crypto] = stun end
  end
  return now, timeout, stun
end

local function check_credential(credential)
  if credential == nil then return end
  if type(credential) ~= "table" or type(credential.username) ~= "string"
    or type(credential.credential) ~= "string" then
    error("probe: credential must be { username = string, credential = string } or nil", 3)
  end
end

local function open(s)
  local u = s.u
  local conn, err
  local left = s.deadline - s.now()
  if u.stream then
    local is_ip = message.ip_bytes(u.host) ~= nil
    conn, err = s.net.tcp(u.host, u.port, { timeout = left, tls = u.tls,
      sni = u.tls and not is_ip and u.host or nil, verify = s.verify, cafile = s.cafile })
  else
    conn, err = s.net.udp(u.host, u.port, { timeout = left })
  end
  if not conn then return nil, net_failure(err) end
  return conn
end

-- A 437 to the first Allocate of a new socket means the server still holds
-- an allocation for this address and port: the system gave us the port of
-- an earlier socket again (probes in a row do that, now and then).  Once
-- more from another port, then; r.retried says so.
local function run(s, credential)
  for attempt = 1, 2 do
    local conn, f = open(s)
    if not conn then return f end
    s.conn = conn
    if not s.u.turn then return binding(s) end
    f = turn(s, credential)
    if not (f and f.stale_port) then return f end
    f.stale_port = nil
    if attempt == 2 then return f end
    conn:close()
    s.conn = nil
    s.r.retried = true
  end
end

function M.url(url, credential, opts)
  local now, timeout, stun = check_opts(opts)
  check_credential(credential)
  local t0 = now()
  local r = { url = url, ok = false, exchanges = 0, sent = 0, checked = true }
  local u, err = M.parse(url)
  if not u then
    r.stage, r.error = "url", "url: " .. clean(err)
    return r
  end
  if not u.turn then credential = nil end
  local s = { r = r, u = u, stun = stun, net = opts.net, now = now, timeout = timeout,
    deadline = t0 + timeout, software = opts.software, cafile = opts.cafile,
    verify = opts.verify, discards = {} }
  local fail = run(s, credential)
  if s.conn then s.conn:close() end
  if fail then
    for k, v in pairs(fail) do r[k] = v end
  else
    r.ok, r.stage = true, "done"
  end
  r.elapsed_ms = ms(now() - t0)
  return r
end

-- Probes every item ({ url =, credential = }) and returns the results in the
-- same order.  opts.run(tasks) -> results runs the tasks (functions that
-- return a result) at once: the runtime's scheduler (ngx threads, or
-- coroutines over socket.select); without it they run one after another.
function M.list(items, opts)
  if type(items) ~= "table" then error("probe.list: items must be a list", 2) end
  check_opts(opts)
  local tasks = {}
  for i, item in ipairs(items) do
    if type(item) ~= "table" then error("probe.list: item " .. i .. " is not a table", 2) end
    check_credential(item.credential)
    tasks[i] = function() return M.url(item.url, item.credential, opts) end
  end
  if opts.run then return opts.run(tasks) end
  local results = {}
  for i, task in ipairs(tasks) do results[i] = task() end
  return results
end

return M
