#!/usr/bin/env bash
# The VM that survives its host (make demo-mirror).
#
#   run-demo.sh [CLOUDKEEP [BUILD_DIR]]
#
# Three network namespaces: host A and host B run the two `cloudkeep mirror`
# nodes of one resource (replication over their own veth link); the client
# namespace runs a small VM (qemu-system-x86_64 -accel tcg, the Debian kernel,
# a busybox initramfs with guest_writer) whose disk is the mirror's NBD export,
# reached at a service address through qemu's NBD client with reconnect-delay.
# The VM writes numbered, checksummed records and fsyncs each. The demo
# SIGKILLs the primary and takes its links down, moves the service address to
# B, promotes B, and the VM goes on writing without a reboot; at the end every
# record the VM saw acknowledged is read back from B's backing file.
#
#   A ns                      client ns                        B ns
#   eth1 10.253.0.1    -- pa [br0 10.253.0.100] pb --    eth1 10.253.0.2
#   (+ service .10)            qemu -> 10.253.0.10:10809   (+ service .10 after failover)
#   eth0 10.252.0.1  ---------- replication ----------  eth0 10.252.0.2
#
# THE FAILOVER HERE IS MANUAL: this script kills A, moves the address and runs
# `cloudkeep mirror promote` on B itself (the steps marked "MANUAL FAILOVER"
# below). Issue 13 makes the daemons do it (etcd lease, fencing token,
# service_address), and those marked steps are where it plugs in.
#
# Environment (the integration test sets some):
#   DEMO_WRITE_SECONDS=5    how long the VM writes through A before the kill
#   DEMO_AFTER_ACKS=200     acknowledgements to wait for after the failover
#   DEMO_RECONNECT_DELAY=20 qemu's NBD reconnect-delay (s): requests wait this long for a server
#   DEMO_LINKS_FIRST=1      take A's links down before the SIGKILL (a power loss: no RST or FIN
#                           from A's kernel reaches B or the client)
#   DEMO_RESULT=FILE        write the measured numbers there as shell assignments
#   DEMO_KEEP=DIR           keep the logs, images and serial console in DIR
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CK=${1:-${CLOUDKEEP:-$REPO/build/src/cli/cloudkeep}}
BUILD_DIR=${2:-$REPO/build}
WRITE_SECONDS=${DEMO_WRITE_SECONDS:-5}
AFTER_ACKS=${DEMO_AFTER_ACKS:-200}
RECONNECT_DELAY=${DEMO_RECONNECT_DELAY:-20}
LINKS_FIRST=${DEMO_LINKS_FIRST:-0}

if [ "$(id -u)" -ne 0 ]; then
  echo "run-demo: network namespaces need root; re-running under sudo" >&2
  exec sudo --preserve-env=DEMO_WRITE_SECONDS,DEMO_AFTER_ACKS,DEMO_RECONNECT_DELAY,DEMO_LINKS_FIRST,DEMO_RESULT,DEMO_KEEP \
    bash "${BASH_SOURCE[0]}" "$@"
fi
[ -x "$CK" ] || {
  echo "run-demo: no cloudkeep binary at $CK (make build)" >&2
  exit 1
}
CK=$(readlink -f "$CK")
for c in qemu-system-x86_64 ip arping busybox openssl python3 gcc modinfo; do
  command -v "$c" >/dev/null || {
    echo "run-demo: $c is missing: scripts/install-deps.sh demo-mirror" >&2
    exit 1
  }
done

# --- bookkeeping: steps with timings, cleanup of everything on any exit -------
T0=$EPOCHREALTIME
W=$(mktemp -d /tmp/cloudkeep-demo-mirror.XXXXXX)
NS_A=ckvm$$-a NS_B=ckvm$$-b NS_C=ckvm$$-c
PIDS=()
declare -A PID=() # the mirror daemons by node
NSS=()
OK=0
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; } # since T0 T1: T1 - T0 in seconds
step() { printf '\n\033[1m[+%7ss] ==> %s\033[0m\n' "$(since "$T0" "$EPOCHREALTIME")" "$*"; }
note() { printf '[+%7ss]     %s\n' "$(since "$T0" "$EPOCHREALTIME")" "$*"; }
die() {
  echo "run-demo: FAILED: $*" >&2
  exit 1
}
cleanup() {
  local rc=$? p n
  set +e
  if [ "$OK" != 1 ]; then
    echo "--- the demo failed (exit $rc); last lines of its logs:" >&2
    for f in a.log b.log qemu.err serial.log; do
      [ -s "$W/$f" ] && { echo "--- $f" >&2; tail -15 "$W/$f" >&2; }
    done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -9 "${PIDS[$i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
  if [ -n "${DEMO_KEEP:-}" ]; then
    mkdir -p "$DEMO_KEEP" && cp -a "$W"/. "$DEMO_KEEP"/ && echo "run-demo: logs and images kept in $DEMO_KEEP" >&2
  fi
  rm -rf "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Background processes are started with `ip netns exec` itself (it execs the
# command), never through a shell function, so that $! is the process itself:
# the SIGKILL below must hit the daemon, not a subshell around it.
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
ckm() { "$CK" mirror "$@" --config "$W/mirror.toml" --run-dir "$W/run"; }
st() { "$CK" --json mirror status web --config "$W/mirror.toml" --run-dir "$W/run" --node "$1" 2>/dev/null |
  python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$2" 2>/dev/null; }
wait_st() { # NODE EXPR SECONDS
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    [ "$(st "$1" "$2")" = True ] && return 0
    sleep 0.05
  done
  die "node $1: timed out after $3 s waiting for: $2"
}
# serial console lines after a time: count, or the first one
acks_after() { awk -v t="$1" '$1 > t && / ACK seq=/ {n++} END {print n + 0}' "$W/serial.log"; }
first_after() { awk -v t="$1" -v p="$2" '$1 > t && index($0, p) {print; exit}' "$W/serial.log"; }
wait_serial() { # PATTERN AFTER SECONDS: sets LINE
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    LINE=$(first_after "$2" "$1")
    [ -n "$LINE" ] && return 0
    kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited: $(tail -5 "$W/qemu.err")"
    sleep 0.05
  done
  die "no '$1' on the VM's console within $3 s"
}

echo "cloudkeep mirror demo: the VM that survives its host"
echo "NOTE: the failover in this demo is MANUAL (this script kills A, moves the address, promotes B);"
echo "      issue 13 will make the mirror daemons do it themselves, fenced through etcd."

# --- the VM's boot files --------------------------------------------------------
step "Build the VM: Debian kernel, busybox-static, virtio modules, guest_writer (cached in $BUILD_DIR/demo-mirror-vm)"
paths=$(bash "$HERE/build-initramfs.sh" "$BUILD_DIR/demo-mirror-vm") || die "building the VM's boot files failed"
eval "$paths"
note "kernel $KERNEL"
note "initramfs $INITRD ($(stat -c %s "$INITRD") bytes)"

# --- three hosts ------------------------------------------------------------------
step "Three network namespaces: host A, host B, and the client where the VM runs"
for n in "$NS_A" "$NS_B" "$NS_C"; do
  ip netns add "$n"
  NSS+=("$n")
  ip -n "$n" link set lo up
done
# replication link A <-> B
ip -n "$NS_A" link add eth0 type veth peer name eth0 netns "$NS_B"
ip -n "$NS_A" addr add 10.252.0.1/24 dev eth0
ip -n "$NS_B" addr add 10.252.0.2/24 dev eth0
# the service LAN: a bridge in the client namespace, one port per host
ip -n "$NS_C" link add br0 type bridge
ip -n "$NS_C" addr add 10.253.0.100/24 dev br0
ip -n "$NS_A" link add eth1 type veth peer name pa netns "$NS_C"
ip -n "$NS_B" link add eth1 type veth peer name pb netns "$NS_C"
ip -n "$NS_A" addr add 10.253.0.1/24 dev eth1
ip -n "$NS_B" addr add 10.253.0.2/24 dev eth1
for p in pa pb; do ip -n "$NS_C" link set "$p" master br0 up; done
ip -n "$NS_C" link set br0 up
for n in "$NS_A" "$NS_B"; do ip -n "$n" link set eth0 up && ip -n "$n" link set eth1 up; done
SERVICE=10.253.0.10
ip -n "$NS_A" addr add "$SERVICE/24" dev eth1
note "replication 10.252.0.1 (A) <-> 10.252.0.2 (B); service LAN 10.253.0.0/24 on a bridge in the client namespace"
note "service address $SERVICE on host A"
in_ns "$NS_C" busybox ping -c 1 -W 2 "$SERVICE" >/dev/null || die "the client cannot reach $SERVICE"

# --- the mirror -----------------------------------------------------------------
step "A mirrored 64 MiB device: init, start both nodes, full sync"
SIZE=$((64 * 1024 * 1024))
truncate -s "$SIZE" "$W/a.img" "$W/b.img"
openssl rand -hex 32 >"$W/web.psk"
chmod 600 "$W/web.psk"
cat >"$W/mirror.toml" <<EOF
[resource.web]
protocol = "sync"
psk_file = "$W/web.psk"
peer_timeout = "2s"
connect_interval = "200ms"
[[resource.web.node]]
name = "a"
address = "10.252.0.1:7789"
device = "$W/a.img"
meta = "$W/web-a.meta"
[[resource.web.node]]
name = "b"
address = "10.252.0.2:7789"
device = "$W/b.img"
meta = "$W/web-b.meta"
EOF
ckm init web --node a --uptodate >/dev/null
ckm init web --node b >/dev/null
# Both daemons are told the service address to export on; the export starts at
# promotion (B binds it only once the address is its own).
start_node() {
  local n=$1 ns=$2
  ip netns exec "$ns" "$CK" mirror run web --config "$W/mirror.toml" --node "$n" --run-dir "$W/run" \
    --export-listen "$SERVICE:10809" >>"$W/$n.log" 2>&1 &
  PID[$n]=$!
  PIDS+=("$!")
  local i
  for ((i = 0; i < 200; i++)); do
    [ -S "$W/run/web-$n.sock" ] && return 0
    sleep 0.05
  done
  die "node $n did not start: $(tail -3 "$W/$n.log")"
}
start_node a "$NS_A"
start_node b "$NS_B"
wait_st a 'd["connection"] == "Connected" and d["out_of_sync_bytes"] == 0 and d["peer"]["disk_state"] == "UpToDate"' 60
wait_st b 'd["disk_state"] == "UpToDate"' 30
note "$(grep -o 'resync to b done.*' "$W/a.log" | head -1)"

step "Promote A: it serves the device over NBD on $SERVICE:10809"
ckm promote web --node a >/dev/null
note "$(grep -o 'role Secondary -> Primary.*' "$W/a.log" | tail -1)"

# --- the VM -------------------------------------------------------------------------
step "Boot the VM in the client namespace (TCG, 256 MiB); its disk is nbd://$SERVICE:10809/web, reconnect-delay=$RECONNECT_DELAY"
mkfifo "$W/serial.fifo"
: >"$W/serial.log"
python3 "$HERE/timestamp.py" "$W/serial.log" <"$W/serial.fifo" &
PIDS+=("$!")
T_BOOT=$EPOCHREALTIME
ip netns exec "$NS_C" qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-reboot \
  -display none -monitor none -serial stdio \
  -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1 ck_interval_ms=5" \
  -blockdev "driver=nbd,node-name=d0,server.type=inet,server.host=$SERVICE,server.port=10809,export=web,reconnect-delay=$RECONNECT_DELAY" \
  -device virtio-blk-pci,drive=d0 \
  </dev/null >"$W/serial.fifo" 2>"$W/qemu.err" &
QEMU_PID=$!
PIDS+=("$QEMU_PID")
wait_serial "INIT kernel" 0 90
T_INIT=${LINE%% *}
note "kernel up, /init running: $(since "$T_BOOT" "$T_INIT") s after qemu started"
wait_serial "START run=" 0 60
note "guest: ${LINE#* }"
wait_serial " ACK seq=" 0 60
T_FIRST=${LINE%% *}
note "first record acknowledged: $(since "$T_BOOT" "$T_FIRST") s after qemu started: ${LINE#* }"
sleep "$WRITE_SECONDS"
note "the VM has $(acks_after 0) records acknowledged through A"

# --- MANUAL FAILOVER (issue 13 replaces the steps of this section) --------------------
if [ "$LINKS_FIRST" = 1 ]; then
  step "Host A dies: its links go down, then SIGKILL of its mirror daemon"
else
  step "Host A dies: SIGKILL of its mirror daemon, then its links go down"
fi
echo "    (MANUAL FAILOVER from here on: the script does what issue 13's daemons will do)"
T_KILL=$EPOCHREALTIME
if [ "$LINKS_FIRST" = 1 ]; then
  # A host that loses power sends nothing: links first, so neither B nor the
  # client gets A's kernel's RST/FIN. B then detects by peer_timeout, and the
  # client once its retransmitted request reaches B (which answers with RST).
  ip -n "$NS_A" link set eth1 down
  ip -n "$NS_A" link set eth0 down
  kill -9 "${PID[a]}"
  wait "${PID[a]}" 2>/dev/null || true
else
  kill -9 "${PID[a]}"
  wait "${PID[a]}" 2>/dev/null || true
  ip -n "$NS_A" link set eth1 down
  ip -n "$NS_A" link set eth0 down
fi
T_DOWN=$EPOCHREALTIME
ACKS_AT_KILL=$(acks_after 0)
note "A is dead and unreachable ($(since "$T_KILL" "$T_DOWN") s); $ACKS_AT_KILL records were acknowledged before"

# issue 13: B detects the loss itself (peer_timeout / the etcd lease) ...
# (B's log line for the state change: polling it is quicker than `mirror status`.)
for ((i = 0; i < 1000; i++)); do
  grep -q 'connection Connected -> ' "$W/b.log" && break
  sleep 0.02
done
T_DETECT=$EPOCHREALTIME
LOST=$(grep -o 'connection Connected -> .*' "$W/b.log" | tail -1)
[ -n "$LOST" ] || die "B did not notice the loss of A within 20 s"
note "B sees its peer gone (+$(since "$T_KILL" "$T_DETECT") s after the kill): $LOST"

step "Move the service address $SERVICE to B (ip addr add + gratuitous ARP)"
# issue 13: service_address = "10.253.0.10/24" in the resource; the new primary takes it.
ip -n "$NS_B" addr add "$SERVICE/24" dev eth1
# Two unsolicited ARPs, 1 s apart, in the background (arping waits out its interval).
ip netns exec "$NS_B" arping -q -U -c 2 -I eth1 "$SERVICE" &
PIDS+=("$!")
T_MOVED=$EPOCHREALTIME
note "address on B (+$(since "$T_KILL" "$T_MOVED") s)"

step "Promote B (cloudkeep mirror promote; issue 13: B promotes itself once it holds the etcd leader key)"
ckm promote web --node b >"$W/promote-b.out" 2>"$W/promote-b.err" || die "promote b: $(cat "$W/promote-b.err")"
T_PROMOTED=$EPOCHREALTIME
sed 's/^/    /' "$W/promote-b.err"
note "B is primary and serves $SERVICE:10809 (+$(since "$T_KILL" "$T_PROMOTED") s after the kill)"

step "The VM, not rebooted, goes on writing through B"
wait_serial " ACK seq=" "$T_MOVED" $((RECONNECT_DELAY + 30))
T_RESUMED=${LINE%% *}
note "first record acknowledged after the failover: +$(since "$T_KILL" "$T_RESUMED") s after the kill: ${LINE#* }"
for ((i = 0; i < 1200; i++)); do
  [ "$(acks_after "$T_MOVED")" -ge "$AFTER_ACKS" ] && break
  kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited: $(tail -5 "$W/qemu.err")"
  sleep 0.05
done
[ "$(acks_after "$T_MOVED")" -ge "$AFTER_ACKS" ] || die "only $(acks_after "$T_MOVED") records acknowledged after the failover within 60 s"
note "$(acks_after "$T_MOVED") records acknowledged through B"
grep -v '^$' "$W/qemu.err" | sed 's/^/    qemu: /' | head -5 || true

# --- stop and verify ------------------------------------------------------------------
step "Stop the VM and B; check every acknowledged record on B's backing file"
kill -TERM "$QEMU_PID" 2>/dev/null || true
wait "$QEMU_PID" 2>/dev/null || true
kill -TERM "${PID[b]}" 2>/dev/null || true
wait "${PID[b]}" 2>/dev/null || true
sleep 0.2 # the timestamper drains the console
VERIFY_RC=0
python3 "$HERE/verify.py" "$W/b.img" "$W/serial.log" --since "$T_MOVED" --env "$W/verify.env" | sed 's/^/    /' || VERIFY_RC=$?
# shellcheck disable=SC1091
. "$W/verify.env"

step "Timings"
printf '    %-52s %8s s\n' \
  "boot: qemu start -> kernel runs /init" "$(since "$T_BOOT" "$T_INIT")" \
  "boot: qemu start -> first record acknowledged" "$(since "$T_BOOT" "$T_FIRST")" \
  "failover: kill -> A dead, links down" "$(since "$T_KILL" "$T_DOWN")" \
  "failover: kill -> B saw its peer gone" "$(since "$T_KILL" "$T_DETECT")" \
  "failover: kill -> service address on B" "$(since "$T_KILL" "$T_MOVED")" \
  "failover: kill -> B promoted (export listening)" "$(since "$T_KILL" "$T_PROMOTED")" \
  "failover: kill -> first record acknowledged via B" "$(since "$T_KILL" "$T_RESUMED")" \
  "failover: B promoted -> first record acknowledged" "$(since "$T_PROMOTED" "$T_RESUMED")" \
  "longest pause between two acknowledgements" "$V_MAX_GAP"
printf '    records acknowledged: %d (%d before the kill, %d after the failover); %d present on B, %d missing; I/O errors seen by the VM: %d\n' \
  "$V_ACKED" "$ACKS_AT_KILL" "$V_AFTER" "$V_PRESENT" "$V_MISSING" "$V_EIO"
echo "    (the failover was MANUAL; issue 13 automates it)"

if [ -n "${DEMO_RESULT:-}" ]; then
  {
    cat "$W/verify.env"
    echo "ACKS_AT_KILL=$ACKS_AT_KILL"
    echo "BOOT_TO_INIT=$(since "$T_BOOT" "$T_INIT")"
    echo "BOOT_TO_FIRST_ACK=$(since "$T_BOOT" "$T_FIRST")"
    echo "KILL_TO_DETECT=$(since "$T_KILL" "$T_DETECT")"
    echo "KILL_TO_MOVED=$(since "$T_KILL" "$T_MOVED")"
    echo "KILL_TO_PROMOTED=$(since "$T_KILL" "$T_PROMOTED")"
    echo "KILL_TO_FIRST_ACK=$(since "$T_KILL" "$T_RESUMED")"
    echo "VERIFY_RC=$VERIFY_RC"
  } >"$DEMO_RESULT"
fi
[ "$VERIFY_RC" -eq 0 ] || die "verification failed: $V_MISSING acknowledged record(s) missing on B, $V_EIO I/O error(s) in the VM"
OK=1
echo
echo "PASS: the VM kept running across the loss of its host; all $V_ACKED acknowledged records are on B."
