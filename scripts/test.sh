#!/bin/sh
# Runs the test suites and ends with one line "N passed, N failed" summing
# them all.  Usage: test.sh all|unit|valgrind|asan|soak|fuzz
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
busted_bin=$(command -v busted) || { echo "busted is not installed (make deps)" >&2; exit 1; }
log_dir=${TMPDIR:-/tmp}/iceservers-test.$$
mkdir -p "$log_dir"
trap 'rm -rf "$log_dir"' EXIT
passed=0
failed=0
status=0

# run NAME CMD...: one busted run; its summary line is added to the totals.
run() {
  name=$1; shift
  log="$log_dir/$name.log"
  echo "== $name: $*"
  "$@" 2>&1 | tee "$log"
  summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' "$log" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "== $name: no summary line (crashed?)"
    failed=$((failed + 1))
    status=1
    return
  fi
  ok=$(echo "$summary" | awk '{print $1}')
  bad=$(echo "$summary" | awk '{print $4 + $7}')
  passed=$((passed + ok))
  failed=$((failed + bad))
  [ "$bad" = 0 ] || status=1
}

build() {
  make --no-print-directory -s "$@" >/dev/null || { echo "build failed: make $*" >&2; exit 1; }
}

# Every spec: the servers they start (nginx, coturn, chromium) get a clean
# environment from spec/support/sh.lua, so only the Lua process is checked.
CORE_SPECS="spec"
# The specs tagged #integration (a real Chromium, a real Janus: the browser and
# Janus proofs) run once, in the lua5.4 pass: what they prove is the servers'
# behaviour, not this interpreter's, and they are the slowest.
NO_INTEGRATION="--exclude-tags=integration"

unit() {
  build LUA_VERSION=5.4
  build LUA_VERSION=5.1
  run lua5.4 lua5.4 "$busted_bin" spec
  run luajit luajit "$busted_bin" $NO_INTEGRATION spec
}

valgrind_suite() {
  build LUA_VERSION=5.4
  # Only the Lua process runs under valgrind; the servers specs start do not
  # (no --trace-children).  Definite leaks and any error fail the run.
  # #novalgrind: a case that hangs only under valgrind (see its comment).
  ICESERVERS_SLOW=valgrind run valgrind valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    lua5.4 "$busted_bin" --exclude-tags=integration,novalgrind $CORE_SPECS
  vg_rc=$(grep -c '^==[0-9]*== ' "$log_dir/valgrind.log" || true)
  if [ "$vg_rc" != 0 ]; then
    echo "== valgrind reported problems"
    failed=$((failed + 1)); status=1
  fi
}

asan_suite() {
  build LUA_VERSION=5.4 BUILD=build/asan-5.4 CC=gcc \
    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    LDFLAGS="-fsanitize=address,undefined"
  asan_rt=$(gcc -print-file-name=libasan.so)
  ubsan_rt=$(gcc -print-file-name=libubsan.so)
  # lua5.4 itself is not instrumented, so the runtime is preloaded; the specs'
  # server harness strips LD_PRELOAD and *SAN_OPTIONS before starting nginx.
  ICESERVERS_BUILD=build/asan-5.4 ICESERVERS_SLOW=asan \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=98 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$(pwd)/scripts/lsan.supp:print_suppressions=0 \
  LD_PRELOAD="$asan_rt $ubsan_rt" \
    run asan lua5.4 "$busted_bin" $NO_INTEGRATION $CORE_SPECS
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log_dir/asan.log"; then
    echo "== sanitizers reported problems"
    failed=$((failed + 1)); status=1
  fi
}

# A short soak (scripts/soak.sh; `make soak` is the 60 s one): 30 s of wrk
# against the example nginx.conf serving coturn and a cached REST provider whose
# mock fails one call in five.  Non-2xx answers, descriptors and the logs are
# checked; worker RSS growth is only reported.  It prints busted's summary line.
soak_suite() {
  build LUA_VERSION=5.1
  run soak env SOAK_SECONDS=30 SOAK_WARMUP=10 SOAK_RSS=report sh scripts/soak.sh
}

# libFuzzer on the C core (fuzz/), FUZZ_SECONDS per target (60 in CI), from the
# committed corpus; a crash, leak or sanitizer report fails it.
fuzz_suite() {
  log="$log_dir/fuzz.log"
  echo "== fuzz: make fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-60}"
  make --no-print-directory -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" 2>&1 | tee "$log"
  line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "== fuzz: no summary line"
    failed=$((failed + 1)); status=1
    return
  fi
  ok=$(echo "$line" | awk '{print $2}')
  bad=$(echo "$line" | awk '{print $4}')
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$bad" = 0 ] || status=1
}

case "$what" in
  unit) unit ;;
  valgrind) valgrind_suite ;;
  asan) asan_suite ;;
  soak) soak_suite ;;
  fuzz) fuzz_suite ;;
  all) unit; valgrind_suite; asan_suite; soak_suite; fuzz_suite ;;
  *) echo "usage: $0 all|unit|valgrind|asan|soak|fuzz" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed"
exit $status
