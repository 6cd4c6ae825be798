#!/bin/sh
# Installs everything iceservers builds, tests and benchmarks with, from
# Debian's packages (and npm for the browser test).  Idempotent; run as root.
set -eu
export DEBIAN_FRONTEND=noninteractive

PKGS="build-essential pkg-config git ca-certificates openssl procps
 lua5.4 liblua5.4-dev lua5.3 liblua5.3-dev lua5.1 liblua5.1-0-dev
 luajit2 libluajit2-5.1-dev lua-cjson lua-busted lua-check luarocks
 libssl-dev libcurl4-openssl-dev
 nginx-light libnginx-mod-http-lua lua-resty-core
 coturn valgrind clang-14 libclang-rt-14-dev wrk
 chromium"
# Node.js and npm (for the browser test's playwright-core) from Debian only
# when none is on PATH: a node installed another way (18 or later) is used.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing$missing"
  apt-get update -q
  # policy-rc.d keeps the packaged nginx and coturn services from starting:
  # the tests start their own on loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
echo "deps: all packages present"

# The browser test drives Debian's chromium with playwright-core, pinned in
# spec/browser/package-lock.json (no browser download: it uses /usr/bin/chromium).
cd "$(dirname "$0")/.."
if npm ls --prefix spec/browser >/dev/null 2>&1; then
  echo "deps: spec/browser/node_modules up to date"
else
  echo "deps: npm ci --prefix spec/browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix spec/browser --no-audit --no-fund
fi
