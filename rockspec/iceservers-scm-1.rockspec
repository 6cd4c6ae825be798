-- The one place the version number lives: the Makefile reads it from the line
-- below, the C module gets it as a define, and a spec checks all agree.
local release = "0.1.0"

rockspec_format = "3.0"
package = "iceservers"
version = "scm-1"
source = {
   url = "git+https://example.invalid/iceservers.git",
}
description = {
   summary = "ICE server lists with short-lived TURN credentials for Lua and OpenResty",
   detailed = [[
iceservers hands WebRTC clients a ready RTCIceServer list: TURN REST API
credentials for coturn or eturnal, commercial TURN providers, or STUN only.
A small C core (HMAC, base64, libcurl) under a pure-Lua provider layer.
]],
   license = "MIT",
}
-- With Debian's lua-cjson (not a rock), install with --deps-mode=none.
-- Optional, not listed: luasocket and luasec (Debian: lua-socket, lua-sec),
-- loaded only when probing outside nginx (iceservers.stun.net_socket).
dependencies = {
   "lua >= 5.1",
   "lua-cjson",
}
external_dependencies = {
   OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
   -- Debian keeps curl/curl.h under the multiarch include folder, where
   -- LuaRocks does not look for headers; find libcurl by its library instead.
   CURL = { library = "curl" },
}
build = {
   type = "builtin",
   modules = {
      ["iceservers.core"] = {
         sources = {
            "src/ice_core.c", "src/ice_codec.c", "src/ice_crypto.c", "src/ice_digest.c",
            "src/ice_http.c", "src/ice_http_response.c", "src/ice_sys.c", "src/ice_x509.c",
            "src/ice_pkey.c",
         },
         defines = { "ICESERVERS_VERSION=" .. release },
         incdirs = { "$(OPENSSL_INCDIR)" },
         libdirs = { "$(OPENSSL_LIBDIR)", "$(CURL_LIBDIR)" },
         libraries = { "crypto", "curl" },
      },
      -- Every file under lua/ (a spec checks that none is missing here).
      ["iceservers"] = "lua/iceservers/init.lua",
      ["iceservers.broker"] = "lua/iceservers/broker.lua",
      ["iceservers.cache"] = "lua/iceservers/cache.lua",
      ["iceservers.chain"] = "lua/iceservers/chain.lua",
      ["iceservers.context"] = "lua/iceservers/context.lua",
      ["iceservers.contract"] = "lua/iceservers/contract.lua",
      ["iceservers.encode"] = "lua/iceservers/encode.lua",
      ["iceservers.loader"] = "lua/iceservers/loader.lua",
      ["iceservers.normalize"] = "lua/iceservers/normalize.lua",
      ["iceservers.health"] = "lua/iceservers/health.lua",
      ["iceservers.prometheus"] = "lua/iceservers/prometheus.lua",
      ["iceservers.options"] = "lua/iceservers/options.lua",
      ["iceservers.redact"] = "lua/iceservers/redact.lua",
      ["iceservers.render"] = "lua/iceservers/render.lua",
      ["iceservers.rest"] = "lua/iceservers/rest.lua",
      ["iceservers.secrets"] = "lua/iceservers/secrets.lua",
      ["iceservers.pools"] = "lua/iceservers/pools.lua",
      ["iceservers.jwt"] = "lua/iceservers/jwt.lua",
      ["iceservers.ngx.auth"] = "lua/iceservers/ngx/auth.lua",
      ["iceservers.ngx.guard"] = "lua/iceservers/ngx/guard.lua",
      ["iceservers.ngx.stores"] = "lua/iceservers/ngx/stores.lua",
      ["iceservers.ngx.clock"] = "lua/iceservers/ngx/clock.lua",
      ["iceservers.ngx.counts"] = "lua/iceservers/ngx/counts.lua",
      ["iceservers.shape"] = "lua/iceservers/shape.lua",
      ["iceservers.settings"] = "lua/iceservers/settings.lua",
      ["iceservers.runtime.ffi"] = "lua/iceservers/runtime/ffi.lua",
      ["iceservers.runtime.http"] = "lua/iceservers/runtime/http.lua",
      ["iceservers.ngx"] = "lua/iceservers/ngx.lua",
      ["iceservers.ngx.cosocket"] = "lua/iceservers/ngx/cosocket.lua",
      ["iceservers.ngx.settings"] = "lua/iceservers/ngx/settings.lua",
      ["iceservers.ngx.health"] = "lua/iceservers/ngx/health.lua",
      ["iceservers.ngx.shm_cache"] = "lua/iceservers/ngx/shm_cache.lua",
      ["iceservers.stun.bits"] = "lua/iceservers/stun/bits.lua",
      ["iceservers.cli.probe"] = "lua/iceservers/cli/probe.lua",
      ["iceservers.stun.net_common"] = "lua/iceservers/stun/net_common.lua",
      ["iceservers.stun.net_ngx"] = "lua/iceservers/stun/net_ngx.lua",
      ["iceservers.stun.net_socket"] = "lua/iceservers/stun/net_socket.lua",
      ["iceservers.stun.probe"] = "lua/iceservers/stun/probe.lua",
      ["iceservers.stun.message"] = "lua/iceservers/stun/message.lua",
      ["iceservers.providers.cloudflare"] = "lua/iceservers/providers/cloudflare.lua",
      ["iceservers.providers.coturn"] = "lua/iceservers/providers/coturn.lua",
      ["iceservers.providers.metered"] = "lua/iceservers/providers/metered.lua",
      ["iceservers.providers.static"] = "lua/iceservers/providers/static.lua",
      ["iceservers.providers.stun"] = "lua/iceservers/providers/stun.lua",
      ["iceservers.providers.twilio"] = "lua/iceservers/providers/twilio.lua",
      ["iceservers.providers.xirsys"] = "lua/iceservers/providers/xirsys.lua",
   },
   install = {
      bin = { iceservers = "bin/iceservers" },
   },
}
test_dependencies = {
   "busted",
}
test = {
   type = "busted",
}
