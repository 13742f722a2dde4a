# Shared helpers for integration tests (bash). Source it first:
#   . "$(dirname "$0")/lib.sh"
#
# - Everything a test creates is registered with `defer` and undone in
#   reverse order on exit — success, failure or signal.
# - `need` checks for a component: missing -> skip (exit 77), but under
#   CI=true a missing component is a failure (exit 1), never a skip.
# - $CK is the cloudkeep binary under test (set by ctest).
set -euo pipefail

CK="${CLOUDKEEP:-cloudkeep}"
TEST_NAME="$(basename "$0" .sh)"
_DEFERRED=()
_FAILED=0

defer() { _DEFERRED+=("$*"); }

_run_deferred() {
  local rc=$?
  set +e
  local i
  for ((i = ${#_DEFERRED[@]} - 1; i >= 0; i--)); do
    eval "${_DEFERRED[$i]}" >/dev/null 2>&1
  done
  if [ "$rc" -eq 0 ] && [ "$_FAILED" -ne 0 ]; then rc=1; fi
  if [ "$rc" -eq 0 ]; then echo "PASS: $TEST_NAME"; elif [ "$rc" -eq 77 ]; then echo "SKIP: $TEST_NAME"; else echo "FAIL: $TEST_NAME (exit $rc)"; fi
  exit "$rc"
}
trap _run_deferred EXIT
trap 'exit 130' INT TERM

skip_or_fail() {
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: $TEST_NAME needs $* (CI=true: a missing component is a failure)" >&2
    exit 1
  fi
  echo "SKIP: $TEST_NAME needs $*" >&2
  exit 77
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || skip_or_fail "$c"
  done
}

need_root() { [ "$(id -u)" -eq 0 ] || skip_or_fail "root"; }

# A private scratch directory, removed at exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ck-${TEST_NAME}.XXXXXX")"
defer "rm -rf '$WORK'"

fail() {
  echo "ASSERTION FAILED: $*" >&2
  exit 1
}

# expect_rc CODE command...: runs the command, checks its exit code; its
# stdout is in $OUT and stderr in $ERR afterwards.
expect_rc() {
  local want=$1
  shift
  local rc=0
  OUT="$("$@" 2>"$WORK/.stderr")" || rc=$?
  ERR="$(cat "$WORK/.stderr")"
  if [ "$rc" -ne "$want" ]; then
    echo "command: $*" >&2
    echo "stdout: $OUT" >&2
    echo "stderr: $ERR" >&2
    fail "expected exit $want, got $rc"
  fi
}

expect_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: '$1' != '$2'"; }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "${3:-missing text}: '$2' not in: $1" ;; esac; }
expect_not_contains() { case "$1" in *"$2"*) fail "${3:-unexpected text}: '$2' in: $1" ;; *) ;; esac; }

# JSON field extraction with Debian's python: json_get 'expr' <<< "$json"
json_get() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# mkfs_loop SIZE FS MOUNTPOINT: an image file with a real filesystem on a
# loop device, mounted; sets LOOP_DEV and LOOP_IMG. Undone at exit.
mkfs_loop() {
  local size=$1 fs=$2 mnt=$3
  need_root
  need losetup "mkfs.$fs"
  LOOP_IMG="$WORK/$(basename "$mnt").img"
  truncate -s "$size" "$LOOP_IMG"
  "mkfs.$fs" -q "$LOOP_IMG" >/dev/null 2>&1 || "mkfs.$fs" "$LOOP_IMG" >/dev/null
  LOOP_DEV="$(losetup --find --show "$LOOP_IMG")"
  defer "losetup -d '$LOOP_DEV'"
  mkdir -p "$mnt"
  mount "$LOOP_DEV" "$mnt"
  defer "umount -l '$mnt'"
}

# wait_for CMD...: retries for up to 20 s.
wait_for() {
  local i
  for ((i = 0; i < 200; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for: $*"
}

# start_daemon NAME PATTERN CMD...: starts CMD in the background with stdout
# in $WORK/NAME.out and stderr in $WORK/NAME.err, waits (up to 20 s) until
# a line of stdout matches the grep -E PATTERN, and kills it at exit. Sets
# DAEMON_PID. Servers print their bound address there, so tests ask for
# port 0 (or a Unix socket) and never collide on fixed ports.
start_daemon() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  DAEMON_PID=$!
  defer "kill -9 $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null"
  local i
  for ((i = 0; i < 200; i++)); do
    if grep -qE "$pattern" "$WORK/$name.out" 2>/dev/null; then return 0; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      cat "$WORK/$name.err" >&2
      fail "$name exited before it was ready"
    fi
    sleep 0.1
  done
  cat "$WORK/$name.err" >&2
  fail "$name did not print /$pattern/ within 20 s"
}
