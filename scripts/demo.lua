-- Prints one TURN REST API credential (expiry:user, HMAC-SHA1) for a demo
-- secret: the stand-in main job until the CLI exists.
local core = require "iceservers.core"
local secret = os.getenv("TURN_SECRET") or "demo-secret"
local signer = core.hmac_key("sha1", secret)
local username = tostring(os.time() + 86400) .. ":demo"
print(string.format('{"username":"%s","credential":"%s","ttl":86400}',
    username, signer:b64digest(username)))
