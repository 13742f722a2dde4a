#!/usr/bin/env bash
# The VM that survives its host (make demo-mirror).
#
#   run-demo.sh [CLOUDKEEP [BUILD_DIR]]
#
# Three network namespaces: host A and host B run the two `cloudkeep mirror`
# nodes of one resource with `fencing = "etcd"` (replication over their own
# veth link); the third, C, is the service LAN: a bridge, the etcd the demo
# starts, and a small VM (qemu-system-x86_64 -accel tcg, the Debian kernel, a
# busybox initramfs with guest_writer) whose disk is the mirror's NBD export,
# reached at the service address through qemu's NBD client with a
# reconnect-delay computed from the lease settings. The VM writes numbered,
# checksummed records and fsyncs each. The demo SIGKILLs the primary and takes
# its links down; nothing else: the standby sees the leader key expire, wins
# it, takes the service address and promotes itself (no `mirror promote`
# anywhere), and the VM goes on writing without a reboot. At the end every
# record the VM saw acknowledged is read back from B's backing file.
#
#   A ns                      C ns (LAN, etcd, VM)              B ns
#   eth1 10.253.0.1    -- pa [br0 10.253.0.100] pb --    eth1 10.253.0.2
#   (+ service .10           etcd :2379, qemu ->            (+ service .10
#    while primary)          10.253.0.10:10809               once elected)
#   eth0 10.252.0.1  ---------- replication ----------  eth0 10.252.0.2
#
# Environment (the integration test sets some):
#   DEMO_WRITE_SECONDS=5     how long the VM writes through A before the kill
#   DEMO_AFTER_ACKS=200      acknowledgements to wait for after the failover
#   DEMO_WRITERS=1           writers in the VM, each in its own region of the disk: with more
#                            than one, several requests are in flight (and re-sent) at the kill
#   DEMO_LEASE_TTL=3         lease_ttl, whole seconds    } the fencing settings of the
#   DEMO_RENEW_MS=500        renew_interval              } resource (the defaults);
#   DEMO_MARGIN_MS=1250      suspend_margin              } qemu's reconnect-delay is
#   DEMO_ETCD_TIMEOUT_MS=500 etcd_timeout                } computed from them
#   DEMO_RECONNECT_DELAY=N   override the computed reconnect-delay (s)
#   DEMO_LINKS_FIRST=1       take A's links down before the SIGKILL (a power loss: no RST or FIN
#                            from A's kernel reaches B or the client)
#   DEMO_RESULT=FILE         write the measured numbers there as shell assignments
#   DEMO_KEEP=DIR            keep the logs, images and serial console in DIR
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CK=${1:-${CLOUDKEEP:-$REPO/build/src/cli/cloudkeep}}
BUILD_DIR=${2:-$REPO/build}
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
  echo "run-demo: network namespaces need root; re-running under sudo" >&2
  exec sudo --preserve-env=DEMO_WRITE_SECONDS,DEMO_AFTER_ACKS,DEMO_WRITERS,DEMO_LEASE_TTL,DEMO_RENEW_MS,DEMO_MARGIN_MS,DEMO_ETCD_TIMEOUT_MS,DEMO_RECONNECT_DELAY,DEMO_LINKS_FIRST,DEMO_RESULT,DEMO_KEEP \
    bash "${BASH_SOURCE[0]}" "$@"
fi

# Settings: whole non-negative numbers, or a one-line error naming the value.
num() { # NAME DEFAULT
  local v=${!1:-$2}
  [[ "$v" =~ ^[0-9]+$ ]] || {
    echo "run-demo: $1 must be a whole number, got '$v'" >&2
    exit 2
  }
  echo "$v"
}
WRITE_SECONDS=$(num DEMO_WRITE_SECONDS 5)
AFTER_ACKS=$(num DEMO_AFTER_ACKS 200)
WRITERS=$(num DEMO_WRITERS 1)
[ "$WRITERS" -ge 1 ] && [ "$WRITERS" -le 64 ] || {
  echo "run-demo: DEMO_WRITERS must be 1 to 64, got '$WRITERS'" >&2
  exit 2
}
LEASE_TTL=$(num DEMO_LEASE_TTL 3)
RENEW_MS=$(num DEMO_RENEW_MS 500)
MARGIN_MS=$(num DEMO_MARGIN_MS 1250)
ETCD_TIMEOUT_MS=$(num DEMO_ETCD_TIMEOUT_MS 500)
LINKS_FIRST=$(num DEMO_LINKS_FIRST 0)
# qemu's reconnect-delay from the lease settings (docs/mirror.md, "Failover
# time and qemu's reconnect-delay"): the standby can serve at the latest
#   F = lease_ttl + renew_interval + etcd_timeout + 0.5 s
# after the primary's last renewal (etcd checks lease expiry every 0.5 s; the
# standby's watch sees the key deleted and campaigns, one etcd request). qemu retries its
# connection with a doubling pause (1, 2, 4, 8, 16 s), so its first attempt
# after F comes up to F later (for F <= 16 s), and one attempt may itself take
# 3 s (SYNs retransmitted at 1 s and 3 s while the address moves):
#   reconnect-delay >= 2 F + 3 s            (defaults: 2 x 4.5 + 3 = 12 s)
# suspend_margin does not enter: it only makes a cut-off primary stop
# acknowledging earlier; the standby still waits for etcd's expiry.
RECONNECT_DELAY=$(awk -v t="$LEASE_TTL" -v r="$RENEW_MS" -v e="$ETCD_TIMEOUT_MS" \
  'BEGIN { d = 2 * (t + r / 1000 + e / 1000 + 0.5) + 3; printf "%d", (d == int(d)) ? d : int(d) + 1 }')
if [ -n "${DEMO_RECONNECT_DELAY:-}" ]; then RECONNECT_DELAY=$(num DEMO_RECONNECT_DELAY 0); fi

[ -x "$CK" ] || {
  echo "run-demo: no cloudkeep binary at $CK (make build)" >&2
  exit 1
}
CK=$(readlink -f "$CK")
for c in qemu-system-x86_64 ip arping busybox openssl etcd gcc modinfo "$PY"; do
  command -v "$c" >/dev/null || {
    echo "run-demo: $c is missing: scripts/install-deps.sh demo-mirror" >&2
    exit 1
  }
done

# --- bookkeeping: steps with timings, cleanup of everything on any exit -------
T0=$EPOCHREALTIME
W=$(mktemp -d /tmp/cloudkeep-demo-mirror.XXXXXX)
# Known from the start, so that a caller can check that nothing is left behind
# even when the demo fails.
[ -z "${DEMO_RESULT:-}" ] || echo "DEMO_WORK=$W" >"$DEMO_RESULT"
NS_A=ckvm$$-a NS_B=ckvm$$-b NS_C=ckvm$$-c
PIDS=()
STAMPERS=() # timestamp.py readers of the logs' fifos: they end at EOF, after their writers
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
  local rc=$? p n f fd
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -9 "${PIDS[$i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # The stampers drain their fifos and end at EOF (the last lines are kept);
  # one whose writer never started still waits in open(): a read-write open
  # and close of its fifo lets it end too.
  for f in "$W"/*.fifo; do
    [ -p "$f" ] || continue
    exec {fd}<>"$f"
    exec {fd}>&-
  done
  for p in "${STAMPERS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$OK" != 1 ]; then
    echo "--- the demo failed (exit $rc); last lines of its logs:" >&2
    for f in a.log b.log etcd.log qemu.err serial.log; do
      [ -s "$W/$f" ] && { echo "--- $f" >&2; tail -15 "$W/$f" >&2; }
    done
  fi
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
st() { "$CK" --json mirror status web --config "$W/mirror.toml" --run-dir "$W/run" --node "$1" 2>/dev/null |
  "$PY" -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$2" 2>/dev/null; }
wait_st() { # NODE EXPR SECONDS
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    [ "$(st "$1" "$2")" = True ] && return 0
    sleep 0.05
  done
  die "node $1: timed out after $3 s waiting for: $2"
}
# Every log here (the daemons', etcd's, the VM's console) goes through
# timestamp.py: "EPOCH_SECONDS line", so that host steps, daemon events and
# guest records are timed on one clock. stamped NAME: a fifo $W/NAME.fifo for
# the writer, stamped into $W/NAME.
stamped() {
  mkfifo "$W/$1.fifo"
  : >"$W/$1" # there to be read before the writer opens the fifo
  "$PY" "$HERE/timestamp.py" "$W/$1" <"$W/$1.fifo" &
  STAMPER=$!
  STAMPERS+=("$!")
}
# first_after FILE TIME TEXT: the first line after TIME containing TEXT
first_after() { awk -v t="$2" -v p="$3" '$1 > t && index($0, p) {print; exit}' "$1"; }
acks_after() { awk -v t="$1" '$1 > t && / ACK seq=/ {n++} END {print n + 0}' "$W/serial.log"; }
wait_line() { # FILE TEXT AFTER SECONDS: sets LINE, and T_LINE (its time)
  local i
  for ((i = 0; i < $4 * 20; i++)); do
    LINE=$(first_after "$1" "$3" "$2")
    if [ -n "$LINE" ]; then
      T_LINE=${LINE%% *}
      LINE=${LINE#* }
      return 0
    fi
    [ -z "${QEMU_PID:-}" ] || kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited: $(tail -5 "$W/qemu.err")"
    sleep 0.05
  done
  die "no '$2' in $(basename "$1") within $4 s"
}
wait_serial() { wait_line "$W/serial.log" "$1" "$2" "$3"; } # PATTERN AFTER SECONDS
# (No `| grep -q`: under pipefail, grep leaving early can fail the pipeline.)
has_addr() { [[ "$(ip -n "$1" -o addr show dev eth1)" == *" $SERVICE/"* ]]; }
# The leader key as etcd itself has it (its v3 JSON gateway, from the LAN):
# "NODE CREATE_REVISION", or "none".
etcd_leader() {
  in_ns "$NS_C" "$PY" - "$ETCD" "/cloudkeep/mirror/web/leader" <<'PY'
import base64, json, sys, urllib.request
url, key = sys.argv[1], sys.argv[2]
# No proxy from the environment: the request stays in the demo's namespace.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
r = json.load(opener.open(urllib.request.Request(url + "/v3/kv/range", data=body), timeout=5))
kvs = r.get("kvs", [])
if not kvs:
    print("none")
else:
    v = json.loads(base64.b64decode(kvs[0]["value"]))
    print(v.get("node", "?"), kvs[0].get("create_revision", "?"))
PY
}

echo "cloudkeep mirror demo: the VM that survives its host"
echo "fencing = \"etcd\": the daemons elect the primary and fail over by themselves; this script only kills."

# --- the VM's boot files --------------------------------------------------------
step "Build the VM: Debian kernel, busybox-static, virtio modules, guest_writer (cached in $BUILD_DIR/demo-mirror-vm)"
paths=$(bash "$HERE/build-initramfs.sh" "$BUILD_DIR/demo-mirror-vm") || die "building the VM's boot files failed"
eval "$paths"
note "kernel $KERNEL"
note "initramfs $INITRD ($(stat -c %s "$INITRD") bytes)"

# --- three hosts ------------------------------------------------------------------
step "Three network namespaces: host A, host B, and C: the LAN with etcd and the VM"
for n in "$NS_A" "$NS_B" "$NS_C"; do
  ip netns add "$n"
  NSS+=("$n")
  ip -n "$n" link set lo up
done
# replication link A <-> B
ip -n "$NS_A" link add eth0 type veth peer name eth0 netns "$NS_B"
ip -n "$NS_A" addr add 10.252.0.1/24 dev eth0
ip -n "$NS_B" addr add 10.252.0.2/24 dev eth0
# the service LAN: a bridge in C, one port per host
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
ETCD=http://10.253.0.100:2379
note "replication 10.252.0.1 (A) <-> 10.252.0.2 (B); LAN 10.253.0.0/24 on a bridge in C"

step "etcd (one node) in C at $ETCD"
mkdir -p "$W/etcd"
stamped etcd.log
ip netns exec "$NS_C" etcd --name ck --data-dir "$W/etcd/data" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster ck=http://127.0.0.1:2380 >"$W/etcd.log.fifo" 2>&1 &
PIDS+=("$!")
ETCD_PID=$!
for ((i = 0; i < 400; i++)); do
  grep -q 'ready to serve client requests' "$W/etcd.log" 2>/dev/null && break
  kill -0 "$ETCD_PID" 2>/dev/null || die "etcd exited: $(tail -3 "$W/etcd.log")"
  sleep 0.05
done
grep -q 'ready to serve client requests' "$W/etcd.log" || die "etcd did not start within 20 s"
note "etcd $(etcd --version | head -1 | awk '{print $3}') serving"

# --- the mirror -----------------------------------------------------------------
step "A mirrored 64 MiB device, fenced through etcd: init, start both nodes; A (UpToDate) is elected"
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
fencing = "etcd"
etcd_endpoints = ["$ETCD"]
lease_ttl = "${LEASE_TTL}s"
renew_interval = "${RENEW_MS}ms"
suspend_margin = "${MARGIN_MS}ms"
etcd_timeout = "${ETCD_TIMEOUT_MS}ms"
service_address = "$SERVICE/24"
service_interface = "eth1"
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
"$CK" mirror init web --config "$W/mirror.toml" --run-dir "$W/run" --node a --uptodate >/dev/null ||
  die "the fencing settings were refused (see the error above)"
"$CK" mirror init web --config "$W/mirror.toml" --run-dir "$W/run" --node b >/dev/null
# Both daemons are told to export on the service address: the export starts at
# promotion, once the address is the node's own.
start_node() {
  local n=$1 ns=$2
  stamped "$n.log"
  ip netns exec "$ns" "$CK" mirror run web --config "$W/mirror.toml" --node "$n" --run-dir "$W/run" \
    --export-listen "$SERVICE:10809" >"$W/$n.log.fifo" 2>&1 &
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
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
TOKEN_A=$(st a 'd["fencing"]["token"]')
note "A: $(first_after "$W/a.log" 0 'won the leader key' | cut -d' ' -f2- | sed 's/.*fencing: //')"
wait_st a 'd["connection"] == "Connected" and d["out_of_sync_bytes"] == 0 and d["peer"]["disk_state"] == "UpToDate"' 60
wait_st b 'd["disk_state"] == "UpToDate"' 30
note "A: $(grep -o 'resync to b done.*' "$W/a.log" | head -1)"
# Only a standby that etcd records UpToDate may campaign after a failure.
wait_st a 'd["fencing"].get("peer_record") == "UpToDate"' 30
note "A: $(first_after "$W/a.log" 0 'recorded b UpToDate' | sed 's/.*fencing: //')"
for ((i = 0; i < 100; i++)); do has_addr "$NS_A" && break; sleep 0.05; done
has_addr "$NS_A" || die "A holds the leader key but not the service address $SERVICE: $(ip -n "$NS_A" -o addr show dev eth1)"
note "A is primary with token $TOKEN_A and holds $SERVICE; etcd's leader key: $(etcd_leader)"
in_ns "$NS_C" busybox ping -c 1 -W 2 "$SERVICE" >/dev/null || die "the client cannot reach $SERVICE"

# --- the VM -------------------------------------------------------------------------
step "Boot the VM in C (TCG, 256 MiB); its disk is nbd://$SERVICE:10809/web, reconnect-delay=$RECONNECT_DELAY"
note "reconnect-delay = 2 x (lease_ttl ${LEASE_TTL}s + renew_interval ${RENEW_MS}ms + etcd_timeout ${ETCD_TIMEOUT_MS}ms + 0.5 s) + 3 s, rounded up${DEMO_RECONNECT_DELAY:+ (overridden by DEMO_RECONNECT_DELAY)}"
stamped serial.log
SERIAL_STAMPER=$STAMPER
T_BOOT=$EPOCHREALTIME
# shellcheck disable=SC2054 # the commas are qemu's option syntax
QEMU=(qemu-system-x86_64 -name "ckvm$$-vm" -accel tcg -m 256 -smp 1 -nodefaults -no-reboot
  -display none -monitor none -serial stdio
  -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1 ck_interval_ms=5 ck_writers=$WRITERS"
  -blockdev "driver=nbd,node-name=d0,server.type=inet,server.host=$SERVICE,server.port=10809,export=web,reconnect-delay=$RECONNECT_DELAY"
  -device virtio-blk-pci,drive=d0)
echo "${QEMU[*]}" >"$W/qemu.cmdline"
ip netns exec "$NS_C" "${QEMU[@]}" </dev/null >"$W/serial.log.fifo" 2>"$W/qemu.err" &
QEMU_PID=$!
PIDS+=("$QEMU_PID")
wait_serial "INIT kernel" 0 90
T_INIT=$T_LINE
note "kernel up, /init running: $(since "$T_BOOT" "$T_INIT") s after qemu started: $LINE"
wait_serial "START run=" 0 60
note "guest: $LINE"
[ "$WRITERS" = 1 ] || note "guest: $WRITERS writers, each in its own region"
wait_serial " ACK seq=" 0 60
T_FIRST=$T_LINE
note "first record acknowledged: $(since "$T_BOOT" "$T_FIRST") s after qemu started: $LINE"
sleep "$WRITE_SECONDS"
note "the VM has $(acks_after 0) records acknowledged through A"

# --- the failure: all this script does ------------------------------------------------
if [ "$LINKS_FIRST" = 1 ]; then
  step "Host A dies: its links go down, then SIGKILL of its mirror daemon"
else
  step "Host A dies: SIGKILL of its mirror daemon, then its links go down"
fi
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

step "B, by itself: detects the loss, waits for A's lease to expire in etcd, wins the leader key, takes $SERVICE, promotes"
wait_line "$W/b.log" "connection Connected -> " "$T_KILL" 30
T_DETECT=$T_LINE
note "+$(since "$T_KILL" "$T_DETECT") s  B sees its peer gone: ${LINE#*: mirror web/b: }"
WAIT_KEY=$((LEASE_TTL * 3 + 30))
wait_line "$W/b.log" "fencing: won the leader key" "$T_KILL" "$WAIT_KEY"
T_WON=$T_LINE
note "+$(since "$T_KILL" "$T_WON") s  B ${LINE#*fencing: }"
wait_line "$W/b.log" "fencing: took the service address" "$T_KILL" 10
T_ADDR=$T_LINE
note "+$(since "$T_KILL" "$T_ADDR") s  B ${LINE#*fencing: }"
wait_line "$W/b.log" "fencing: promoted: primary" "$T_KILL" 10
T_PROMOTED=$T_LINE
note "+$(since "$T_KILL" "$T_PROMOTED") s  B ${LINE#*fencing: } (its export listens on $SERVICE:10809)"

step "The VM, not rebooted, goes on writing through B"
# B's first change without its peer: it records A Outdated in etcd first, and
# only then acknowledges (docs/mirror.md, "Standby loss").
# How long to wait for it: after a power loss (links first) qemu's socket to
# the old primary learns nothing until one of its TCP retransmissions, whose
# interval doubles (0.2 s, 0.4 s, … 12.8 s, 25.6 s), reaches the new
# primary and is answered with a reset; on a loaded machine that can be the
# retransmission after the one the address move beat. A bound, not a
# measurement: the timings printed are the measurement.
ACK_WAIT=$((RECONNECT_DELAY + 90))
wait_line "$W/b.log" "fencing: recorded a Outdated in etcd" "$T_KILL" "$ACK_WAIT"
T_OUTDATED=$T_LINE
note "+$(since "$T_KILL" "$T_OUTDATED") s  B, at the VM's first write: ${LINE#*fencing: }"
wait_serial " ACK seq=" "$T_PROMOTED" "$ACK_WAIT"
T_RESUMED=$T_LINE
note "+$(since "$T_KILL" "$T_RESUMED") s  the VM's first record acknowledged by B: $LINE"
for ((i = 0; i < 1200; i++)); do
  [ "$(acks_after "$T_PROMOTED")" -ge "$AFTER_ACKS" ] && break
  kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited: $(tail -5 "$W/qemu.err")"
  sleep 0.05
done
[ "$(acks_after "$T_PROMOTED")" -ge "$AFTER_ACKS" ] || die "only $(acks_after "$T_PROMOTED") records acknowledged after the failover within 60 s"
note "$(acks_after "$T_PROMOTED") records acknowledged through B"
grep -v '^$' "$W/qemu.err" | sed 's/^/    qemu: /' | head -5 || true

step "Who is primary now: B's status, etcd's leader key, the service address"
B_ROLE=$(st b 'd["role"]')
B_LEADS=$(st b 'd["fencing"]["this_node_leads"]')
TOKEN_B=$(st b 'd["fencing"]["token"]')
ETCD_LEADER=$(etcd_leader)
ADDR_ON_B=0
has_addr "$NS_B" && ADDR_ON_B=1
note "B: role $B_ROLE, holds the leader key: $B_LEADS, token $TOKEN_B (A's was $TOKEN_A)"
note "etcd's leader key: $ETCD_LEADER"
note "$SERVICE on B's eth1: $([ $ADDR_ON_B = 1 ] && echo yes || echo NO)"

# --- stop and verify ------------------------------------------------------------------
step "Stop the VM and B; check every acknowledged record on B's backing file"
kill -TERM "$QEMU_PID" 2>/dev/null || true
wait "$QEMU_PID" 2>/dev/null || true
kill -TERM "${PID[b]}" 2>/dev/null || true
wait "${PID[b]}" 2>/dev/null || true
wait "$SERIAL_STAMPER" 2>/dev/null || true # it ends once it has stamped the console's last line
VERIFY_RC=0
"$PY" "$HERE/verify.py" "$W/b.img" "$W/serial.log" --since "$T_PROMOTED" --env "$W/verify.env" | sed 's/^/    /' || VERIFY_RC=$?
# shellcheck disable=SC1091
. "$W/verify.env"
BOOT_IDS=$(grep -o 'boot_id=[0-9a-f-]*' "$W/serial.log" | sort -u | wc -l)

step "Timings (one clock: every log line is stamped when it arrives)"
printf '    %-58s %8s s\n' \
  "boot: qemu start -> kernel runs /init" "$(since "$T_BOOT" "$T_INIT")" \
  "boot: qemu start -> first record acknowledged" "$(since "$T_BOOT" "$T_FIRST")" \
  "failover: kill -> A dead, links down" "$(since "$T_KILL" "$T_DOWN")" \
  "detection: kill -> B saw its peer gone" "$(since "$T_KILL" "$T_DETECT")" \
  "lease expiry: kill -> B won the leader key" "$(since "$T_KILL" "$T_WON")" \
  "address: kill -> B took the service address" "$(since "$T_KILL" "$T_ADDR")" \
  "promotion: kill -> B primary, export listening" "$(since "$T_KILL" "$T_PROMOTED")" \
  "first write: kill -> B outdates A in etcd, acknowledges" "$(since "$T_KILL" "$T_OUTDATED")" \
  "client: kill -> first record acknowledged by B (guest)" "$(since "$T_KILL" "$T_RESUMED")" \
  "client: B promoted -> first record acknowledged (reconnect)" "$(since "$T_PROMOTED" "$T_RESUMED")" \
  "longest pause between two acknowledgements (in the guest)" "$V_MAX_GAP"
printf '    records acknowledged: %d (%d before the kill, %d after the failover); %d present on B, %d missing; I/O errors seen by the VM: %d; boots: %d\n' \
  "$V_ACKED" "$ACKS_AT_KILL" "$V_AFTER" "$V_PRESENT" "$V_MISSING" "$V_EIO" "$BOOT_IDS"
echo "    (lease_ttl ${LEASE_TTL}s, renew_interval ${RENEW_MS}ms, suspend_margin ${MARGIN_MS}ms, etcd_timeout ${ETCD_TIMEOUT_MS}ms, reconnect-delay ${RECONNECT_DELAY}s)"

if [ -n "${DEMO_RESULT:-}" ]; then
  {
    echo "DEMO_WORK=$W"
    cat "$W/verify.env"
    echo "ACKS_AT_KILL=$ACKS_AT_KILL"
    echo "BOOT_IDS=$BOOT_IDS"
    echo "WRITERS=$WRITERS"
    echo "RECONNECT_DELAY=$RECONNECT_DELAY"
    echo "TOKEN_A=$TOKEN_A"
    echo "TOKEN_B=$TOKEN_B"
    echo "B_ROLE=$B_ROLE"
    echo "B_LEADS=$B_LEADS"
    echo "ETCD_LEADER='$ETCD_LEADER'"
    echo "ADDR_ON_B=$ADDR_ON_B"
    echo "BOOT_TO_INIT=$(since "$T_BOOT" "$T_INIT")"
    echo "BOOT_TO_FIRST_ACK=$(since "$T_BOOT" "$T_FIRST")"
    echo "KILL_TO_DETECT=$(since "$T_KILL" "$T_DETECT")"
    echo "KILL_TO_WON=$(since "$T_KILL" "$T_WON")"
    echo "KILL_TO_ADDR=$(since "$T_KILL" "$T_ADDR")"
    echo "KILL_TO_PROMOTED=$(since "$T_KILL" "$T_PROMOTED")"
    echo "KILL_TO_OUTDATED=$(since "$T_KILL" "$T_OUTDATED")"
    echo "KILL_TO_FIRST_ACK=$(since "$T_KILL" "$T_RESUMED")"
    echo "PROMOTED_TO_FIRST_ACK=$(since "$T_PROMOTED" "$T_RESUMED")"
    echo "VERIFY_RC=$VERIFY_RC"
  } >"$DEMO_RESULT"
fi
[ "$VERIFY_RC" -eq 0 ] || die "verification failed: $V_MISSING acknowledged record(s) missing on B, $V_EIO I/O error(s) in the VM"
[ "$BOOT_IDS" = 1 ] || die "the VM booted $BOOT_IDS times"
[ "$B_LEADS" = True ] && [ "$ADDR_ON_B" = 1 ] && [ "${ETCD_LEADER%% *}" = b ] ||
  die "B is not the fenced primary: holds the key: $B_LEADS, etcd's leader: $ETCD_LEADER, address on B: $ADDR_ON_B"
OK=1
echo
echo "PASS: the VM kept running across the loss of its host; B took over by itself; all $V_ACKED acknowledged records are on B."
