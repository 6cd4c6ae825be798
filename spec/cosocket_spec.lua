-- iceservers.transport.cosocket, run inside a real nginx (a content handler
-- of spec/support/ngx_mock.lua calls it and answers the result as JSON),
-- against the same HTTPS mocks as the libcurl client, core.http_request: the
-- same status, headers and body; TLS verification by nginx's trusted CA, SNI,
-- the IP-literal refusal; timeouts, max_body, resolve and keep-alive.
local core = require "iceservers.core"
local cjson = require "cjson"
local nginx = require "support.nginx"
local sh = require "support.sh"

local MOCK = [[
  location = /t/close {
    chunked_transfer_encoding off;
    content_by_lua_file ${root}/spec/support/ngx_mock.lua;
  }
  location / { content_by_lua_file ${root}/spec/support/ngx_mock.lua; }
]]

-- Headers that may differ between two answers of the same resource.
local VOLATILE = { date = true }

describe("iceservers.transport.cosocket in nginx", function()
  local srv   -- the mocks, and /run with this nginx trusting the test CA
  local wrong -- /run in an nginx that trusts another CA
  local other_dir

  lazy_setup(function()
    srv = nginx.start{
      http = [[
        lua_shared_dict ngx_mock 1m;
        lua_ssl_trusted_certificate ${ca_file};
        lua_ssl_verify_depth 4;
      ]],
      server = MOCK,
      names = { "keepalive.test" }, -- for the keep-alive test alone
    }
    other_dir = sh.tmpdir("otherca")
    local ok, out = sh.run_clean(("set -e; cd %s; "
      .. "openssl ecparam -name prime256v1 -genkey -noout -out ca.key; "
      .. "openssl req -x509 -new -key ca.key -sha256 -days 3 -subj '/CN=another CA' "
      .. "-addext 'basicConstraints=critical,CA:TRUE' -out ca.crt"):format(sh.quote(other_dir)))
    assert(ok, out)
    wrong = nginx.start{
      tls = false,
      http = ([[
        lua_shared_dict ngx_mock 1m;
        lua_ssl_trusted_certificate %s/ca.crt;
      ]]):format(other_dir),
      server = MOCK,
    }
  end)

  lazy_teardown(function()
    if wrong then wrong:stop() end
    if srv then srv:stop() end
    if other_dir then sh.rmrf(other_dir) end
  end)

  -- Runs requests, in order, in one handler of `server` (default srv).
  local function run(reqs, server)
    local res, err = core.http_request{ method = "POST", url = (server or srv):url("/run"),
      body = cjson.encode(reqs), timeout = 30 }
    assert(res, err)
    assert.are.equal(200, res.status, res.body)
    return cjson.decode(res.body)
  end

  -- One request through the cosocket transport: res, err, the whole result.
  local function cos(req, server)
    local r = run({ req }, server)[1]
    assert.is_nil(r.raised)
    return r.res, r.err, r
  end

  -- The same request through libcurl, trusting the test CA.
  local function curl(req)
    local r = { cafile = srv.ca_file }
    for k, v in pairs(req) do r[k] = v end
    return core.http_request(r)
  end

  local function tls_url(path, host)
    return ("https://%s:%d%s"):format(host or "mock.test", srv.tls_port, path)
  end

  local function pin(host, port)
    return { [(host or "mock.test") .. ":" .. (port or srv.tls_port)] = "127.0.0.1" }
  end

  local function without_volatile(headers)
    local out = {}
    for k, v in pairs(headers) do
      if not VOLATILE[k] then out[k] = v end
    end
    return out
  end

  -- Both transports on req: the same answer; returns the cosocket's.
  local function same(req)
    local a, aerr = cos(req)
    local b, berr = curl(req)
    assert.is_nil(aerr)
    assert.is_nil(berr)
    assert.are.equal(b.status, a.status)
    assert.are.equal(b.body, a.body)
    assert.are.same(without_volatile(b.headers), without_volatile(a.headers))
    for name in pairs(a.headers) do assert.are.equal(name:lower(), name) end
    return a
  end

  describe("gives the same answer as core.http_request", function()
    it("for a JSON 200", function()
      local res = same{ url = tls_url("/t/json"), resolve = pin() }
      assert.are.equal(200, res.status)
      assert.are.equal('{"ok":true,"n":42}', res.body)
      assert.are.equal("json", res.headers["x-mock"])
      assert.are.equal("application/json", res.headers["content-type"])
    end)

    it("for a 404", function()
      local res = same{ url = tls_url("/t/404"), resolve = pin() }
      assert.are.equal(404, res.status)
      assert.are.equal("nothing here", res.body)
    end)

    it("for a chunked body", function()
      local res = same{ url = tls_url("/t/chunked"), resolve = pin() }
      assert.are.equal("chunked", res.headers["transfer-encoding"])
      assert.is_nil(res.headers["content-length"])
      assert.are.equal("first piece, second piece, last piece", res.body)
      res = same{ url = srv:url("/t/bigchunked?n=40000") }
      assert.are.equal(string.rep("y", 40000), res.body)
    end)

    it("for a Content-Length body, empty or not", function()
      for _, n in ipairs { 100000, 1, 0 } do
        local res = same{ url = tls_url("/t/length?n=" .. n), resolve = pin() }
        assert.are.equal(tostring(n), res.headers["content-length"])
        assert.are.equal(string.rep("x", n), res.body)
      end
    end)

    it("for a HEAD and a 204, without a body", function()
      local res = same{ method = "HEAD", url = tls_url("/t/length?n=10"), resolve = pin() }
      assert.are.equal("10", res.headers["content-length"])
      assert.are.equal("", res.body)
      res = same{ url = tls_url("/t/204"), resolve = pin() }
      assert.are.equal(204, res.status)
      assert.are.equal("204", res.headers["x-mock"])
      assert.are.equal("", res.body)
    end)

    it("after a 100 Continue (Expect: 100-continue)", function()
      local res = assert(cos{ method = "POST", url = srv:url("/t/echo"), body = "payload",
        headers = { Expect = "100-continue" } })
      assert.are.equal(200, res.status)
      assert.are.equal("payload", cjson.decode(res.body).body)
    end)

    it("for a body that ends when the connection closes", function()
      local res = same{ url = srv:url("/t/close?n=5000") }
      assert.is_nil(res.headers["content-length"])
      assert.is_nil(res.headers["transfer-encoding"])
      assert.are.equal("until the connection closes: " .. string.rep("z", 5000), res.body)
    end)

    it("for a POST with request headers and a body", function()
      local req = { method = "POST", url = tls_url("/t/echo?a=1&b=%20"), resolve = pin(),
        body = "x=1&y=two", headers = { ["Content-Type"] = "application/x-www-form-urlencoded",
          ["X-Test"] = "value with spaces" } }
      local a, b = assert(cos(req)), assert(curl(req))
      local ea, eb = cjson.decode(a.body), cjson.decode(b.body)
      for _, k in ipairs { "method", "uri", "body" } do assert.are.equal(eb[k], ea[k]) end
      for _, h in ipairs { "host", "content-type", "content-length", "x-test", "user-agent" } do
        assert.are.equal(eb.headers[h], ea.headers[h], h)
      end
      assert.are.equal("POST", ea.method)
      assert.are.equal("x=1&y=two", ea.body)
      assert.are.equal("mock.test:" .. srv.tls_port, ea.headers.host)
      assert.matches("^iceservers/", ea.headers["user-agent"])
    end)
  end)

  describe("TLS", function()
    -- Repeated: a handshake on loopback often completes at once, the path on
    -- which older lua-resty-core raised instead of returning the failure.
    local function fail_each(req, n, server, pattern)
      local reqs = {}
      for i = 1, n do reqs[i] = req end
      for _, r in ipairs(run(reqs, server)) do
        assert.is_nil(r.raised, r.raised)
        assert.is_nil(r.res)
        assert.matches(pattern, r.err)
        assert.matches("certificate", r.err)
      end
    end

    it("fails verification when nginx does not trust the server's CA", function()
      local req = { url = tls_url("/t/json"), resolve = pin() }
      fail_each(req, 10, wrong, "^GET https://mock%.test:" .. srv.tls_port
        .. "/%.%.%.: TLS handshake failed: ")
      -- libcurl, trusting that other CA, fails as well; the trusting nginx does not
      local cres, cerr = core.http_request{ url = req.url, resolve = req.resolve,
        cafile = other_dir .. "/ca.crt" }
      assert.is_nil(cres)
      assert.matches("certificate", cerr)
      assert.are.equal(200, assert(cos(req)).status)
    end)

    it("checks the name against the certificate", function()
      local req = { url = tls_url("/t/json", "other.test"), resolve = pin("other.test") }
      fail_each(req, 10, srv, "^GET https://other%.test:%d+/%.%.%.: TLS handshake failed: ")
      assert.is_nil(curl(req))
    end)

    it("sends the URL's host name as SNI", function()
      for _, host in ipairs { "mock.test", "localhost" } do
        local res = same{ url = tls_url("/t/sni", host), resolve = pin(host) }
        assert.are.equal(host, res.body)
      end
    end)

    it("refuses an https URL with an IP address unless verify = false", function()
      local url = tls_url("/t/json", "127.0.0.1")
      local res, err = cos{ url = url }
      assert.is_nil(res)
      assert.are.equal(("GET https://127.0.0.1:%d/...: nginx verifies TLS certificates by "
        .. "name only, so an https URL with an IP address cannot be verified; use a host name "
        .. "(and resolve to pin its address)"):format(srv.tls_port), err)
      res, err = cos{ url = ("https://[::1]:%d/t/json"):format(srv.tls_port), method = "POST" }
      assert.is_nil(res)
      assert.matches("^POST https://%[::1%]:%d+/%.%.%.: nginx verifies TLS certificates", err)
      -- (libcurl checks the certificate's IP address entry)
      assert.are.equal(200, assert(curl{ url = url }).status)
      res = assert(cos{ url = url, verify = false })
      assert.are.equal('{"ok":true,"n":42}', res.body)
      -- plain http to an address is fine
      assert.are.equal(200, assert(cos{ url = srv:url("/t/json") }).status)
    end)
  end)

  describe("limits and failures", function()
    it("times out on a server that never answers, as libcurl says it", function()
      local url = srv:silent_url("/v1?apiKey=SEKRIT-in-query")
      local t0 = nginx.now()
      local res, err, r = cos{ url = url, timeout = 1,
        headers = { Authorization = "Bearer SEKRIT-in-header" } }
      local outside = nginx.now() - t0
      assert.is_nil(res)
      local _, cerr = curl{ url = url, timeout = 1 }
      assert.are.equal(("GET http://127.0.0.1:%d/...: timed out after 1000 ms")
        :format(srv.silent_port), err)
      assert.are.equal(cerr, err)
      assert.is_true(r.elapsed >= 0.9 and r.elapsed < 2.5, "took " .. r.elapsed .. " s")
      assert.is_true(outside < 5, "the handler took " .. outside .. " s")
      assert.is_nil(err:find("SEKRIT", 1, true))
    end)

    it("bounds the whole request: a body that stalls times out too", function()
      local req = { url = tls_url("/t/stall"), resolve = pin(), timeout = 1 }
      local res, err, r = cos(req)
      assert.is_nil(res)
      local _, cerr = curl(req)
      assert.are.equal(cerr, err)
      assert.matches("timed out after 1000 ms$", err)
      assert.is_true(r.elapsed >= 0.9 and r.elapsed < 2.5, "took " .. r.elapsed .. " s")
    end)

    it("fails a body over max_body, whatever delimits it, as libcurl says it", function()
      for _, case in ipairs {
        { tls_url("/t/length?n=5000"), 5000 },
        { tls_url("/t/bigchunked?n=4000"), 4000 },
        { srv:url("/t/close?n=5000"), 5029 },
      } do
        local url, size = case[1], case[2]
        local res, err = cos{ url = url, resolve = pin(), max_body = size - 1 }
        assert.is_nil(res, url)
        local _, cerr = curl{ url = url, resolve = pin(), max_body = size - 1 }
        assert.are.equal(cerr, err)
        assert.matches("response body over max_body %(" .. (size - 1) .. " bytes%)$", err)
        res, err = cos{ url = url, resolve = pin(), max_body = size }
        assert.is_nil(err)
        assert.are.equal(size, #res.body)
      end
    end)

    it("returns one clean line for a refused connection", function()
      local port = nginx.free_port()
      local res, err = cos{ url = ("http://127.0.0.1:%d/x?k=SEKRIT"):format(port) }
      assert.is_nil(res)
      assert.matches("^GET http://127%.0%.0%.1:" .. port .. "/%.%.%.: connect failed: ", err)
      assert.is_nil(err:find("[\r\n]"))
      assert.is_nil(err:find("SEKRIT", 1, true))
    end)

    it("raises for a malformed request, as libcurl's client does", function()
      local r = run{ { url = srv:url("/t/json"), method = "get" } }[1]
      assert.matches("req%.method", r.raised)
      r = run{ { url = srv:url("/t/json"), timeout = "1" } }[1]
      assert.matches("req%.timeout", r.raised)
    end)
  end)

  describe("resolve", function()
    it("connects a made-up name to the address given (nginx ignores /etc/hosts)", function()
      local res, err = cos{ url = tls_url("/t/sni"), timeout = 2 }
      assert.is_nil(res)
      assert.matches("mock%.test", err)
      res = assert(cos{ url = tls_url("/t/sni"), resolve = pin() })
      assert.are.equal("mock.test", res.body)
      -- an entry for another port is not used
      res = cos{ url = ("http://mock.test:%d/t/json"):format(srv.port), resolve = pin(),
        timeout = 2 }
      assert.is_nil(res)
      res = assert(cos{ url = ("http://mock.test:%d/t/json"):format(srv.port),
        resolve = pin("mock.test", srv.port) })
      assert.are.equal(200, res.status)
    end)
  end)

  describe("keep-alive", function()
    it("reuses a connection for the next request to the same place", function()
      -- a name no other test uses, so the connection pools start empty
      local H = "keepalive.test"
      local https = { url = tls_url("/t/conn", H), resolve = pin(H) }
      local http = { url = ("http://%s:%d/t/conn"):format(H, srv.port), resolve = pin(H, srv.port) }
      local close = { url = ("http://%s:%d/t/close?n=1"):format(H, srv.port),
        resolve = pin(H, srv.port) }
      local out = run{ https, https, http, http, close, http }
      local bodies = {}
      for i, r in ipairs(out) do
        assert.is_nil(r.err, r.err)
        bodies[i] = r.res.body
      end
      bodies[5] = nil
      assert.are.same({ "1", "2", "1", "2", nil, "1" }, bodies)
      assert.are.equal("2", out[2].res.headers["x-conn-requests"])
    end)
  end)

  describe("iceservers.transport.auto()", function()
    it("takes the cosocket inside a content handler", function()
      local r = run{ { via = "auto", url = tls_url("/t/json", "127.0.0.1") },
        { via = "auto", url = tls_url("/t/json"), resolve = pin() } }
      assert.is_true(r[1].in_cosocket_phase)
      assert.matches("nginx verifies TLS certificates by name only", r[1].err)
      assert.are.equal(200, r[2].res.status)
    end)
  end)
end)
