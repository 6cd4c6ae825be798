#!/bin/sh
# Installs what `make bench` compares against and drives the load with, from
# Debian's packages: luaossl and LuaSocket + LuaSec (the Lua anchors), wrk
# (HTTP load), and perf for profiling.  `make deps` does not need
# any of these; `make bench` runs this first.  Idempotent; run as root.
set -eu
export DEBIAN_FRONTEND=noninteractive

PKGS="lua-luaossl lua-socket lua-sec wrk linux-perf"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "bench-deps: installing$missing"
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
echo "bench-deps: all packages present"
