#!/bin/sh
# Runs libFuzzer targets (built by `make fuzz`) for a while each, from a copy
# of their seed corpus, and ends with one line "fuzz: N passed, N failed".
# Usage: fuzz/run.sh BUILD_DIR SECONDS TARGET...
# A target fails on a non-zero exit (crash, leak, sanitizer report, failed
# check) or on any sanitizer text in its log; the report is printed and the
# input that failed is kept as BUILD_DIR/artifacts/TARGET-crash-* (or leak-*,
# timeout-*, oom-*).
set -u
cd "$(dirname "$0")/.."
build=$1
seconds=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/iceservers-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
passed=0
failed=0
for target in "$@"; do
  seeds=fuzz/corpus/$target
  if [ ! -d "$seeds" ]; then
    echo "fuzz: $target: no seed corpus in $seeds"
    failed=$((failed + 1))
    continue
  fi
  # libFuzzer adds the inputs it finds to its first corpus folder: a copy,
  # so that the committed corpus stays as it is.
  mkdir -p "$work/$target"
  cp -R "$seeds/." "$work/$target/"
  log=$work/$target.log
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/$target" -max_total_time="$seconds" -print_final_stats=1 -detect_leaks=1 \
    -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$target-" \
    "$work/$target" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" = 0 ] && ! grep -qE 'ERROR: [A-Za-z]*Sanitizer|runtime error:|fuzz check failed' "$log"
  then
    passed=$((passed + 1))
    echo "fuzz: $target: ok, ${execs:-?} executions in ${seconds} s"
  else
    failed=$((failed + 1))
    echo "fuzz: $target: FAILED (exit $rc) after ${execs:-?} executions:"
    # the report's first lines (what and where), then where the input went
    awk '/ERROR: |runtime error:|fuzz check failed/ { n = 30 } n-- > 0' "$log" | sed 's/^/    /'
    grep -E 'Test unit written|^stat::number_of_executed' "$log" | sed 's/^/    /'
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
