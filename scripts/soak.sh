#!/bin/sh
# The soak test (`make soak`; a short one in `scripts/test.sh soak`): wrk for
# SOAK_SECONDS (default 60) against the example nginx.conf with 2 workers,
# serving coturn and a cached REST provider (Metered, mocked, failing one call
# in five) chained to coturn.  Checks non-2xx answers, descriptors, the error
# log and secrets in the logs, and worker RSS growth (SOAK_RSS=check, the
# default; SOAK_RSS=report only prints it).  Ends with one line
# "N successes / N failures / N errors".  The driver is soak/soak.lua; every
# knob is described there.
set -u
cd "$(dirname "$0")/.." || exit 1

command -v wrk >/dev/null 2>&1 || { echo "soak: wrk is not installed (make deps)" >&2; exit 1; }
lua=$(command -v lua5.4 || command -v luajit) || { echo "soak: no lua5.4 or luajit" >&2; exit 1; }
# nginx loads the LuaJIT build of the C core.
make --no-print-directory -s LUA_VERSION=5.1 all >/dev/null || { echo "soak: build failed" >&2; exit 1; }

# Every process the driver starts (nginx masters, wrk) is listed in this file;
# whatever way the driver ends, the ones still running are stopped here.
pidfile=$(mktemp "${TMPDIR:-/tmp}/iceservers-soak.XXXXXX") || exit 1
cleanup() {
  while read -r kind pid; do
    if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then continue; fi
    # only if the pid still belongs to what was started (pids are reused)
    case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" in
      *"$kind"*) kill -TERM "$pid" 2>/dev/null ;;
    esac
  done < "$pidfile"
  rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No sanitizer runtime or options reach the driver, nginx or wrk.
env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS \
  SOAK_PIDFILE="$pidfile" "$lua" soak/soak.lua
