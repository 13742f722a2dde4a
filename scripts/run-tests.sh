#!/usr/bin/env bash
# Runs the ctest suite of one build directory: unit tests in parallel, then
# integration tests one at a time (they share loop devices, ports and
# namespaces). Exits non-zero if anything failed; under CI=true a skipped
# test counts as a failure.
set -uo pipefail
build=${1:-build}
cd "$build" || exit 1
if [ -n "$(grep -s CLOUDKEEP_SANITIZE:BOOL=ON CMakeCache.txt)" ]; then
  # Leaks and UB are failures; keep going past the first to see them all.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
rc=0
ctest -L unit --output-on-failure -j "$(nproc)" || rc=1
ctest -L integration --output-on-failure -j 1 || rc=1
if [ "${CI:-}" = "true" ] && grep -qs "Not Run\|Skipped" Testing/Temporary/LastTest.log; then
  echo "CI=true: skipped tests count as failures" >&2
  rc=1
fi
exit $rc
