-- core.x509_check_host (src/ice_x509.c): does a PEM certificate name a host?
-- LuaSec 1.2.0 verifies the chain but never the name (lunarmodules/luasec#161),
-- so the plain-Lua TLS transport asks this.  Certificates from the specs' test
-- CA (spec/support/nginx.lua), made by openssl.
local core = require "iceservers.core"
local nginx = require "support.nginx"
local sh = require "support.sh"

describe("core.x509_check_host", function()
  local pem, wild_pem, cn_pem, dir

  lazy_setup(function()
    -- localhost, mock.test and 127.0.0.1 are always in the test certificates
    pem = assert(sh.read_file(nginx.certs{ "::1", "turn.example.test" }.cert_file))
    wild_pem = assert(sh.read_file(nginx.certs{ "*.wild.test" }.cert_file))
    -- a CA certificate: a subject CN and no subjectAltName at all
    dir = sh.tmpdir("x509")
    cn_pem = assert(sh.read_file(nginx.make_ca(dir, "cn-only.test")))
  end)

  lazy_teardown(function()
    if dir then sh.rmrf(dir) end
  end)

  it("accepts a DNS name of the subjectAltName, in any case", function()
    assert.are.equal(true, core.x509_check_host(pem, "localhost"))
    assert.are.equal(true, core.x509_check_host(pem, "turn.example.test"))
    assert.are.equal(true, core.x509_check_host(pem, "MOCK.Test"))
  end)

  it("refuses another name with a reason", function()
    local ok, why = core.x509_check_host(pem, "other.test")
    assert.are.equal(false, ok)
    assert.matches("other.test", why, 1, true)
    ok, why = core.x509_check_host(pem, "example.test")
    assert.are.equal(false, ok)
    assert.is_string(why)
  end)

  it("checks IP literals against the IP addresses of the subjectAltName", function()
    assert.are.equal(true, core.x509_check_host(pem, "127.0.0.1"))
    assert.are.equal(true, core.x509_check_host(pem, "::1"))
    assert.are.equal(true, core.x509_check_host(pem, "0:0:0:0:0:0:0:1"))
    local ok, why = core.x509_check_host(pem, "127.0.0.2")
    assert.are.equal(false, ok)
    assert.matches("127.0.0.2", why, 1, true)
    assert.are.equal(false, (core.x509_check_host(pem, "::2")))
    -- an IP address is never matched against DNS names
    assert.are.equal(false, (core.x509_check_host(wild_pem, "127.0.0.2")))
  end)

  it("matches a wildcard for exactly one label", function()
    assert.are.equal(true, core.x509_check_host(wild_pem, "turn.wild.test"))
    assert.are.equal(false, (core.x509_check_host(wild_pem, "a.b.wild.test")))
    assert.are.equal(false, (core.x509_check_host(wild_pem, "wild.test")))
  end)

  it("falls back to the subject CN only without DNS subjectAltNames (as nginx)", function()
    assert.are.equal(true, core.x509_check_host(cn_pem, "cn-only.test"))
    assert.are.equal(false, (core.x509_check_host(cn_pem, "other.test")))
    -- the server certificates' CN is localhost too, but their SAN decides
    assert.are.equal(false, (core.x509_check_host(wild_pem, "localhost2")))
  end)

  it("reads the first certificate of a chain", function()
    assert.are.equal(true, core.x509_check_host(pem .. cn_pem, "localhost"))
    assert.are.equal(false, (core.x509_check_host(pem .. cn_pem, "cn-only.test")))
  end)

  it("answers nil, err for a malformed certificate", function()
    local body = pem:match("\n(.-)\n%-%-%-%-%-END")
    for _, bad in ipairs {
      "", "not a certificate",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      pem:sub(1, math.floor(#pem / 2)),
      "-----BEGIN CERTIFICATE-----\n" .. body:reverse() .. "\n-----END CERTIFICATE-----\n",
      (pem:gsub("CERTIFICATE", "PRIVATE KEY")),
    } do
      local ok, err = core.x509_check_host(bad, "localhost")
      assert.is_nil(ok)
      assert.matches("^certificate: ", err)
      assert.is_nil(err:find("\n", 1, true))
    end
  end)

  it("answers nil, err for a name that is no host name", function()
    for _, bad in ipairs { "", "localhost\0.evil.test" } do
      local ok, err = core.x509_check_host(pem, bad)
      assert.is_nil(ok)
      assert.matches("^name: ", err)
    end
  end)

  it("leaves no OpenSSL error behind for the next caller", function()
    assert.is_nil((core.x509_check_host("junk", "localhost")))
    -- a later good check is not confused by a stale error queue
    assert.are.equal(true, core.x509_check_host(pem, "localhost"))
    local a, b = core.x509_check_host(pem, "other.test")
    assert.are.same({ false, "the certificate is not for other.test" }, { a, b })
  end)

  it("raises for arguments that are not strings (a caller's bug)", function()
    assert.has_error(function() core.x509_check_host(nil, "localhost") end)
    assert.has_error(function() core.x509_check_host(pem, 42) end)
    assert.has_error(function() core.x509_check_host(pem) end)
  end)
end)

-- The system store that LuaSec does not load by itself (it has no
-- set_default_verify_paths): OpenSSL's compiled-in file and directory, or
-- SSL_CERT_FILE / SSL_CERT_DIR when set, as OpenSSL's own lookup does.
describe("core.x509_default_paths", function()
  local function in_child(env)
    local abi = _VERSION:match("%d+%.%d+")
    local build = os.getenv("ICESERVERS_BUILD") or ("build/" .. abi)
    local lua = abi == "5.1" and "luajit" or ("lua" .. abi)
    local ok, out = sh.run(("env -u SSL_CERT_FILE -u SSL_CERT_DIR %s %s -e %s"):format(env, lua,
      sh.quote(("package.cpath = %q .. '/?.so;' .. package.cpath; "
        .. "print(require('iceservers.core').x509_default_paths())"):format(build))))
    assert(ok, out)
    return out:match("^(%S+)\t(%S+)")
  end

  it("answers OpenSSL's compiled-in CA file and directory", function()
    local file, dir = core.x509_default_paths()
    assert.is_string(file)
    assert.is_string(dir)
    local cfile, cdir = in_child("")
    assert.matches("^/.+%.pem$", cfile)
    assert.matches("^/.+/certs$", cdir)
  end)

  it("honours SSL_CERT_FILE and SSL_CERT_DIR", function()
    local file, dir = in_child("SSL_CERT_FILE=/x/ca.pem SSL_CERT_DIR=/x/dir")
    assert.are.equal("/x/ca.pem", file)
    assert.are.equal("/x/dir", dir)
  end)
end)
