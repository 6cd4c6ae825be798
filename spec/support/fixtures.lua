-- Small helpers shared by the Lua-layer specs: temp files, a provider
-- directory, a settable clock and a log recorder.
local sh = require "support.sh"

local M = {}

function M.write(path, text, mode)
  sh.write_file(path, text)
  if mode then assert(sh.run(("chmod %s %s"):format(mode, sh.quote(path)))) end
  return path
end

-- A temp directory that `cleanup()` removes; files are written into it.
function M.tmp()
  local dir = sh.tmpdir()
  return {
    dir = dir,
    file = function(name, text, mode) return M.write(dir .. "/" .. name, text, mode or "600") end,
    cleanup = function() sh.rmrf(dir) end,
  }
end

-- A clock the spec moves by hand.
function M.clock(start)
  local c = { t = start or 1800000000 }
  c.now = function() return c.t end
  return c
end

-- Records log lines as "level: msg".
function M.recorder()
  local lines = {}
  return lines, function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
end

-- Every URL of an answer's servers, in order.
function M.urls_of(servers)
  local out = {}
  for _, e in ipairs(servers) do
    for _, u in ipairs(e.urls) do out[#out + 1] = u end
  end
  return out
end

-- An HS256 JWT for user, signed with key, valid for 10 minutes (made with the
-- core's HMAC: the specs of the JWT checks use PyJWT's tokens).
function M.hs256(key, user)
  local core, cjson = require "iceservers.core", require "cjson"
  local h = core.b64url_encode('{"alg":"HS256","typ":"JWT"}')
  local p = core.b64url_encode(cjson.encode { sub = user, exp = os.time() + 600 })
  return h .. "." .. p .. "." .. core.b64url_encode(core.hmac("sha256", key, h .. "." .. p))
end

-- The message fn raises (the spec fails if it does not raise).
function M.error_of(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(err)
end

return M
