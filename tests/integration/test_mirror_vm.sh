#!/usr/bin/env bash
# The demo VM across an automatic, fenced failover (demo/mirror-vm/run-demo.sh,
# what `make demo-mirror` runs): two mirror daemons with fencing = "etcd" in
# two namespaces, a real etcd and a qemu VM (TCG, the Debian kernel, a busybox
# initramfs) in a third; the VM's disk is the mirror's NBD export at the
# service address, and it writes checksummed records and fsyncs each. The demo
# SIGKILLs the primary and takes its links down, and does nothing else; run
# twice: kill then links (A's kernel closes its connections), and links then
# kill (a power loss: B detects by peer_timeout, the client by its own
# retransmissions). Asserts, each time:
#   - the standby promoted itself: its log shows, in this order, the loss of
#     its peer, the leader key won (not by promote --force), the service
#     address taken, the promotion, the old primary recorded Outdated in etcd
#     (before b's first acknowledgement without it); it is Primary, holds the key, and etcd's
#     own leader key names it with a newer token than the old primary's; the
#     service address is on its interface;
#   - the VM did not reboot (one boot_id, one kernel start, one writer start)
#     and saw no I/O error; records were acknowledged before the kill and
#     after the failover, and every acknowledged record is on the survivor's
#     backing file (checked again here from the kept files);
#   - the demo left nothing behind (namespaces, processes, its directory),
#     also when it fails (a refused fencing setting, after etcd and the
#     namespaces are up), and a bad setting is a one-line error, exit 2.
# No durations are asserted; the measured timings are printed.
. "$(dirname "$0")/lib.sh"
need_root
need qemu-system-x86_64 ip arping busybox openssl etcd gcc modinfo readelf /usr/bin/python3
compgen -G '/boot/vmlinuz-*' >/dev/null || skip_or_fail "linux-image-amd64 (/boot/vmlinuz-*)"
SRC=${CK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DEMO=$SRC/demo/mirror-vm/run-demo.sh
# The VM's boot files are cached per kernel in BUILD/demo-mirror-vm.
BUILD=${CK_BUILD_DIR:-$WORK}
MIN_BEFORE=50
MIN_AFTER=100

# run_demo OUT [VAR=VALUE...]: the demo in the background (so that the test
# knows its pid, which names its namespaces ckvmPID-*), stopped if the test is.
run_demo() {
  local out=$1
  shift
  env "$@" bash "$DEMO" "$CK" "$BUILD" >"$out" 2>&1 &
  DEMO_PID=$!
  defer "kill -TERM $DEMO_PID 2>/dev/null; wait $DEMO_PID 2>/dev/null"
  DEMO_RC=0
  wait "$DEMO_PID" || DEMO_RC=$?
}
# left_behind PID DIR: what the demo run PID left: its namespaces ckvmPID-*,
# processes naming them (qemu is -name ckvmPID-vm) or its directory DIR (the
# daemons', etcd's and the log stampers' command lines), and DIR itself.
left_behind() {
  ip netns list | awk -v p="ckvm$1-" 'index($1, p) == 1 {print "namespace " $1}'
  pgrep -af -- "ckvm$1-|$2" | sed 's/^/process /' || true
  [ ! -e "$2" ] || echo "directory $2"
}
# demo_work FILE: the demo's directory, from its DEMO_RESULT file.
demo_work() { sed -n 's/^DEMO_WORK=//p' "$1" | head -n1; }

# --- a bad setting: one line, exit 2 ----------------------------------------------
run_demo "$WORK/bad.out" DEMO_LEASE_TTL=5x
expect_eq "$DEMO_RC" 2 "exit code for DEMO_LEASE_TTL=5x"
expect_eq "$(wc -l <"$WORK/bad.out")" 1 "one line"
expect_contains "$(cat "$WORK/bad.out")" "DEMO_LEASE_TTL must be a whole number, got '5x'"

# --- a failure midway: etcd and the namespaces are up, then the fencing -----------
# settings are refused (renew_interval + etcd_timeout >= lease_ttl - suspend_margin).
run_demo "$WORK/refused.out" DEMO_RESULT="$WORK/refused.env" DEMO_LEASE_TTL=2 DEMO_RENEW_MS=1000 \
  DEMO_ETCD_TIMEOUT_MS=1000
expect_eq "$DEMO_RC" 1 "exit code when the fencing settings are refused"
expect_contains "$(cat "$WORK/refused.out")" "etcd (one node)" "the demo got as far as etcd"
expect_contains "$(cat "$WORK/refused.out")" "the fencing settings were refused"
expect_contains "$(cat "$WORK/refused.out")" "lease_ttl" "the refusal names the setting"
W_REFUSED=$(demo_work "$WORK/refused.env")
[ -n "$W_REFUSED" ] || fail "the failed demo did not name its directory"
expect_eq "$(left_behind "$DEMO_PID" "$W_REFUSED")" "" "left behind by the failed demo"

# --- the failover, twice: SIGKILL then links down, and links down first -------------
# failover NAME LINKS_FIRST WRITERS: one demo run and its assertions; files $WORK/NAME*.
failover() {
  local name=$1 keep=$WORK/$1-keep blog serial steps
  local L_LOST L_WON L_ADDR L_PROM L_OUTD
  echo "=== failover run '$name' (DEMO_LINKS_FIRST=$2 DEMO_WRITERS=$3)"
  run_demo "$WORK/$name.out" DEMO_RESULT="$WORK/$name.env" DEMO_KEEP="$keep" \
    DEMO_WRITE_SECONDS=3 DEMO_AFTER_ACKS=$MIN_AFTER DEMO_LINKS_FIRST="$2" DEMO_WRITERS="$3"
  cat "$WORK/$name.out"
  expect_eq "$DEMO_RC" 0 "run-demo.sh exit code ($name)"
  [ -s "$WORK/$name.env" ] || fail "the demo wrote no results ($name)"
  # shellcheck disable=SC1090
  . "$WORK/$name.env"
  [ -n "${DEMO_WORK:-}" ] || fail "the demo did not name its directory"
  expect_eq "$(left_behind "$DEMO_PID" "$DEMO_WORK")" "" "left behind by the demo"

  # The standby promoted itself, fenced.
  blog=$keep/b.log
  L_LOST=$(line_of "$blog" "connection Connected -> ")
  L_WON=$(line_of "$blog" "fencing: won the leader key")
  L_ADDR=$(line_of "$blog" "fencing: took the service address")
  L_PROM=$(line_of "$blog" "fencing: promoted: primary")
  L_OUTD=$(line_of "$blog" "fencing: recorded a Outdated in etcd")
  steps="lost $L_LOST, won $L_WON, address $L_ADDR, promoted $L_PROM, a outdated $L_OUTD"
  [ -n "$L_LOST" ] && [ -n "$L_WON" ] && [ -n "$L_ADDR" ] && [ -n "$L_PROM" ] && [ -n "$L_OUTD" ] ||
    fail "b's log lacks a failover step ($steps)"
  [ "$L_LOST" -lt "$L_WON" ] && [ "$L_WON" -lt "$L_ADDR" ] && [ "$L_ADDR" -lt "$L_PROM" ] &&
    [ "$L_PROM" -lt "$L_OUTD" ] || fail "b's failover steps out of order ($steps)"
  expect_not_contains "$(cat "$blog" "$keep/a.log")" "promote --force" "a forced promotion"
  expect_eq "$B_ROLE" Primary "b's role"
  expect_eq "$B_LEADS" True "b holds the leader key"
  expect_eq "$ETCD_LEADER" "b $TOKEN_B" "etcd's leader key (node, create_revision)"
  expect_eq "$(/usr/bin/python3 -c "print($TOKEN_B > $TOKEN_A)")" True "b's token $TOKEN_B newer than a's $TOKEN_A"
  expect_eq "$ADDR_ON_B" 1 "the service address on b"
  expect_contains "$(cat "$keep/mirror.toml")" 'fencing = "etcd"'
  expect_contains "$(cat "$keep/qemu.cmdline")" "reconnect-delay=$RECONNECT_DELAY"

  # The VM: no reboot, no I/O error, no acknowledged record lost.
  serial=$keep/serial.log
  expect_eq "$BOOT_IDS" 1 "distinct boot ids"
  expect_eq "$(grep -c 'INIT kernel' "$serial")" 1 "kernel starts"
  expect_eq "$(grep -c 'START run=' "$serial")" "$3" "writer starts"
  expect_eq "$V_WRITERS" "$3" "writers verified"
  expect_eq "$(grep -cE 'EIO seq=|I/O error' "$serial" || true)" 0 "I/O error lines on the console"
  expect_eq "$V_EIO" 0 "I/O errors seen by the VM"
  expect_eq "$V_MISSING" 0 "acknowledged records missing on the survivor"
  expect_eq "$V_PRESENT" "$V_ACKED" "every acknowledged record present"
  expect_eq "$(/usr/bin/python3 -c "print($ACKS_AT_KILL >= $MIN_BEFORE)")" True "at least $MIN_BEFORE records acknowledged through a ($ACKS_AT_KILL)"
  expect_eq "$(/usr/bin/python3 -c "print($V_AFTER >= $MIN_AFTER)")" True "at least $MIN_AFTER records acknowledged after b's promotion ($V_AFTER)"
  expect_eq "$(/usr/bin/python3 -c "print($V_ACKED >= $ACKS_AT_KILL + $MIN_AFTER)")" True "acknowledged in total ($V_ACKED)"
  expect_rc 0 /usr/bin/python3 "$SRC/demo/mirror-vm/verify.py" "$keep/b.img" "$serial"
  expect_contains "$OUT" " 0 missing or wrong"

  echo "timings ($name): kill -> b saw its peer gone ${KILL_TO_DETECT}s, won the key ${KILL_TO_WON}s, took the address ${KILL_TO_ADDR}s," \
    "promoted ${KILL_TO_PROMOTED}s, outdated a ${KILL_TO_OUTDATED}s, first record acknowledged by b ${KILL_TO_FIRST_ACK}s (reconnect-delay ${RECONNECT_DELAY}s);" \
    "acked $V_ACKED ($ACKS_AT_KILL before the kill, $V_AFTER after)"
}
line_of() { grep -n -F -m1 -- "$2" "$1" | cut -d: -f1; }
# Four writers in the first run: four requests in flight when A dies, re-sent
# by qemu to B after the reconnect (each must be safe to replay).
failover kill-first 0 4
failover links-first 1 1
