-- core.http_request and core.http_client against a real nginx on loopback
-- (spec/support/nginx.lua): statuses, headers, bodies, TLS, resolve, limits,
-- timeouts, connection reuse, misuse, and error messages that keep secrets.
local core = require "iceservers.core"
local cjson = require "cjson"
local nginx = require "support.nginx"

local BIG = 4096 -- bytes served by /big and /big-chunked

local SERVER = [[
    location = /hello { add_header X-Test yes; return 200 "hello world"; }
    location = /missing { return 404 "no such thing"; }
    location = /boom { return 500 "boom"; }
    location = /redirect { return 302 /hello; }
    location = /method {
      add_header X-Method $request_method always;
      return 200 "$request_method";
    }
    location = /conn {
      add_header X-Conn-Requests $connection_requests always;
      return 200 "ok";
    }
    location = /big {
      content_by_lua_block {
        ngx.header["Content-Length"] = ]] .. BIG .. [[
        ngx.print(string.rep("x", ]] .. BIG .. [[))
      }
    }
    location = /big-chunked {
      content_by_lua_block {
        for _ = 1, 4 do
          ngx.print(string.rep("y", ]] .. BIG / 4 .. [[))
          ngx.flush(true)
        end
      }
    }
    location = /echo {
      content_by_lua_block {
        local cjson = require "cjson"
        ngx.req.read_body()
        ngx.header["Content-Type"] = "application/json"
        ngx.print(cjson.encode({
          method = ngx.req.get_method(),
          uri = ngx.var.request_uri,
          headers = ngx.req.get_headers(200),
          body = ngx.req.get_body_data() or "",
        }))
      }
    }
]]

local SECRETS = { "SEKRIT123", "apiKey", "TOPSECRET456", "BODYSECRET789" }

local function assert_no_secrets(err)
  assert.is_string(err)
  for _, s in ipairs(SECRETS) do
    assert.is_nil(err:find(s, 1, true), "error message leaks " .. s .. ": " .. err)
  end
end

-- Runs f and returns the seconds it took plus everything it returned.
local function timed(f, ...)
  local t0 = nginx.now()
  local res, err = f(...)
  return nginx.now() - t0, res, err
end

describe("iceservers.core HTTP against nginx", function()
  local srv

  lazy_setup(function()
    srv = nginx.start{ server = SERVER }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
  end)

  local function echo(req)
    local res, err = core.http_request(req)
    assert.is_nil(err)
    assert.are.equal(200, res.status, res.body)
    return cjson.decode(res.body), res
  end

  describe("responses", function()
    it("returns 200 with the body and lower-cased response headers", function()
      local res, err = core.http_request{ url = srv:url("/hello") }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal("hello world", res.body)
      assert.are.equal("yes", res.headers["x-test"])
      assert.are.equal("11", res.headers["content-length"])
      assert.matches("^nginx", res.headers.server)
      for name in pairs(res.headers) do
        assert.are.equal(name:lower(), name)
      end
    end)

    it("returns 404 and 500 as responses, not errors", function()
      local res, err = core.http_request{ url = srv:url("/missing") }
      assert.is_nil(err)
      assert.are.equal(404, res.status)
      assert.are.equal("no such thing", res.body)
      res, err = core.http_request{ url = srv:url("/boom") }
      assert.is_nil(err)
      assert.are.equal(500, res.status)
      assert.are.equal("boom", res.body)
    end)

    it("does not follow a redirect", function()
      local res, err = core.http_request{ url = srv:url("/redirect") }
      assert.is_nil(err)
      assert.are.equal(302, res.status)
      assert.matches("/hello$", res.headers.location)
      assert.are_not.equal("hello world", res.body)
    end)

    it("sends POST with its body and request headers intact", function()
      -- over 1 MiB: libcurl would add "Expect: 100-continue" unless told not to
      local body = "a\0b=c&d=\226\130\172\r\n" .. string.rep("z", 1100000)
      local got = echo{
        method = "POST", url = srv:url("/echo?x=1&y=%20"), body = body, max_body = 4e6,
        headers = {
          ["Content-Type"] = "application/x-www-form-urlencoded",
          ["X-Api-Key"] = "k-123 with spaces",
          ["X-Empty"] = "",
        },
      }
      assert.are.equal("POST", got.method)
      assert.are.equal("/echo?x=1&y=%20", got.uri)
      assert.are.equal(#body, #got.body)
      assert.are.equal(body, got.body)
      assert.are.equal("application/x-www-form-urlencoded", got.headers["content-type"])
      assert.are.equal("k-123 with spaces", got.headers["x-api-key"])
      assert.are.equal("", got.headers["x-empty"])
      assert.are.equal(tostring(#body), got.headers["content-length"])
      assert.matches("^iceservers/", got.headers["user-agent"])
      assert.is_nil(got.headers.expect)
    end)

    it("sends POST without a body as an empty POST", function()
      local got = echo{ method = "POST", url = srv:url("/echo") }
      assert.are.equal("POST", got.method)
      assert.are.equal("", got.body)
      assert.are.equal("0", got.headers["content-length"])
    end)

    it("sends HEAD, PUT, DELETE and PATCH as given", function()
      local res, err = core.http_request{ method = "HEAD", url = srv:url("/method") }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal("HEAD", res.headers["x-method"])
      assert.are.equal("", res.body)

      local got = echo{ method = "PUT", url = srv:url("/echo"), body = "put body" }
      assert.are.equal("PUT", got.method)
      assert.are.equal("put body", got.body)

      for _, m in ipairs{ "DELETE", "PATCH", "GET" } do
        res, err = core.http_request{ method = m, url = srv:url("/method") }
        assert.is_nil(err)
        assert.are.equal(m, res.body)
        assert.are.equal(m, res.headers["x-method"])
      end
    end)

    it("fails a body over max_body, with or without a Content-Length", function()
      for _, path in ipairs{ "/big", "/big-chunked" } do
        local res, err = core.http_request{ url = srv:url(path), max_body = BIG - 1 }
        assert.is_nil(res, path)
        assert.matches("max_body", err)
        assert.matches("127.0.0.1", err)
        assert.is_nil(err:find("xxxx", 1, true))
        assert.is_nil(err:find("yyyy", 1, true))
        -- exactly at the limit is fine
        res, err = core.http_request{ url = srv:url(path), max_body = BIG }
        assert.is_nil(err)
        assert.are.equal(BIG, #res.body)
      end
    end)
  end)

  describe("https", function()
    it("verifies the server against the test CA given as cafile", function()
      local res, err = core.http_request{ url = srv:tls_url("/hello"), cafile = srv.ca_file }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal("hello world", res.body)
      assert.are.equal("yes", res.headers["x-test"])
    end)

    it("fails verification without the test CA", function()
      -- loading the system bundle under valgrind on a busy machine can take
      -- longer than the default 5 s
      local slow = os.getenv("ICESERVERS_SLOW") and 60 or 10
      local res, err = core.http_request{ url = srv:tls_url("/hello"), timeout = slow,
        connect_timeout = slow }
      assert.is_nil(res)
      assert.matches("certificate", err)
      assert.matches("localhost", err)
    end)

    it("does not verify with verify = false", function()
      local res, err = core.http_request{ url = srv:tls_url("/hello"), verify = false }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal("hello world", res.body)
    end)

    it("connects to the resolve address and verifies the name in the URL", function()
      local hostport = "mock.test:" .. srv.tls_port
      local res, err = core.http_request{
        url = srv:tls_url("/hello", "mock.test"), cafile = srv.ca_file,
        resolve = { [hostport] = "127.0.0.1" },
      }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal("hello world", res.body)
    end)

    it("cannot reach a made-up name without resolve", function()
      local res, err = core.http_request{
        url = srv:tls_url("/hello", "mock.test"), cafile = srv.ca_file,
        timeout = 2, connect_timeout = 1,
      }
      assert.is_nil(res)
      assert.matches("mock.test", err)
    end)

    it("rejects a resolved name the certificate does not cover", function()
      local res, err = core.http_request{
        url = srv:tls_url("/hello", "other.test"), cafile = srv.ca_file,
        resolve = { ["other.test:" .. srv.tls_port] = "127.0.0.1" },
      }
      assert.is_nil(res)
      assert.matches("other.test", err)
    end)
  end)

  describe("failures", function()
    it("times out on a server that accepts but never answers", function()
      local elapsed, res, err = timed(core.http_request, { url = srv:silent_url("/"), timeout = 1 })
      assert.is_nil(res)
      assert.matches("timed out", err)
      assert.matches("127.0.0.1:" .. srv.silent_port, err, 1, true)
      assert.is_true(elapsed >= 0.9, "returned after " .. elapsed .. " s")
      assert.is_true(elapsed < 3, "took " .. elapsed .. " s for a 1 s timeout")
    end)

    it("returns nil, err for a refused connection, naming the host and port", function()
      local port = nginx.free_port()
      local res, err = core.http_request{ url = "http://127.0.0.1:" .. port .. "/" }
      assert.is_nil(res)
      assert.matches("^GET http://127%.0%.0%.1:" .. port .. "/%.%.%.: ", err)
    end)

    -- libcurl takes C strings: what follows a NUL would silently be dropped.
    it("returns nil, err for a NUL in the URL or in a header", function()
      local res, err = core.http_request{ url = srv:url("/echo?a=1\0&key=SEKRIT") }
      assert.is_nil(res)
      assert.matches("the URL holds a NUL byte", err)
      assert.is_nil(err:find("SEKRIT", 1, true))
      for _, headers in ipairs { { ["X-A"] = "v\0x" }, { ["X-A\0B"] = "v" } } do
        res, err = core.http_request{ url = srv:url("/echo"), headers = headers }
        assert.is_nil(res)
        assert.matches("a request header name or value holds a line break or is malformed", err)
      end
    end)

    it("returns nil, err for a scheme other than http and https", function()
      for _, url in ipairs{ "ftp://127.0.0.1:" .. srv.port .. "/", "file:///etc/passwd",
        "gopher://127.0.0.1/" } do
        local res, err = core.http_request{ url = url }
        assert.is_nil(res, url)
        assert.matches("only http and https", err)
      end
    end)

    describe("error messages never contain the query, header values or the body", function()
      local function secret_req(url, extra)
        local req = {
          method = "POST", url = url .. "?apiKey=SEKRIT123&x=1", body = "pw=BODYSECRET789",
          headers = { Authorization = "Bearer TOPSECRET456", ["X-Api-Key"] = "SEKRIT123" },
        }
        for k, v in pairs(extra or {}) do req[k] = v end
        return req
      end

      it("on a timeout", function()
        local elapsed, res, err = timed(core.http_request,
          secret_req(srv:silent_url("/v1/keys"), { timeout = 1 }))
        assert.is_nil(res)
        assert.matches("timed out after 1000 ms", err, 1, true)
        assert.matches("127.0.0.1", err, 1, true)
        assert_no_secrets(err)
        assert.is_true(elapsed < 3, "took " .. elapsed .. " s for a 1 s timeout")
      end)

      it("on a refused connection", function()
        local port = nginx.free_port()
        local res, err = core.http_request(secret_req("http://127.0.0.1:" .. port .. "/v1/keys"))
        assert.is_nil(res)
        assert.matches("127.0.0.1:" .. port, err, 1, true)
        assert_no_secrets(err)
      end)

      -- #novalgrind: under valgrind (only there), in the suite's one process,
      -- this handshake has hung until the timeout in 3 of 4 CI runs, by name
      -- or by address, with 5 s or 30 s; alone it passes.  The cause is not
      -- found yet; natively and under ASan it runs as it is.
      it("on a TLS failure #novalgrind", function()
        local res, err = core.http_request(secret_req(srv:tls_url("/v1/keys")))
        assert.is_nil(res)
        assert.matches("certificate", err)
        assert_no_secrets(err)
      end)

      it("on a resolve failure and over max_body", function()
        local res, err = core.http_request(secret_req("http://no-such-host.test/v1",
          { timeout = 2, connect_timeout = 1 }))
        assert.is_nil(res)
        assert.matches("no-such-host.test", err, 1, true)
        assert_no_secrets(err)
        res, err = core.http_request(secret_req(srv:url("/echo"), { max_body = 10 }))
        assert.is_nil(res)
        assert.matches("max_body", err)
        assert_no_secrets(err)
      end)
    end)
  end)

  describe("misuse raises", function()
    local function url() return srv:url("/hello") end

    it("for a request that is not a table or has no url", function()
      assert.has_error(function() core.http_request() end)
      assert.has_error(function() core.http_request("http://127.0.0.1/") end)
      assert.has_error(function() core.http_request{} end, "http: req.url is required")
      assert.has_error(function() core.http_request{ url = 42 } end)
    end)

    it("for option values of the wrong type", function()
      local bad = {
        { timeout = "1" }, { timeout = 0 }, { connect_timeout = "2" }, { max_body = "big" },
        { max_body = -1 }, { verify = "yes" }, { headers = "X-A: 1" },
        { headers = { ["X-A"] = 1 } }, { headers = { "X-A: 1" } }, { resolve = "x" },
        { resolve = { ["h:1"] = true } }, { body = 42 }, { cafile = true }, { proxy = 1 },
        { method = "get" }, { method = "" }, { method = 1 },
      }
      for _, fields in ipairs(bad) do
        local req = { url = url() }
        for k, v in pairs(fields) do req[k] = v end
        local ok, err = pcall(core.http_request, req)
        local k = next(fields)
        assert.is_false(ok, "no error for " .. k)
        assert.matches("req%." .. k, tostring(err))
      end
    end)

    it("in a client, for bad defaults or a bad request", function()
      assert.has_error(function() core.http_client("http://x/") end)
      local c = core.http_client{ timeout = "soon" }
      assert.has_error(function() c:request{ url = url() } end,
        "http: req.timeout must be a number, got string")
      c:close()
      c = core.http_client()
      assert.has_error(function() c:request("x") end)
      assert.has_error(function() c:request{ url = url(), headers = { A = {} } } end)
      -- and the handle still works afterwards
      local res, err = c:request{ url = url() }
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      c:close()
    end)
  end)

  describe("http_client", function()
    it("reuses its connection; one-shot requests do not", function()
      local c = core.http_client()
      local seen = {}
      for i = 1, 3 do
        local res, err = c:request{ url = srv:url("/conn") }
        assert.is_nil(err)
        seen[i] = res.headers["x-conn-requests"]
      end
      c:close()
      assert.are.same({ "1", "2", "3" }, seen)
      for i = 1, 2 do
        local res, err = core.http_request{ url = srv:url("/conn") }
        assert.is_nil(err)
        seen[i] = res.headers["x-conn-requests"]
      end
      assert.are.same({ "1", "1" }, { seen[1], seen[2] })
    end)

    it("reuses a TLS connection too", function()
      local c = core.http_client{ cafile = srv.ca_file }
      local a = assert(c:request{ url = srv:tls_url("/conn") })
      local b = assert(c:request{ url = srv:tls_url("/conn") })
      c:close()
      assert.are.equal("1", a.headers["x-conn-requests"])
      assert.are.equal("2", b.headers["x-conn-requests"])
    end)

    it("closes safely twice, refuses requests after close, and has __tostring", function()
      local c = core.http_client()
      assert.matches("^iceservers%.http_client %(0?x?%x+%)$", tostring(c))
      c:close()
      c:close()
      assert.are.equal("iceservers.http_client (closed)", tostring(c))
      assert.has_error(function() c:request{ url = srv:url("/hello") } end,
        "http: the client is closed")
    end)

    it("applies its defaults; a request header overrides a default one", function()
      local defaults = {
        cafile = srv.ca_file,
        headers = { ["X-Default"] = "d", ["X-Both"] = "default" },
      }
      local c = core.http_client(defaults)
      local res, err = c:request{ url = srv:tls_url("/echo"), headers = { ["X-Both"] = "request" } }
      assert.is_nil(err)
      local got = cjson.decode(res.body)
      assert.are.equal("d", got.headers["x-default"])
      assert.are.equal("request", got.headers["x-both"])

      -- header names are case-insensitive: "x-both" replaces "X-Both"
      res = assert(c:request{ url = srv:tls_url("/echo"), headers = { ["x-both"] = "lower" } })
      got = cjson.decode(res.body)
      assert.are.equal("lower", got.headers["x-both"])

      -- the defaults are back for a request without headers, and were not changed
      res = assert(c:request{ url = srv:tls_url("/echo") })
      got = cjson.decode(res.body)
      assert.are.equal("default", got.headers["x-both"])
      assert.are.same({ ["X-Default"] = "d", ["X-Both"] = "default" }, defaults.headers)

      -- a per-request option overrides a default one
      res, err = c:request{ url = srv:tls_url("/hello"), cafile = "/nonexistent/ca.pem" }
      assert.is_nil(res)
      assert.is_string(err)
      c:close()
    end)

    it("applies a default resolve table", function()
      local c = core.http_client{
        cafile = srv.ca_file, resolve = { ["mock.test:" .. srv.tls_port] = "127.0.0.1" },
      }
      local res, err = c:request{ url = srv:tls_url("/hello", "mock.test") }
      assert.is_nil(err)
      assert.are.equal("hello world", res.body)
      c:close()
    end)

    it("keeps working after a failure", function()
      local c = core.http_client{ cafile = srv.ca_file }
      local res, err = c:request{ url = "http://127.0.0.1:" .. nginx.free_port() .. "/" }
      assert.is_nil(res)
      assert.is_string(err)
      res, err = c:request{ url = srv:url("/big"), max_body = 10 }
      assert.is_nil(res)
      assert.matches("max_body", err)
      res, err = c:request{ url = srv:silent_url("/"), timeout = 1 }
      assert.is_nil(res)
      assert.matches("timed out", err)
      res, err = c:request{ url = srv:url("/big") }
      assert.is_nil(err)
      assert.are.equal(BIG, #res.body)
      res, err = c:request{ url = srv:tls_url("/hello") }
      assert.is_nil(err)
      assert.are.equal("hello world", res.body)
      c:close()
    end)

    it("is released by the garbage collector without close", function()
      for _ = 1, 3 do
        local c = core.http_client{ headers = { ["X-A"] = "1" } }
        assert(c:request{ url = srv:url("/hello") })
      end
      collectgarbage()
      collectgarbage()
    end)

    if _VERSION == "Lua 5.4" then
      it("closes a to-be-closed variable (Lua 5.4)", function()
        local f = assert(load([[
          local core, url = ...
          local saved
          do
            local c <close> = core.http_client()
            saved = c
            assert(c:request{ url = url })
          end
          return tostring(saved)
        ]]))
        assert.are.equal("iceservers.http_client (closed)", f(core, srv:url("/hello")))
      end)
    end
  end)
end)
