-- Small shell helpers for specs: run a command, capture its output and status.
local M = {}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs cmd through /bin/sh; returns ok, combined output.
function M.run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("__exit=(%d+)%s*$"))
  return code == 0, out:gsub("__exit=%d+%s*$", ""), code
end

function M.tmpdir()
  local ok, out = M.run("mktemp -d /tmp/iceservers-spec.XXXXXX")
  assert(ok, out)
  return (out:gsub("%s+$", ""))
end

function M.rmrf(dir)
  assert(dir:match("^/tmp/iceservers%-spec"), "refusing to remove " .. dir)
  M.run("rm -rf " .. M.quote(dir))
end

return M
