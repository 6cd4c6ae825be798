#!/bin/sh
# Installs everything iceservers builds, tests and benchmarks with, from
# Debian's packages (and npm for the browser test).  Idempotent; run as root.
set -eu

PKGS="build-essential pkg-config git ca-certificates openssl procps
 lua5.4 liblua5.4-dev lua5.3 liblua5.3-dev lua5.1 liblua5.1-0-dev
 luajit2 libluajit2-5.1-dev lua-cjson lua-busted lua-check luarocks
 lua-socket lua-sec
 libssl-dev libcurl4-openssl-dev
 nginx-light libnginx-mod-http-lua lua-resty-core lua-resty-lrucache
 coturn valgrind clang-14 libclang-rt-14-dev wrk
 chromium janus iproute2 prometheus curl python3 python3-jwt python3-cryptography
 redis-server lua-nginx-redis"
# lua-socket, lua-sec: the probe's transport outside nginx (optional at run
# time, needed by its specs).
# curl: spec/regions_ngx_spec.lua asks from other loopback addresses (--interface).
# redis-server, lua-nginx-redis (`require "nginx.redis"`; it pulls in nginx-extras,
# whose extra modules our configs do not load): spec/redis_ngx_spec.lua.
# python3-jwt, python3-cryptography (for /usr/bin/python3): spec/jwt_spec.lua makes
# its tokens and keys with them.
# prometheus: promtool checks the metrics page, and a real Prometheus scrapes it
# (spec/health_ngx_spec.lua).
# janus: spec/janus_spec.lua runs Debian's Janus (turn_rest_api against the
# example nginx) in a network namespace it makes with iproute2's `ip`.
# Node.js and npm (for the browser test's playwright-core) from Debian only
# when none is on PATH: a node installed another way (18 or later) is used.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

# shellcheck disable=SC2086
sh "$(dirname "$0")/apt-install.sh" deps $PKGS

# The browser test drives Debian's chromium with playwright-core, pinned in
# spec/browser/package-lock.json (no browser download: it uses /usr/bin/chromium).
cd "$(dirname "$0")/.."
if npm ls --prefix spec/browser >/dev/null 2>&1; then
  echo "deps: spec/browser/node_modules up to date"
else
  echo "deps: npm ci --prefix spec/browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix spec/browser --no-audit --no-fund
fi
