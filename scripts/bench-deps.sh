#!/bin/sh
# Installs what `make bench` compares against and drives the load with, from
# Debian's packages: luaossl and LuaSocket + LuaSec (the Lua anchors), wrk
# (HTTP load), and perf for profiling.  `make deps` does not need
# any of these; `make bench` runs this first.  Idempotent; run as root.
set -eu

PKGS="lua-luaossl lua-socket lua-sec wrk linux-perf"

# shellcheck disable=SC2086
sh "$(dirname "$0")/apt-install.sh" bench-deps $PKGS
