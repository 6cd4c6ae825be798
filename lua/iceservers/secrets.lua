-- The shared secret(s) of the TURN REST scheme: one inline secret, or a file
-- with one per line (the first signs; the rest are for the TURN server's
-- rotation).  The file is read again when its modification time changes,
-- looked at no more than once a second, so rotating needs no restart.
-- A file rewritten in place can be read half written, and a truncated secret
-- would sign credentials that stay broken for their TTL: a changed file is
-- taken only once its mtime is FRESH seconds old, the previous content
-- signing meanwhile (the way to rotate is still a temp file mv'd over it).
local M = {}
M.__index = M

local FRESH = 2

-- Changed so recently that it may still be being written?  now is whole
-- seconds (the true time is now .. now + 1), mtime has fractions: a file
-- with mtime <= now - FRESH is at least FRESH s old.  An mtime further ahead
-- of the clock than that rounding and a little lag (another host's clock, a
-- clock set back) is taken at once: waiting for it could take forever.
local function fresh(mtime, now)
  return mtime > now - FRESH and mtime <= now + FRESH
end

local function read_secrets(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, "cannot read the secrets file: " .. tostring(err)
  end
  local text = f:read("*a") or ""
  f:close()
  local list = {}
  for line in text:gmatch("[^\n]+") do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" then list[#list + 1] = line end
  end
  if #list == 0 then
    return nil, ("the secrets file %s holds no secret"):format(path)
  end
  return list
end

-- Readable by group or others?  (No bit operators on Lua 5.1.)
local function exposed(mode)
  return math.floor(mode / 32) % 2 == 1 or math.floor(mode / 4) % 2 == 1
end

local function check_mode(path, info, allow)
  if not allow and exposed(info.mode) then
    return nil, ("the secrets file %s is readable by group or others (chmod 600 it, or set "
      .. "ICESERVERS_ALLOW_INSECURE_SECRET_FILE=1)"):format(path)
  end
  return true
end

-- stat is ctx.fs.stat (core.stat); now is the broker's clock.  Raises on a config mistake.
-- opts.allow_insecure accepts a secrets file that others can read.
function M.new(opts, stat, now)
  if opts.secret and opts.secret_file then
    error("iceservers: set a secret or a secrets file (TURN_SECRET or TURN_SECRET_FILE), "
      .. "not both", 0)
  end
  if opts.secret then
    if opts.secret == "" then error("iceservers: the TURN secret is empty", 0) end
    return setmetatable({ list = { opts.secret } }, M)
  end
  if not opts.secret_file then
    error("iceservers: a TURN secret is needed (TURN_SECRET or TURN_SECRET_FILE)", 0)
  end
  local self = setmetatable({ path = opts.secret_file, stat = stat, now = now,
    allow = opts.allow_insecure }, M)
  local info, err = stat(self.path)
  if not info then error("iceservers: TURN_SECRET_FILE " .. err, 0) end
  local safe, why = check_mode(self.path, info, self.allow)
  if not safe then error("iceservers: " .. why, 0) end
  local list, rerr = read_secrets(self.path)
  if not list then error("iceservers: " .. rerr, 0) end
  self.list, self.mtime, self.size, self.checked = list, info.mtime, info.size, now()
  return self
end

-- The current list, first = signing secret; or nil, err when the file broke.
function M:current()
  if not self.path then return self.list end
  local t = self.now()
  if t - self.checked < 1 and t >= self.checked then return self.list end
  self.checked = t
  local info, err = self.stat(self.path)
  if not info then return nil, "TURN_SECRET_FILE " .. err end
  -- A fresh change is looked at again on a later call (self.mtime stays).
  if (info.mtime ~= self.mtime or info.size ~= self.size) and not fresh(info.mtime, t) then
    local safe, why = check_mode(self.path, info, self.allow)
    if not safe then return nil, why end
    local list, rerr = read_secrets(self.path)
    if not list then return nil, rerr end
    self.list, self.mtime, self.size = list, info.mtime, info.size
  end
  return self.list
end

return M
