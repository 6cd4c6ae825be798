-- iceservers.core: the C primitives, against published vectors and misuse.
local core = require "iceservers.core"
local sh = require "support.sh"

local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end
local function rep(byte, n) return string.rep(string.char(byte), n) end

-- Runs Lua source in a child interpreter of this kind with this tree's paths,
-- so that a crash (exit code 139) fails one spec instead of ending the run;
-- values are set as locals first.  Returns the output's lines and exit code.
local function child(src, values)
  local lua = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
  local head = { ("package.path, package.cpath = %q, %q"):format(package.path, package.cpath) }
  for name, v in pairs(values or {}) do head[#head + 1] = ("local %s = %q"):format(name, v) end
  local _, out, code = sh.run(lua .. " -e " .. sh.quote(table.concat(head, "\n") .. "\n" .. src))
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, code
end

-- Source for child: finalizable(f) is a new object whose finalizer is f, on
-- 5.4 (a table) and LuaJIT (a newproxy) alike.
local FINALIZABLE = [[
local function finalizable(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, { __gc = f })
end
]]
local function seq(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

describe("core.hmac", function()
  -- RFC 2202 section 3 (HMAC-SHA1), all seven cases.
  local rfc2202 = {
    { rep(0x0b, 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00" },
    { "Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
    { rep(0xaa, 20), rep(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3" },
    { seq(1, 25), rep(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da" },
    { rep(0x0c, 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04" },
    { rep(0xaa, 80), "Test Using Larger Than Block-Size Key - Hash Key First",
      "aa4ae5e15272d00e95705637ce8a3b55ed402112" },
    { rep(0xaa, 80), "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
      "e8e99d0f45237d786d6bbaa7965c7808bbff1a91" },
  }
  for i, v in ipairs(rfc2202) do
    it("matches RFC 2202 case " .. i .. " (hmac and signer)", function()
      assert.are.equal(v[3], core.hex(core.hmac("sha1", v[1], v[2])))
      local signer = core.hmac_key("sha1", v[1])
      assert.are.equal(v[3], core.hex(signer:digest(v[2])))
      assert.are.equal(core.b64encode(unhex(v[3])), signer:b64digest(v[2]))
    end)
  end

  -- RFC 4231 section 4 (HMAC-SHA-256/384/512); case 5 is truncated to 128 bits.
  local long_msg = "This is a test using a larger than block-size key and a larger than "
    .. "block-size data. The key needs to be hashed before being used by the HMAC algorithm."
  local rfc4231 = {
    { rep(0x0b, 20), "Hi There",
      sha256 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      sha384 = "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        .. "faea9ea9076ede7f4af152e8b2fa9cb6",
      sha512 = "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        .. "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854" },
    { "Jefe", "what do ya want for nothing?",
      sha256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      sha384 = "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        .. "8e2240ca5e69e2c78b3239ecfab21649",
      sha512 = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        .. "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737" },
    { rep(0xaa, 20), rep(0xdd, 50),
      sha256 = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      sha384 = "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144"
        .. "b2a5ab39dc13814b94e3ab6e101a34f27",
      sha512 = "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
        .. "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb" },
    { seq(1, 25), rep(0xcd, 50),
      sha256 = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
      sha384 = "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
        .. "6801dd23c4a7d679ccf8a386c674cffb",
      sha512 = "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
        .. "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd" },
    { rep(0x0c, 20), "Test With Truncation", truncate = 16,
      sha256 = "a3b6167473100ee06e0c796c2955552b",
      sha384 = "3abf34c3503b2a23a46efc619baef897",
      sha512 = "415fad6271580a531d4179bc891d87a6" },
    { rep(0xaa, 131), "Test Using Larger Than Block-Size Key - Hash Key First",
      sha256 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      sha384 = "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
        .. "0c2ef6ab4030fe8296248df163f44952",
      sha512 = "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        .. "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598" },
    { rep(0xaa, 131), long_msg,
      sha256 = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      sha384 = "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
        .. "a678cc31e799176d3860e6110c46523e",
      sha512 = "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
        .. "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58" },
  }
  for i, v in ipairs(rfc4231) do
    for _, alg in ipairs { "sha256", "sha384", "sha512" } do
      it("matches RFC 4231 case " .. i .. " " .. alg .. " (hmac and signer)", function()
        local n = v.truncate and v.truncate * 2 or nil
        local got = core.hex(core.hmac(alg, v[1], v[2]))
        assert.are.equal(v[alg], got:sub(1, n))
        local signer = core.hmac_key(alg, v[1])
        assert.are.equal(got, core.hex(signer:digest(v[2])))
        assert.are.equal(core.b64encode(signer:digest(v[2])), signer:b64digest(v[2]))
      end)
    end
  end

  it("gives the TURN REST API draft's worked example", function()
    local signer = core.hmac_key("sha1", "north")
    assert.are.equal("Iq7YXkRon8YXJfdN1Ke9EZOw1UE=", signer:b64digest("12334939:mbzrxpgjys"))
  end)

  it("has a signer that agrees with core.hmac on random inputs", function()
    for round = 1, 300 do
      local alg = ({ "sha1", "sha256", "sha384", "sha512" })[round % 4 + 1]
      local key = core.random_bytes(round % 200 + 1)
      local msg = core.random_bytes((round * 7) % 1024 + 1):sub(1, round % 300)
      local signer = core.hmac_key(alg, key)
      assert.are.equal(core.hmac(alg, key, msg), signer:digest(msg))
      -- and again: the precomputed states must not be consumed by a call
      assert.are.equal(core.hmac(alg, key, msg), signer:digest(msg))
      assert.are.equal(core.b64encode(core.hmac(alg, key, msg)), signer:b64digest(msg))
    end
  end)

  it("accepts an empty key and an empty message", function()
    assert.are.equal("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d",
      core.hex(core.hmac("sha1", "", "")))
    assert.are.equal(core.hmac("sha256", "", ""), core.hmac_key("sha256", ""):digest(""))
  end)

  it("raises on an unknown algorithm or a non-string argument", function()
    assert.has_error(function() core.hmac("md5", "k", "m") end)
    assert.has_error(function() core.hmac("SHA1", "k", "m") end)
    assert.has_error(function() core.hmac(nil, "k", "m") end)
    assert.has_error(function() core.hmac("sha1", 42, "m") end)
    assert.has_error(function() core.hmac("sha1", "k", nil) end)
    assert.has_error(function() core.hmac("sha1", "k", {}) end)
    assert.has_error(function() core.hmac_key("sha3", "k") end)
    assert.has_error(function() core.hmac_key("sha1") end)
    local ok, err = pcall(core.hmac, "md5", "k", "m")
    assert.is_false(ok)
    assert.matches("unknown algorithm 'md5'", err, 1, true)
  end)

  it("raises when a signer method gets a bad argument or a bad self", function()
    local signer = core.hmac_key("sha1", "k")
    assert.has_error(function() signer:digest(12) end)
    assert.has_error(function() signer:b64digest() end)
    assert.has_error(function() signer.digest({}, "m") end)
    assert.matches("^iceservers.hmac_key%(sha1%)$", tostring(signer))
  end)
end)

describe("a finalized signer", function()
  -- Lua can still reach a signer once its __gc has run; its states are wiped
  -- then, and using it dereferenced NULL (exit 139).
  local function check(lines, code)
    assert.are.equal(0, code, table.concat(lines, "\n"))
    assert.are.equal("iceservers.hmac_key(finalized)", lines[1])
    assert.matches("signer is finalized$", lines[2])
    assert.matches("signer is finalized$", lines[3])
    assert.are.equal(3, #lines)
  end

  it("raises 'signer is finalized' after __gc is called by hand (twice)", function()
    check(child [[
      local s = require("iceservers.core").hmac_key("sha1", "k")
      local gc = debug.getmetatable(s).__gc
      gc(s)
      gc(s)
      print(tostring(s))
      print(select(2, pcall(s.digest, s, "x")))
      print(select(2, pcall(s.b64digest, s, "x")))
    ]])
  end)

  it("raises 'signer is finalized' when a finalizer resurrects it", function()
    check(child(FINALIZABLE .. [[
      local saved
      do
        local s = require("iceservers.core").hmac_key("sha256", "k")
        finalizable(function() saved = s end)
      end
      collectgarbage()
      collectgarbage()
      print(tostring(saved))
      print(select(2, pcall(saved.digest, saved, "x")))
      print(select(2, pcall(saved.b64digest, saved, "x")))
    ]]))
  end)

  -- the key states are secret material: a to-be-closed signer wipes them
  if _VERSION == "Lua 5.4" then
    it("is finalized by <close> at the end of its block (Lua 5.4)", function()
      check(child [[
        local kept
        do
          local s <close> = require("iceservers.core").hmac_key("sha1", "k")
          kept = s
        end
        print(tostring(kept))
        print(select(2, pcall(kept.digest, kept, "x")))
        print(select(2, pcall(kept.b64digest, kept, "x")))
      ]])
    end)
  end
end)

describe("the b64digest method with iceservers.runtime.ffi loaded", function()
  -- On LuaJIT the FFI entry read any userdata (or a string) as a signer.
  it("takes only a live core.hmac_key signer, on the FFI path too", function()
    local lines, code = child [[
      local core = require "iceservers.core"
      local ffi = require "iceservers.runtime.ffi"
      print(ffi.active == (rawget(_G, "jit") ~= nil))
      local s = core.hmac_key("sha1", "k")
      local b64digest = s.b64digest -- the method as swapped in (on LuaJIT)
      print(b64digest(s, "m") == ffi.c.b64digest(s, "m"))
      -- a newproxy that shows the signer's getmetatable
      local fake = newproxy and newproxy(true)
      if fake then getmetatable(fake).__metatable = getmetatable(s) end
      for _, bad in ipairs { core.http_client(), "not a signer", 5, {}, fake or io.stdout } do
        local ok, err = pcall(b64digest, bad, "m")
        print(ok, err:match("hmac_key expected"))
      end
      debug.getmetatable(s).__gc(s)
      print(select(2, pcall(b64digest, s, "m")))
    ]]
    assert.are.equal(0, code, table.concat(lines, "\n"))
    assert.are.same({ "true", "true" }, { lines[1], lines[2] })
    for i = 3, 7 do assert.are.equal("false\thmac_key expected", lines[i]) end
    assert.matches("signer is finalized$", lines[8])
    assert.are.equal(8, #lines)
  end)
end)

describe("an http client reached from Lua code inside its own request", function()
  local url

  before_each(function()
    url = "http://127.0.0.1:" .. sh.free_port() .. "/" -- nothing listens: refused at once
  end)

  it("refuses close and a nested request, and stays usable", function()
    -- close from a metamethod of the request freed the handle under the
    -- request: curl_easy_reset(NULL), exit 139
    local lines, code = child([[
      local core = require "iceservers.core"
      local c = core.http_client()
      local function req(f) return setmetatable({ url = url }, { __index = f }) end
      print(select(2, pcall(c.request, c, req(function() c:close() end))))
      print(select(2, pcall(c.request, c, req(function() c:request{ url = url } end))))
      print(tostring(c) ~= "iceservers.http_client (closed)")
      local res, err = c:request{ url = url }
      print(res, err)
      c:close()
      print(tostring(c))
    ]], { url = url })
    assert.are.equal(0, code, table.concat(lines, "\n"))
    assert.matches("http: close called during a request of this client$", lines[1])
    assert.matches("http: request called during a request of this client$", lines[2])
    assert.are.equal("true", lines[3])
    assert.matches("^nil\tGET http://127%.0%.0%.1:%d+/%.%.%.: ", lines[4])
    assert.are.equal("iceservers.http_client (closed)", lines[5])
    assert.are.equal(5, #lines)
  end)

  it("passes an error of the request's metamethod through, client and one-shot", function()
    local c = core.http_client()
    local req = setmetatable({ url = url }, { __index = function() error("from __index", 0) end })
    local ok, err = pcall(c.request, c, req)
    assert.is_false(ok)
    assert.are.equal("from __index", err)
    ok, err = pcall(core.http_request, req)
    assert.is_false(ok)
    assert.are.equal("from __index", err)
    local res, err2 = c:request{ url = url } -- not left busy
    assert.is_nil(res)
    assert.matches("^GET http://127", err2)
    c:close()
  end)

  it("still names the caller's line in a misuse error", function()
    local c = core.http_client()
    local ok, err = pcall(function() c:request{ method = "GET" } end)
    assert.is_false(ok)
    assert.matches("^spec/core_spec%.lua:%d+: http: req%.url is required$", err)
    ok, err = pcall(function() core.http_request{ url = url, timeout = "x" } end)
    assert.is_false(ok)
    assert.matches("^spec/core_spec%.lua:%d+: http: req%.timeout must be a number", err)
    c:close()
  end)

  it("survives finalizers that change the header and resolve tables mid-request", function()
    -- A finalizer run by an allocation inside the request set a header to a
    -- table after the tables were checked: strpbrk(NULL), exit 139 (LuaJIT).
    local lines, code = child(FINALIZABLE .. [[
      local core = require "iceservers.core"
      collectgarbage("setpause", 0)
      collectgarbage("setstepmul", 1000)
      local outcomes = {}
      for round = 1, 300 do
        local headers, resolve = {}, {}
        for j = 1, round % 40 + 1 do -- so that the collector's steps fall differently
          headers["X-H" .. j] = "v"
          resolve["h" .. j .. ".test:80"] = "127.0.0.1"
        end
        local live = false
        for _ = 1, 3 do
          finalizable(function()
            if not live then return end
            for k in pairs(headers) do headers[k] = {} end
            for k in pairs(resolve) do resolve[k] = false end
          end)
        end
        local c = core.http_client{ headers = { ["X-D"] = "d" } }
        local req = { url = url, headers = headers, resolve = resolve }
        live = true
        local ok, res, err = pcall(c.request, c, req)
        live = false
        c:close()
        local what = ok and (res and "response" or err:match("^GET http") or err)
          or res:match("http: .*") or res
        outcomes[what] = true
      end
      for what in pairs(outcomes) do print(what) end
      print("done")
    ]], { url = url })
    assert.are.equal(0, code, table.concat(lines, "\n"))
    assert.are.equal("done", lines[#lines])
    for i = 1, #lines - 1 do
      assert.is_true(lines[i] == "GET http" or lines[i]:find("must map strings to strings$") ~= nil,
        lines[i])
    end
  end)
end)

describe("an http client that a finalizer tries to close during a request", function()
  local nginx = require "support.nginx"
  local srv

  lazy_setup(function()
    srv = nginx.start{ tls = false, server = [[
      location = /ok { return 200 "ok"; }
    ]] }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
  end)

  it("refuses, and the response stays whole", function()
    -- The finalizer closed the handle after libcurl had finished, and the
    -- response was read from freed buffers: an empty or garbage body.
    local lines, code = child(FINALIZABLE .. [[
      local core = require "iceservers.core"
      collectgarbage("setpause", 0)
      collectgarbage("setstepmul", 1000)
      local outcomes, c = {}, core.http_client()
      for round = 1, 200 do
        -- so that the collector's steps fall differently (where they fall depends on
        -- every allocation before: the core's own at load too)
        for _ = 1, round % 97 do local _ = {} end
        local live = false
        for _ = 1, 3 do
          finalizable(function()
            if live and not pcall(c.close, c) then outcomes.refused = true end
          end)
        end
        live = true
        -- a field the request reads and does not have runs a full collection: the
        -- finalizers above then run inside the request, whatever the collector's pace
        local req = setmetatable({ url = url }, { __index = function()
          if live and round % 2 == 0 then collectgarbage() end
        end })
        local ok, res, err = pcall(c.request, c, req)
        live = false
        local what = err
        if not ok then
          what = res:match("http: the client is closed$") or res -- closed before it began
        elseif res then
          what = res.status .. " " .. res.body
        end
        outcomes[what] = true
        if tostring(c):find("closed") then c = core.http_client() end
      end
      for what in pairs(outcomes) do print(what) end
    ]], { url = srv:url("/ok") })
    assert.are.equal(0, code, table.concat(lines, "\n"))
    local seen = {}
    for _, line in ipairs(lines) do
      seen[line] = true
      assert.is_true(line == "200 ok" or line == "http: the client is closed"
        or line == "refused", line)
    end
    assert.is_true(seen["200 ok"])
    assert.is_true(seen.refused, "no finalizer ran during a request")
  end)
end)

describe("core.b64encode / core.b64decode", function()
  local rfc4648 = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }
  for _, v in ipairs(rfc4648) do
    it("follows RFC 4648 section 10 for '" .. v[1] .. "'", function()
      assert.are.equal(v[2], core.b64encode(v[1]))
      assert.are.equal(v[1], core.b64decode(v[2]))
    end)
  end

  it("uses the standard alphabet (+ and /)", function()
    assert.are.equal("+/+/", core.b64encode("\251\255\191"))
    assert.are.equal("\251\255\191", core.b64decode("+/+/"))
  end)

  it("round-trips random data of every length, across buffer chunks", function()
    for n = 0, 300 do
      local s = n > 0 and core.random_bytes(n % 1024 + 1):sub(1, n) or ""
      assert.are.equal(s, core.b64decode(core.b64encode(s)))
    end
    local big = string.rep(core.random_bytes(1000), 70) -- 70 kB, many chunks
    assert.are.equal(big, core.b64decode(core.b64encode(big)))
    assert.are.equal(math.floor((#big + 2) / 3) * 4, #core.b64encode(big))
  end)

  local bad = {
    { "Zg=", "length is not a multiple of 4" },
    { "Zm9vY", "length is not a multiple of 4" },
    { "Zm9v\n", "length is not a multiple of 4" },
    { "Zm9-", "invalid character at byte 4" },
    { "Zm_v", "invalid character at byte 3" },
    { "Zm9 ", "invalid character at byte 4" },
    { "Zm9\0", "invalid character at byte 4" },
    { "Zg=a", "padding before the end" },
    { "Z===", "padding before the end" },
    { "====", "padding before the end" },
    { "Zg==Zg==", "padding before the end" },
    { "Zh==", "non-zero padding bits" },
    { "Zm9=", "non-zero padding bits" },
  }
  for _, v in ipairs(bad) do
    it(("rejects %q with nil, err"):format(v[1]), function()
      local s, err = core.b64decode(v[1])
      assert.is_nil(s)
      assert.matches(v[2], err, 1, true)
    end)
  end

  it("raises on a non-string argument", function()
    assert.has_error(function() core.b64encode(nil) end)
    assert.has_error(function() core.b64decode({}) end)
  end)
end)

describe("core.hex", function()
  it("gives lowercase hex", function()
    assert.are.equal("", core.hex(""))
    assert.are.equal("00ff10abcdef", core.hex("\0\255\16\171\205\239"))
    local big = core.random_bytes(1024):rep(8)
    assert.are.equal(#big * 2, #core.hex(big))
    assert.is_nil(core.hex(big):find("[^0-9a-f]"))
  end)
  it("raises on a non-string argument", function()
    assert.has_error(function() core.hex() end)
  end)
end)

describe("core.ct_equal", function()
  it("compares strings by content", function()
    assert.is_true(core.ct_equal("", ""))
    assert.is_true(core.ct_equal("secret", "secret"))
    assert.is_false(core.ct_equal("secret", "secreT"))
    assert.is_false(core.ct_equal("secret", "Secret"))
    assert.is_true(core.ct_equal("a\0b", "a\0b"))
    assert.is_false(core.ct_equal("a\0b", "a\0c"))
  end)
  it("returns false for different lengths, prefixes included", function()
    assert.is_false(core.ct_equal("secret", "secret2"))
    assert.is_false(core.ct_equal("secret2", "secret"))
    assert.is_false(core.ct_equal("", "x"))
  end)
  it("raises on a non-string argument", function()
    assert.has_error(function() core.ct_equal("a", nil) end)
    assert.has_error(function() core.ct_equal(1, "1") end)
  end)
end)

describe("core.random_bytes", function()
  it("returns n bytes, different each time", function()
    for _, n in ipairs { 1, 16, 1024 } do
      assert.are.equal(n, #core.random_bytes(n))
    end
    assert.are_not.equal(core.random_bytes(32), core.random_bytes(32))
  end)
  it("raises outside 1..1024 or for a non-integer", function()
    for _, n in ipairs { 0, -1, 1025, 1.5, 0 / 0, math.huge } do
      assert.has_error(function() core.random_bytes(n) end)
    end
    assert.has_error(function() core.random_bytes("x") end)
    assert.has_error(function() core.random_bytes() end)
  end)
end)

describe("core.version", function()
  local function rockspec_release()
    local text = assert(sh.read_file("rockspec/iceservers-scm-1.rockspec"))
    return text:match('local release = "([^"]+)"')
  end

  it("names the module, OpenSSL and libcurl versions", function()
    assert.matches("^%d+%.%d+%.%d+", core.version.module)
    assert.matches("^OpenSSL %d", core.version.openssl)
    assert.matches("^%d+%.%d+", core.version.curl)
    assert.are.equal(core.version.module, core._VERSION)
  end)

  it("is the one release number of the rockspec and the CHANGELOG", function()
    assert.are.equal(rockspec_release(), core.version.module)
    local changelog = assert(sh.read_file("CHANGELOG.md"))
    assert.truthy(changelog:find("## " .. core.version.module, 1, true))
  end)
end)

describe("core.stat", function()
  it("gives the modification time, size, mode and type of a path", function()
    local path = os.tmpname()
    sh.write_file(path, "12345")
    os.execute("chmod 640 " .. path)
    local st = assert(core.stat(path))
    assert.are.equal(5, st.size)
    assert.are.equal(tonumber("640", 8), st.mode)
    assert.are.equal("file", st.type)
    assert.is_true(math.abs(st.mtime - os.time()) < 120)
    assert.are.equal("directory", core.stat("/tmp").type)
    os.remove(path)
  end)
  it("returns nil, err for a missing path and raises on a non-string", function()
    local st, err = core.stat("/nonexistent/iceservers")
    assert.is_nil(st)
    assert.matches("No such file", err)
    assert.has_error(function() core.stat() end)
  end)
end)

describe("fuzz regressions", function()
  -- Header blocks that fuzz/fuzz_http_headers.c found mishandled by the
  -- response-header parser (ice_push_headers); the inputs it found are in
  -- fuzz/corpus/fuzz_http_headers/.  nginx's raw request socket sends each
  -- response byte for byte, so the blocks reach libcurl exactly as written.
  local nginx = require "support.nginx"
  local RAW = {
    -- Empty repeats were joined too, giving "a, , b, " and ", c".
    joins = "X-Dup: a\r\nX-Dup:\r\nX-Dup: b\r\nX-Dup: \t\r\n"
      .. "X-Empty-First:\r\nX-Empty-First: c\r\nX-Only-Empty:\r\nX-Only-Empty: \r\n",
    -- Lines shorter than "HTTP/" were compared with it over 5 bytes, past the
    -- end of a block that ends with one (ASan: heap-buffer-overflow).  Through
    -- libcurl a block always ends with its blank line, so here the overread
    -- stayed inside the buffer: this checks the parse, the fuzz corpus the read.
    short = "a:\r\nB:c\r\nHTTP:\r\n",
    -- A status-looking line inside a block emptied it (only one after a
    -- finished block, a 1xx's, starts a new response).
    midblock = "X-Before: 1\r\nHTTP/x: not a status\r\nX-After: 2\r\n",
  }
  local srv

  lazy_setup(function()
    local cases = {}
    for name, block in pairs(RAW) do cases[#cases + 1] = ("[%q] = %q"):format(name, block) end
    srv = nginx.start{ tls = false, server = [[
      location = /raw {
        content_by_lua_block {
          local RAW = { ]] .. table.concat(cases, ", ") .. [[ }
          local sock = assert(ngx.req.socket(true))
          assert(sock:send("HTTP/1.1 200 OK\r\n" .. RAW[ngx.var.arg_case]
            .. "Content-Length: 2\r\nConnection: close\r\n\r\nok"))
        }
      }
    ]] }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
  end)

  local function headers(case)
    local res, err = core.http_request{ url = srv:url("/raw?case=" .. case) }
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("ok", res.body)
    return res.headers
  end

  it("joins repeated headers without their empty repeats", function()
    local h = headers("joins")
    assert.are.equal("a, b", h["x-dup"])
    assert.are.equal("c", h["x-empty-first"])
    assert.are.equal("", h["x-only-empty"])
  end)

  it("keeps the headers before a status-looking line inside the block", function()
    local h = headers("midblock")
    assert.are.equal("1", h["x-before"])
    assert.are.equal("2", h["x-after"])
  end)

  it("reads header lines shorter than a status line", function()
    local h = headers("short")
    assert.are.equal("", h.a)
    assert.are.equal("c", h.b)
    assert.are.equal("", h.http)
  end)
end)
