-- The TURN REST API scheme shared by coturn (use-auth-secret) and eturnal:
-- username "expiry:user" (or the bare expiry), password
-- base64(HMAC-SHA1(secret, username)).  The signer is keyed once per secret
-- (ctx.crypto.hmac_key; its b64digest is the fastest the runtime has).
local secrets = require "iceservers.secrets"
local pools = require "iceservers.pools"

local floor = math.floor

-- coturn (4.6's is_secure_string) drops a username with any of these, or with
-- both "union" and "select" in any case: it logs "wrong username" and answers
-- 400, so a browser gets no relay and only sees its TURN server fail.  (Control
-- characters too: the broker refuses those before any check_user.)
local OPAQUE_HINT = " (TURN_USER_ID=opaque takes any id)"

local find, lower = string.find, string.lower

-- lower() follows the C locale's tolower, which may not map ASCII as ASCII
-- (tr_TR: "I" is not "i") nor leave other bytes alone: its verdict is
-- trusted only where the locale is plain, and a hit is confirmed by patterns.
local function union_select(user)
  return find(user, "[uU][nN][iI][oO][nN]") and find(user, "[sS][eE][lL][eE][cC][tT]") and true
end

-- true, or nil and what coturn refuses.  Plain finds only, no pattern and no
-- loop on the way of an accepted id: this runs on every request under the
-- broker's pcall, and LuaJIT compiles no pattern, and a loop's own trace
-- cannot return through the pcall (the rest of the request would run in the
-- interpreter).
local function check_user(user, opts)
  if opts.opaque then return true end
  local what = find(user, " ", 1, true) and "a space"
    or find(user, "'", 1, true) and "a quote (')"
    or find(user, '"', 1, true) and 'a double quote (")'
    or find(user, "\\", 1, true) and "a backslash (\\)"
  if what then return nil, "coturn refuses user ids with " .. what .. OPAQUE_HINT end
  local both
  if lower("I") ~= "i" then
    both = union_select(user)
  else
    local low = lower(user)
    both = find(low, "union", 1, true) and find(low, "select", 1, true) and union_select(user)
  end
  if both then
    return nil, 'coturn refuses user ids with both "union" and "select"' .. OPAQUE_HINT
  end
  return true
end

local B64URL = { ["+"] = "-", ["/"] = "_", ["="] = "" }

-- The opaque id: base64url, unpadded, of HMAC-SHA256(key, user), the key
-- being user_id_key or else HMAC-SHA256(signing secret, "iceservers user id")
-- (then the id changes when the secret rotates).  The keyed signer is kept
-- per pool and key, never anything per user.
local function opaque_id(crypto, pool, opts, secret, user)
  if not pool.id_signer or (not opts.user_id_key and pool.id_from ~= secret) then
    local key = opts.user_id_key or crypto.hmac("sha256", secret, "iceservers user id")
    pool.id_signer, pool.id_from = crypto.hmac_key("sha256", key), secret
  end
  return (crypto.b64encode(pool.id_signer:digest(user)):gsub("[+/=]", B64URL))
end

-- The one credential of an answer: its entry (the pool's urls, the same
-- canonical table each time: the broker checks and renders it once; the
-- entry itself the broker only reads), its ttl and expires; or nil, err.
-- The pool is req.region's (else the default); what it keeps is this
-- broker's state, the same for every request: the signer of the current
-- secret, the text of the current expiry.
local function get(ctx, user, opts, req)
  local pool = opts.pool or pools.of(opts.pools, req) -- opts.pool: the only one
  local list, err = pool.secrets:current()
  if not list then return nil, err end
  if pool.signing ~= list[1] then
    pool.signer, pool.signing = ctx.crypto.hmac_key("sha1", list[1]), list[1]
  end
  local expires = floor(ctx.now()) + opts.ttl
  if expires ~= opts.stamped then -- the expiry's digits change once a second
    opts.stamped, opts.stamp = expires, ("%d"):format(expires)
  end
  if user and opts.opaque then user = opaque_id(ctx.crypto, pool, opts, list[1], user) end
  local username = user and (opts.stamp .. ":" .. user) or opts.stamp
  local password = pool.signer:b64digest(username)
  return { urls = pool.urls, username = username, credential = password, pick = pool.pick },
    opts.ttl, expires
end

local function configure_user_id(opts)
  if opts.user_id ~= "plain" and opts.user_id ~= "opaque" then
    local shown = tostring(opts.user_id):gsub("%c", "?") -- one line
    error(("TURN_USER_ID must be plain or opaque, not '%s'"):format(shown), 0)
  end
  opts.opaque = opts.user_id == "opaque"
  if opts.user_id_key ~= nil then
    if not opts.opaque then
      error("TURN_USER_ID_KEY is used only with TURN_USER_ID=opaque", 0)
    end
    if opts.user_id_key == "" then error("TURN_USER_ID_KEY is empty", 0) end
  end
end

local OPTIONS = {
  secret = { env = "TURN_SECRET", secret = true },
  secret_file = { env = "TURN_SECRET_FILE" },
  urls = { env = "TURN_URLS", type = "list" },
  pick = { env = "TURN_PICK", type = "number" },
  regions = { env = "TURN_REGIONS", type = "regions",
    fields = { "urls", "secret", "secret_file", "pick" } },
  default_region = { env = "TURN_DEFAULT_REGION" },
  ttl = { env = "TURN_TTL", type = "ttl", default = 86400 },
  allow_insecure_secret_file = { env = "ICESERVERS_ALLOW_INSECURE_SECRET_FILE",
    type = "boolean", default = false },
  user_id = { env = "TURN_USER_ID", default = "plain" },
  user_id_key = { env = "TURN_USER_ID_KEY", secret = true },
}

return {
  options = OPTIONS,

  configure = function(opts, ctx)
    configure_user_id(opts)
    local shared -- the provider's own secrets, for the pools that do not set theirs
    opts.pools = pools.build(opts, OPTIONS, function(fields)
      local pool = {}
      if fields.secret or fields.secret_file then
        pool.secrets = secrets.new({ secret = fields.secret, secret_file = fields.secret_file,
          allow_insecure = opts.allow_insecure_secret_file }, ctx.fs.stat, ctx.now)
      else
        shared = shared or secrets.new({ secret = opts.secret, secret_file = opts.secret_file,
          allow_insecure = opts.allow_insecure_secret_file }, ctx.fs.stat, ctx.now)
        pool.secrets = shared
      end
      return pool
    end)
    opts.urls = opts.pools.default and opts.pools.default.urls
    opts.region_names = opts.pools.names
    if not opts.regions then opts.pool = opts.pools.default end
    return opts
  end,

  check_user = check_user,
  get = get,
}
