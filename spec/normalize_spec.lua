-- iceservers.normalize: URL grammar (RFC 7064/7065), entry normalization in
-- strict and lenient mode, and that no input makes it raise or leak secrets.
local normalize = require "iceservers.normalize"

local SECRET = "s3cr3t-cred"
local USER = "1700000000:al1ce-user"

describe("normalize.parse_url", function()
  -- { input, canonical url, scheme, host, port, transport }
  local valid = {
    { "stun:stun.l.google.com:19302", "stun:stun.l.google.com:19302",
      "stun", "stun.l.google.com", 19302 },
    { "stun:example.org", "stun:example.org", "stun", "example.org" },
    { "stuns:example.org:5349", "stuns:example.org:5349", "stuns", "example.org", 5349 },
    { "turn:192.0.2.1", "turn:192.0.2.1", "turn", "192.0.2.1" },
    { "turn:192.0.2.1:3478?transport=udp", "turn:192.0.2.1:3478?transport=udp",
      "turn", "192.0.2.1", 3478, "udp" },
    { "turn:0.0.0.0:1", "turn:0.0.0.0:1", "turn", "0.0.0.0", 1 },
    { "turn:255.255.255.255:65535", "turn:255.255.255.255:65535",
      "turn", "255.255.255.255", 65535 },
    { "turn:[::1]", "turn:[::1]", "turn", "::1" },
    { "turn:[2001:db8::1]:3478?transport=tcp", "turn:[2001:db8::1]:3478?transport=tcp",
      "turn", "2001:db8::1", 3478, "tcp" },
    { "stun:[2001:db8:0:0:0:0:0:1]:3478", "stun:[2001:db8:0:0:0:0:0:1]:3478",
      "stun", "2001:db8:0:0:0:0:0:1", 3478 },
    { "turn:[::ffff:192.0.2.1]", "turn:[::ffff:192.0.2.1]", "turn", "::ffff:192.0.2.1" },
    { "turn:[1:2:3:4:5:6::7]:3478", "turn:[1:2:3:4:5:6::7]:3478", "turn", "1:2:3:4:5:6::7", 3478 },
    { "turn:[1:2:3:4:5:6:1.2.3.4]", "turn:[1:2:3:4:5:6:1.2.3.4]", "turn", "1:2:3:4:5:6:1.2.3.4" },
    { "turns:turn.example.com:443?transport=tcp", "turns:turn.example.com:443?transport=tcp",
      "turns", "turn.example.com", 443, "tcp" },
    { "TURN:Turn.Example.com:3478?Transport=UDP", "turn:Turn.Example.com:3478?transport=udp",
      "turn", "Turn.Example.com", 3478, "udp" },
    { "STUNS:a-b.example:5349", "stuns:a-b.example:5349", "stuns", "a-b.example", 5349 },
    { "StUn:localhost", "stun:localhost", "stun", "localhost" },
    { "turn:xn--bcher-kva.example", "turn:xn--bcher-kva.example",
      "turn", "xn--bcher-kva.example" },
    { "turn:h:03478", "turn:h:3478", "turn", "h", 3478 },
    { "turn:a.123", "turn:a.123", "turn", "a.123" },
    { "turn:" .. string.rep("a", 63) .. ".example", "turn:" .. string.rep("a", 63) .. ".example",
      "turn", string.rep("a", 63) .. ".example" },
  }
  for _, v in ipairs(valid) do
    it("accepts " .. v[1], function()
      local p, err = normalize.parse_url(v[1])
      assert.is_nil(err)
      assert.are.same({
        url = v[2], scheme = v[3], host = v[4], port = v[5], transport = v[6],
        turn = v[3] == "turn" or v[3] == "turns",
      }, p)
    end)
  end

  local long_host = string.rep(string.rep("a", 50) .. ".", 5) .. "abc" -- 258 bytes
  -- { input, expected reason substring }
  local invalid = {
    { "", "empty URL" },
    { "example.org", "missing scheme" },
    { "[::1]:3478", "missing scheme" },
    { "http://example.org", "unsupported scheme \"http\"" },
    { "turn://h", "'//' after the scheme" },
    { "turn:", "missing host" },
    { "turn::3478", "missing host" },
    { "turn:h:0", "port out of range" },
    { "turn:h:65536", "port out of range" },
    { "turn:h:123456", "port out of range" },
    { "turn:h:12a", "invalid port" },
    { "turn:h:+1", "invalid port" },
    { "turn:h:", "empty port" },
    { "stun:h?transport=udp", "stun URLs take no query" },
    { "stuns:h:5349?transport=tcp", "stuns URLs take no query" },
    { "turns:h:5349?transport=udp", "turns with transport=udp" },
    { "turn:h?transport=sctp", "unsupported transport \"sctp\"" },
    { "turn:h?transport=", "empty transport" },
    { "turn:h?", "empty query" },
    { "turn:h?foo=bar", "unsupported query parameter \"foo\"" },
    { "turn:h?transport=udp&foo=bar", "only ?transport=" },
    { "turn:user@h", "user-info not allowed" },
    { "turn:user:pass@h:3478", "user-info not allowed" },
    { "turn:h/path", "path not allowed" },
    { "turn:h#frag", "fragment not allowed" },
    { "turn:[::1", "unterminated IPv6 literal" },
    { "turn:[::1]x", "unexpected text after IPv6 literal" },
    { "turn:::1", "IPv6 address must be in brackets" },
    { "turn:[1::2::3]", "invalid IPv6 address" },
    { "turn:[1:2:3:4:5:6:7:8:9]", "invalid IPv6 address" },
    { "turn:[1:2:3:4:5:6:7]", "invalid IPv6 address" },
    { "turn:[1:2:3:4::5:6:7:8]", "invalid IPv6 address" },
    { "turn:[1:2:3:4:5:6:7:1.2.3.4]", "invalid IPv6 address" },
    { "turn:[:1:2:3:4:5:6:7]", "invalid IPv6 address" },
    { "turn:[12345::1]", "invalid IPv6 address" },
    { "turn:[::1%eth0]", "invalid IPv6 address" },
    { "turn:[]", "invalid IPv6 address" },
    { "turn:h :3478", "whitespace" },
    { " stun:h", "whitespace" },
    { "turn:h\0", "invalid character" },
    { "turn:h\255\254", "invalid character" },
    { "turn:-bad-.example", "starts or ends with '-'" },
    { "turn:bad-.example", "starts or ends with '-'" },
    { "turn:a..b", "empty label" },
    { "turn:under_score.example", "invalid character in host name" },
    { "turn:999.1.1.1", "invalid IPv4 address" },
    { "turn:1.2.3", "invalid IPv4 address" },
    { "turn:01.2.3.4", "invalid IPv4 address" },
    { "turn:" .. long_host, "host name too long" },
    { "turn:" .. string.rep("a", 64) .. ".example", "label too long" },
    { "turn:" .. string.rep("a", 600), "URL too long" },
  }
  for _, v in ipairs(invalid) do
    it(("rejects %q"):format(v[1]:sub(1, 40)), function()
      local p, err = normalize.parse_url(v[1])
      assert.is_nil(p)
      assert.is_string(err)
      assert.matches(v[2], err, 1, true)
    end)
  end

  it("rejects non-strings without raising", function()
    for _, v in ipairs({ 42, true, {}, function() end }) do
      local p, err = normalize.parse_url(v)
      assert.is_nil(p)
      assert.matches("not a string", err, 1, true)
    end
    assert.is_nil((normalize.parse_url()))
  end)
end)

describe("normalize.answer", function()
  it("turns url/uris/password spellings into urls/credential", function()
    local list, dropped = normalize.answer({
      { url = "turn:a.example", username = USER, password = SECRET },
      { uris = { "turn:b.example", "turns:b.example:443" }, username = USER,
        credential = SECRET },
    })
    assert.are.same({}, dropped)
    assert.are.same({
      { urls = { "turn:a.example" }, username = USER, credential = SECRET },
      { urls = { "turn:b.example", "turns:b.example:443" }, username = USER,
        credential = SECRET },
    }, list)
  end)

  it("takes urls, url and uris together in that order, deduped", function()
    local list = normalize.answer({
      { uris = { "stun:c", "stun:a" }, url = "stun:b", urls = { "stun:a", "STUN:b" } },
    })
    assert.are.same({ { urls = { "stun:a", "stun:b", "stun:c" } } }, list)
  end)

  it("prefers credential over password", function()
    local list = normalize.answer({
      { urls = "turn:h", username = USER, credential = SECRET, password = "other" },
    })
    assert.are.equal(SECRET, list[1].credential)
  end)

  it("splits a mixed entry: STUN first, without credentials, then TURN", function()
    local list, dropped = normalize.answer({
      { urls = "stun:first" },
      { urls = { "turn:t1", "stun:s1", "turns:t2:443", "stun:s2" },
        username = USER, credential = SECRET },
      { urls = "stun:last" },
    })
    assert.are.same({}, dropped)
    assert.are.same({
      { urls = { "stun:first" } },
      { urls = { "stun:s1", "stun:s2" } },
      { urls = { "turn:t1", "turns:t2:443" }, username = USER, credential = SECRET },
      { urls = { "stun:last" } },
    }, list)
  end)

  it("drops the credentials of a STUN-only entry", function()
    local list = normalize.answer({ { urls = "stun:h", username = USER, credential = SECRET } })
    assert.are.same({ { urls = { "stun:h" } } }, list)
    assert.is_nil(list[1].username)
    assert.is_nil(list[1].credential)
  end)

  it("removes duplicates across entries, keeps order, drops emptied entries", function()
    local list, dropped = normalize.answer({
      { urls = { "stun:a", "stun:b" } },
      { urls = { "STUN:a", "stun:c" } },
      { urls = { "stun:b" } },
      { urls = { "turn:t?transport=udp" }, username = USER, credential = SECRET },
      { urls = { "TURN:t?TRANSPORT=UDP", "turn:t?transport=tcp" }, username = "u2",
        credential = "c2" },
    })
    assert.are.same({}, dropped)
    assert.are.same({
      { urls = { "stun:a", "stun:b" } },
      { urls = { "stun:c" } },
      { urls = { "turn:t?transport=udp" }, username = USER, credential = SECRET },
      { urls = { "turn:t?transport=tcp" }, username = "u2", credential = "c2" },
    }, list)
  end)

  it("does not let a dropped TURN entry shadow a later good one", function()
    local list, dropped = normalize.answer({
      { urls = "turn:t" },
      { urls = "turn:t", username = USER, credential = SECRET },
    })
    assert.are.equal(1, #dropped)
    assert.are.same({ { urls = { "turn:t" }, username = USER, credential = SECRET } }, list)
  end)

  it("drops TURN entries without a usable username or credential, with a reason", function()
    local cases = {
      { { urls = "turn:h", credential = SECRET }, "username missing" },
      { { urls = "turn:h", username = "", credential = SECRET }, "username is empty" },
      { { urls = "turn:h", username = 12345, credential = SECRET },
        "username is not a string (number)" },
      { { urls = "turn:h", username = USER }, "credential missing" },
      { { urls = "turn:h", username = USER, credential = "" }, "credential is empty" },
      { { urls = "turn:h", username = USER, credential = { SECRET } },
        "credential is not a string (table)" },
    }
    for _, c in ipairs(cases) do
      local list, dropped = normalize.answer({ c[1], { urls = "stun:ok" } })
      assert.are.same({ { urls = { "stun:ok" } } }, list)
      assert.are.equal(1, #dropped)
      assert.matches("entry 1: TURN URL \"turn:h\": dropped: " .. c[2], dropped[1], 1, true)
    end
  end)

  it("keeps the STUN half of a mixed entry whose TURN half lacks credentials", function()
    local list, dropped = normalize.answer({ { urls = { "stun:s", "turn:t1", "turn:t2" } } })
    assert.are.same({ { urls = { "stun:s" } } }, list)
    assert.are.same({ 'entry 1: 2 TURN URLs, first "turn:t1": dropped: username missing' },
      dropped)
  end)

  it("drops bad URLs and bad entries, keeping the rest, one reason each", function()
    local list, dropped = normalize.answer({
      { urls = { "stun:good", "http://bad", 7, "turn:h:0" } },
      "not a table",
      { username = USER },
      { urls = {} },
      { urls = 3478 },
      { urls = "turns:h:5349?transport=udp", username = USER, credential = SECRET },
      { urls = "stun:also-good" },
    })
    assert.are.same({ { urls = { "stun:good" } }, { urls = { "stun:also-good" } } }, list)
    assert.are.same({
      'entry 1: invalid URL "http://bad": unsupported scheme "http"',
      "entry 1: urls[3] is not a string (number)",
      'entry 1: invalid URL "turn:h:0": port out of range',
      "entry 2 is not a table (string)",
      "entry 3 has no urls",
      "entry 4 has no urls",
      "entry 5: urls is not a string or a list (number)",
      'entry 6: invalid URL "turns:h:5349?transport=udp": turns with transport=udp',
    }, dropped)
  end)

  it("treats a single entry object as a one-element list", function()
    local list, dropped = normalize.answer({ urls = "turn:h", username = USER,
      credential = SECRET })
    assert.are.same({}, dropped)
    assert.are.same({ { urls = { "turn:h" }, username = USER, credential = SECRET } }, list)
  end)

  it("walks over nil holes in the list, numbering entries by their index", function()
    local entries = { { urls = "stun:a" }, nil, { urls = "stun:c" } }
    entries[5] = { urls = "stun:e" }
    entries[7] = { urls = "stun:g:0" }
    local list, dropped = normalize.answer(entries)
    assert.are.same({ { urls = { "stun:a" } }, { urls = { "stun:c" } },
      { urls = { "stun:e" } } }, list)
    assert.are.same({ 'entry 7: invalid URL "stun:g:0": port out of range' }, dropped)
  end)

  it("answers a non-table with an empty list and one reason", function()
    for _, v in ipairs({ "x", 1, true, function() end }) do
      local list, dropped = normalize.answer(v)
      assert.are.same({}, list)
      assert.are.same({ "answer is not a list" }, dropped)
    end
    local list, dropped = normalize.answer(nil)
    assert.are.same({}, list)
    assert.are.same({ "answer is not a list" }, dropped)
  end)

  it("returns an empty list for an empty answer", function()
    local list, dropped = normalize.answer({})
    assert.are.same({}, list)
    assert.are.same({}, dropped)
  end)
end)

describe("normalize never raises", function()
  local cyclic = { urls = "stun:c" }
  cyclic.self = cyclic
  cyclic.urls = { "stun:c", cyclic }
  local function raising_mt()
    local boom = function() error("metamethod ran") end
    return setmetatable({ { urls = "stun:x" } }, {
      __index = boom, __newindex = boom, __len = boom, __pairs = boom,
      __ipairs = boom, __call = boom, __tostring = boom, __eq = boom,
    })
  end
  local entry_with_mt = setmetatable({}, {
    __index = function() error("metamethod ran") end,
  })
  local garbage = {
    {}, { 1, 2, 3 }, { "stun:a", "turn:b" }, { { {} } }, { { urls = { { { {} } } } } },
    { { urls = true } }, { { url = -1 } }, { { uris = 0 / 0 } }, { { urls = math.huge } },
    { { urls = { [1.5] = "stun:a", [-1] = "stun:b", [0] = "stun:c", [2 ^ 60] = "stun:d" } } },
    { [2 ^ 60] = { urls = "stun:a" }, [math.huge] = 1, [-math.huge] = 2 },
    { { urls = string.rep("turn:", 200000) } },
    { { urls = "turn:" .. string.rep("a", 1000000) } },
    { { urls = "stun:\255\254\0\n\r" } },
    { { urls = "turn:h", username = { SECRET }, credential = function() end } },
    { { urls = "turn:h", username = USER, credential = coroutine.create(function() end) } },
    { { urls = "turn:h", username = 1, credential = 2 } },
    { [true] = { urls = "stun:a" }, [{}] = "x", [print] = 3 },
    { cyclic },
    raising_mt(),
    { entry_with_mt, { urls = entry_with_mt } },
    { io.stdout, { urls = io.stdout } },
    { { urls = { nil, nil, "stun:c" } } },
    { urls = { "stun:a" }, { urls = "stun:b" } },
  }

  it("in answer(): garbage gives a list and string reasons", function()
    for i, g in ipairs(garbage) do
      local ok, list, dropped = pcall(normalize.answer, g)
      assert(ok, "answer raised on garbage #" .. i .. ": " .. tostring(list))
      assert.is_table(list)
      assert.is_table(dropped)
      for _, r in ipairs(dropped) do
        assert.is_string(r)
        assert.is_nil(r:find("\n", 1, true))
        assert(#r < 400, "reason too long: " .. #r)
      end
    end
  end)

  it("runs no metamethod of the input", function()
    local list, dropped = normalize.answer(raising_mt())
    assert.are.same({ { urls = { "stun:x" } } }, list)
    assert.are.same({}, dropped)
  end)
end)

describe("normalize reasons", function()
  local function assert_clean(texts)
    for _, r in ipairs(texts) do
      assert.is_nil(r:find(SECRET, 1, true), "credential leaked: " .. r)
      assert.is_nil(r:find(USER, 1, true), "username leaked: " .. r)
    end
  end

  local leaky = {
    { urls = "turn:" .. USER .. ":" .. SECRET .. "@h", username = USER, credential = SECRET },
    { urls = "turn:h?transport=" .. SECRET, username = USER, credential = SECRET },
    { urls = "turn:" .. SECRET .. ".example:0", username = USER, credential = SECRET },
    { urls = "turn:" .. SECRET .. "_x", username = USER, credential = SECRET },
    { urls = "turn:h?" .. SECRET .. "=1", username = USER, credential = SECRET },
    { urls = "turn:[" .. SECRET .. "]", username = USER, credential = SECRET },
    { urls = "stun:h:" .. SECRET, username = USER, password = SECRET },
    { urls = "turn:" .. string.rep("a", 90) .. SECRET .. ".example?x=1", username = USER,
      credential = SECRET },
    { urls = "turn:" .. string.rep("a", 100) .. ":" .. SECRET .. "@h" },
    { urls = "turn:ok", username = USER },
    { urls = "turn:ok2", credential = SECRET },
    { urls = "turn:ok3", username = USER, credential = { SECRET } },
    { urls = "turn:ok4", username = { USER }, credential = SECRET },
    { urls = { "turn:" .. SECRET } },
  }

  it("never include a username or credential (answer)", function()
    local list, dropped = normalize.answer(leaky)
    assert.are.same({}, list)
    assert.are.equal(#leaky, #dropped)
    assert_clean(dropped)
    assert.matches("URL withheld", dropped[1], 1, true)
    assert.matches("user-info not allowed", dropped[1], 1, true)
    assert.matches("entry 3: invalid URL (URL withheld: it contains a credential): port out",
      dropped[3], 1, true)
  end)

  it("quote URLs that hold no credential, escaped and cut", function()
    local _, dropped = normalize.answer({
      { urls = { 'turn:h"\n', "turn:" .. string.rep("b", 50) .. "."
        .. string.rep("b", 50) .. "!" } },
    })
    assert.are.equal('entry 1: invalid URL "turn:h\\"\\x0a": whitespace in URL', dropped[1])
    assert.matches('^entry 1: invalid URL "turn:[b.]+"%.%.%.: invalid character in host name',
      dropped[2])
  end)

  it("blank user-info even when it is no known credential, before cutting", function()
    local _, dropped = normalize.answer({
      { urls = "turn:" .. string.rep("u", 100) .. ":pw-not-listed@h" },
    })
    assert.are.same({ 'entry 1: invalid URL "turn:***@h": user-info not allowed' }, dropped)
  end)

  it("do not let short credentials hide the fixed wording", function()
    -- "e" and "d" occur in the wording ("entry", "withheld"), not in the URLs.
    local _, dropped = normalize.answer({ { urls = "turn:e:0", username = "e", credential = "d" },
      { urls = "turn:x:0" } })
    assert.are.same({
      "entry 1: invalid URL (URL withheld: it contains a credential): port out of range",
      'entry 2: invalid URL "turn:x:0": port out of range',
    }, dropped)
  end)
end)

describe("normalize.one: the one TURN entry of an answer that is canonical already", function()
  local URLS = normalize.turn_urls({ "turn:t.example:3478", "turns:t.example:5349" }, "TURN_URLS")

  it("is the entry itself, given as an object or as a list of only it", function()
    local e = { urls = URLS, username = USER, credential = SECRET }
    assert.are.equal(e, normalize.one(e))
    assert.are.equal(e, normalize.one({ e }))
    -- keys normalization ignores are ignored: only urls, username, credential are read
    local extra = { urls = URLS, username = USER, credential = SECRET, extra = 1 }
    assert.are.equal(extra, normalize.one(extra))
  end)

  it("is nil when anything is not as normalization would leave it", function()
    local cases = {
      { { urls = URLS, username = USER, password = SECRET } },
      { { urls = URLS, username = USER, credential = SECRET }, nil,
        { urls = { "turn:u.example" }, username = USER, credential = SECRET } },
      { { urls = URLS, username = USER, credential = SECRET }, extra = 1 },
      { { urls = { "TURN:t.example:3478" }, username = USER, credential = SECRET } },
      { { urls = { "turn:t.example", "turn:t.example" }, username = USER, credential = SECRET } },
      { { urls = { "stun:s.example" }, username = USER, credential = SECRET } },
      { { urls = URLS, url = "turn:v.example", username = USER, credential = SECRET } },
      { { urls = URLS, uris = "turn:v.example", username = USER, credential = SECRET } },
      { { urls = URLS, username = "", credential = SECRET } },
      { { urls = URLS, username = USER, credential = 7 } },
      { setmetatable({ urls = URLS, username = USER, credential = SECRET }, {}) },
      {},
    }
    for i, answer in ipairs(cases) do
      assert.is_nil(normalize.one(answer), "case " .. i)
      if i ~= 2 and i ~= 3 and answer[1] then -- the list is what is wrong with those two
        assert.is_nil(normalize.one(answer[1]), "case " .. i .. "'s entry")
      end
      for _, e in ipairs((normalize.answer(answer))) do
        for k in pairs(e) do
          assert.truthy(k == "urls" or k == "username" or k == "credential", "case " .. i)
        end
      end
    end
    -- an answer with a hole keeps what follows it
    assert.are.equal(2, #normalize.answer(cases[2]))
    assert.is_nil(normalize.one("turn:t.example"))
  end)

  it("leaves normalize.answer's list the broker's own, the empty answer aside", function()
    local answer = { { urls = URLS, username = USER, credential = SECRET } }
    local list, dropped, turn = normalize.answer(answer)
    assert.are_not.equal(answer, list)
    assert.are.same(answer, list)
    assert.are.same({}, dropped)
    assert.is_true(turn)
    local empty = {}
    list, dropped, turn = normalize.answer(empty)
    assert.are.equal(empty, list)
    assert.are.same({}, dropped)
    assert.is_false(turn)
  end)

  it("says whether what is left has credentials", function()
    local _, _, turn = normalize.answer({ { urls = { "stun:s", "turn:t" }, username = USER,
      credential = SECRET } })
    assert.is_true(turn)
    _, _, turn = normalize.answer({ { urls = { "stun:s", "turn:t" } } })
    assert.is_false(turn)
    _, _, turn = normalize.answer("turn:t")
    assert.is_false(turn)
  end)
end)
