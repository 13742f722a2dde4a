#!/usr/bin/env bash
# Runs the ctest suite of one build directory: unit tests in parallel, then
# integration tests, INTEGRATION_JOBS at a time (default 4: on 2 cores they
# mostly wait on servers, sleeps and the network; every test takes its own
# ports, namespaces and loop devices, see tests/integration/CMakeLists.txt).
# ctest starts the longest first (COST). Exits non-zero if anything failed;
# under CI=true a skipped test counts as a failure.
set -uo pipefail
build=${1:-build}
cd "$build" || exit 1
if [ -n "$(grep -s CLOUDKEEP_SANITIZE:BOOL=ON CMakeCache.txt)" ]; then
  # Leaks and UB are failures; keep going past the first to see them all.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
rc=0
# LastTest.log holds the last ctest run only: check it after each.
skipped() {
  if [ "${CI:-}" = "true" ] && grep -qs "Not Run\|Skipped" Testing/Temporary/LastTest.log; then
    echo "CI=true: skipped tests count as failures ($1)" >&2
    rc=1
  fi
}
ctest -L unit --output-on-failure -j "$(nproc)" || rc=1
skipped unit
ctest -L integration --output-on-failure -j "${INTEGRATION_JOBS:-4}" || rc=1
skipped integration
exit $rc
