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
# Runs ctest with the given arguments; under CI=true a test that was skipped
# or not run is a failure. ctest's own console marks are matched
# ("***Skipped", "***Not Run", "tests did not run"), not test output: a
# test may well be named ...IsSkipped.
run_ctest() {
  local what=$1 out status
  shift
  out=$(mktemp)
  ctest "$@" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || rc=1
  if [ "${CI:-}" = "true" ] && grep -qE '\*\*\*(Skipped|Not Run)|tests did not run' "$out"; then
    echo "CI=true: skipped tests count as failures ($what)" >&2
    rc=1
  fi
  rm -f "$out"
}
run_ctest unit -L unit --output-on-failure -j "$(nproc)"
run_ctest integration -L integration --output-on-failure -j "${INTEGRATION_JOBS:-4}"
exit $rc
