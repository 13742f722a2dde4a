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

# Ports reserved with free_port (below) are released last.
defer "_port_release"

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
  defer "detach_loop '$LOOP_DEV' '$LOOP_IMG'"
  mkdir -p "$mnt"
  mount "$LOOP_DEV" "$mnt"
  defer "umount -l '$mnt'"
}

# detach_loop DEV FILE: losetup -d DEV, but only while DEV is still backed by
# FILE. Defer this, never a bare `losetup -d DEV`: once a test has detached
# DEV itself, the number may be handed to another test at once, and a second
# detach at exit would pull that test's device from under it.
detach_loop() {
  losetup -n -O BACK-FILE "$1" 2>/dev/null | grep -qF "$2" || return 0
  losetup -d "$1"
}

# wait_for CMD...: retries for up to $WAIT_FOR_SECONDS (60 s): a bound, not a
# timed assertion — it only has to outlast a machine busy with other tests.
WAIT_FOR_SECONDS=${WAIT_FOR_SECONDS:-60}
wait_for() {
  local i
  for ((i = 0; i < WAIT_FOR_SECONDS * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for: $*"
}

# free_port: prints a TCP+UDP port number that nothing on this machine is
# bound to (IPv4 or IPv6, any address) and that no other running test holds,
# for tools that must be told their port up front (nsd, unbound, rbldnsd,
# Postfix, MariaDB …) and for "nobody listens here" targets. Servers that
# can bind port 0 and print the port should do that instead (start_daemon).
# Ports come from 20000-32767, below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999), so neither port-0 servers nor
# outgoing connections take them. A port is reserved for the test's life by
# an atomic mkdir in $CK_PORT_DIR (the one directory tests share; entries
# carry the owner's pid and are removed at exit). Usable as $(free_port).
CK_PORT_DIR=${CK_PORT_DIR:-/tmp/cloudkeep-test-ports}
free_port() {
  local port i
  if [ ! -d "$CK_PORT_DIR" ]; then
    mkdir -p "$CK_PORT_DIR" 2>/dev/null && chmod 1777 "$CK_PORT_DIR" 2>/dev/null
  fi
  _port_sweep
  for ((i = 0; i < 1000; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    mkdir "$CK_PORT_DIR/$port" 2>/dev/null || continue
    echo "$$" >"$CK_PORT_DIR/$port/pid"
    if _port_unbound "$port"; then
      echo "$port"
      return 0
    fi
    # In use by something that is not a test: leave it reserved (by us) so
    # that nobody else tries it either; released at exit.
  done
  fail "free_port: no free port in 20000-32767"
}
_port_unbound() {
  /usr/bin/python3 - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
fams = [(socket.AF_INET, "0.0.0.0")]
if socket.has_ipv6:
    fams.append((socket.AF_INET6, "::"))
for fam, host in fams:
    for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        try:
            s = socket.socket(fam, typ)
        except OSError:
            continue  # no IPv6 here
        try:
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
PY
}
# Releases this test's reservations (deferred first, so it runs last).
_port_release() {
  local d
  for d in "$CK_PORT_DIR"/*/; do
    [ "$(cat "$d/pid" 2>/dev/null)" = "$$" ] && rm -rf "$d"
  done
  return 0
}
# Reclaims reservations of tests that died without cleaning up (SIGKILL),
# once per test, only those older than an hour.
_PORT_SWEPT=""
_port_sweep() {
  [ -z "$_PORT_SWEPT" ] || return 0
  _PORT_SWEPT=1
  local d pid
  for d in $(find "$CK_PORT_DIR" -mindepth 1 -maxdepth 1 -type d -mmin +60 2>/dev/null); do
    pid=$(cat "$d/pid" 2>/dev/null) || continue
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
    mv "$d" "$d.stale.$$" 2>/dev/null && rm -rf "$d.stale.$$"
  done
  return 0
}

# start_daemon NAME PATTERN CMD...: starts CMD in the background with stdout
# in $WORK/NAME.out and stderr in $WORK/NAME.err, waits (up to
# $WAIT_FOR_SECONDS) until a line of stdout or stderr matches the grep -E
# PATTERN, and kills it at exit. Sets DAEMON_PID, DAEMON_LINE (the first
# matching line) and DAEMON_PORT (the last :PORT or "port N" in that line,
# if any). Servers print their bound address, so tests ask for port 0 (or a
# Unix socket) and never collide on fixed ports:
#   start_daemon srv '^listening' "$SRV" "$IMG" --listen 127.0.0.1:0
#   nbdinfo "nbd://127.0.0.1:$DAEMON_PORT"
# A server that binds UDP port 0 and then TCP on the same number can find
# that number taken by some TCP connection; give those (latency serve) a
# free_port instead, or retry as spf_suites_e2e.py does.
start_daemon() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  DAEMON_PID=$!
  DAEMON_LINE=""
  DAEMON_PORT=""
  defer "kill -9 $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null"
  local i
  for ((i = 0; i < WAIT_FOR_SECONDS * 10; i++)); do
    DAEMON_LINE=$(grep -hE -m1 "$pattern" "$WORK/$name.out" "$WORK/$name.err" 2>/dev/null | head -n1) || true
    if [ -n "$DAEMON_LINE" ]; then
      DAEMON_PORT=$(sed -nE 's/.*:([0-9]+)([^0-9].*)?$/\1/p; t; s/.*[Pp]ort[ =]([0-9]+).*/\1/p' <<<"$DAEMON_LINE" | head -n1)
      return 0
    fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      cat "$WORK/$name.err" >&2
      fail "$name exited before it was ready"
    fi
    sleep 0.1
  done
  cat "$WORK/$name.err" >&2
  fail "$name did not print /$pattern/ within $WAIT_FOR_SECONDS s"
}
