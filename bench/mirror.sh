#!/usr/bin/env bash
# bench/mirror.sh [CLOUDKEEP]: the mirror against nbdkit's file plugin on
# the same storage with no replication, in one run. Two hosts are network
# namespaces; the standby sits behind a user-space delay bridge
# (tests/tools/delay_bridge, built next to CLOUDKEEP; CK_DELAY_BRIDGE
# overrides; this kernel has no netem) holding every frame for 0.25 ms one
# way (inside one zone) and then 1 ms (across zones). fio through NBD:
# 4 KiB random writes at depth 1 and 16, 1 MiB sequential writes at depth 4.
# The initial full sync of the 1 GiB device is the resync measurement
# (1 GiB of dirty regions), next to the link's TCP bandwidth (iperf3).
set -euo pipefail
CK="$(realpath "${1:-build/src/cli/cloudkeep}")"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
# CLOUDKEEP is BUILD/src/cli/cloudkeep; the bridge is BUILD/tests/tools/delay_bridge.
DELAY_BRIDGE="${CK_DELAY_BRIDGE:-$(dirname "$CK")/../../tests/tools/delay_bridge}"
[ -x "$DELAY_BRIDGE" ] || { echo "bench/mirror.sh needs $DELAY_BRIDGE (cmake --build BUILD --target delay_bridge)" >&2; exit 1; }
DELAY_BRIDGE="$(realpath "$DELAY_BRIDGE")"
RUNTIME=${RUNTIME:-10}
SIZE_MB=${SIZE_MB:-1024}
for c in fio nbdkit iperf3 ip openssl; do command -v $c >/dev/null || { echo "bench/mirror.sh needs $c" >&2; exit 1; }; done
[ "$(id -u)" -eq 0 ] || { echo "bench/mirror.sh needs root (network namespaces)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/ck-bench-mirror.XXXXXX)
P="ckbm$$"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for n in a b w; do ip netns del "$P-$n" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
for n in a b w; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
ip -n "$P-a" link add eth0 type veth peer name ya netns "$P-w"
ip -n "$P-b" link add eth0 type veth peer name yb netns "$P-w"
ip -n "$P-a" addr add 10.253.0.1/24 dev eth0
ip -n "$P-b" addr add 10.253.0.2/24 dev eth0
for n in a b; do ip -n "$P-$n" link set eth0 gso_max_size 1500 up; done
ip -n "$P-w" link set ya up
ip -n "$P-w" link set yb up
BRIDGE=""
bridge() {
  [ -n "$BRIDGE" ] && { kill "$BRIDGE"; wait "$BRIDGE" 2>/dev/null || true; }
  ip netns exec "$P-w" "$DELAY_BRIDGE" ya yb "$1" 2>>"$W/bridge.log" &
  BRIDGE=$!
  PIDS+=("$BRIDGE")
  sleep 0.5
}
openssl rand -hex 32 >"$W/psk"
truncate -s "${SIZE_MB}M" "$W/a.img" "$W/b.img" "$W/plain.img"
cat >"$W/m.toml" <<EOT
[resource.web]
protocol = "sync"
psk_file = "$W/psk"
connect_interval = "200ms"
[[resource.web.node]]
name = "a"
address = "10.253.0.1:7789"
device = "$W/a.img"
meta = "$W/a.meta"
[[resource.web.node]]
name = "b"
address = "10.253.0.2:7789"
device = "$W/b.img"
meta = "$W/b.meta"
EOT
# The device starts with data everywhere, so the full sync moves real bytes.
fio --name=fill --filename="$W/a.img" --rw=write --bs=1M --size="${SIZE_MB}M" --refill_buffers --output=/dev/null
cp "$W/a.img" "$W/plain.img"
"$CK" mirror init web --config "$W/m.toml" --node a --uptodate >/dev/null
"$CK" mirror init web --config "$W/m.toml" --node b >/dev/null

status() { "$CK" --json mirror status web --config "$W/m.toml" --run-dir "$W/run" --node "$1"; }
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
fio_job() {  # fio_job URI NAME ARGS...: prints "iops p50_us mean_us MBps"
  local uri=$1 name=$2
  shift 2
  ip netns exec "$P-a" fio --name="$name" --ioengine=nbd --uri="$uri" --time_based --runtime="$RUNTIME" \
    --size=512M --output-format=json "$@" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; t=sys.stdin.read(); j=json.loads(t[t.index("{"):])["jobs"][0]["write"]; print("%.0f %.0f %.0f %.1f" % (j["iops"], j["clat_ns"]["percentile"]["50.000000"]/1000, j["lat_ns"]["mean"]/1000, j["bw_bytes"]/1e6))'
}
# Every measurement starts from the same page-cache state: the images' pages
# are written back and dropped first. On this kernel (6.18, ext4 with large
# folios) a 4 KiB write into a large cached folio (left by the fill or by
# the resync's large writes) costs several times one into a small folio, so
# without this the anchor and the mirror would be measured on different
# caches. (The resync target now drops its own pages: src/mirror/node.cpp.)
evict() {
  /usr/bin/python3 -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDWR); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}
JOBS=("qd1-4k-randwrite --rw=randwrite --bs=4k --iodepth=1"
  "qd16-4k-randwrite --rw=randwrite --bs=4k --iodepth=16"
  "qd4-1M-seqwrite --rw=write --bs=1M --iodepth=4")

echo "# bench/mirror.sh $(git -C "$HERE" rev-parse --short HEAD) $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
# nbdkit file plugin: the same storage, no replication.
ip netns exec "$P-a" nbdkit --exit-with-parent -f -p 10810 -i 127.0.0.1 file "$W/plain.img" &
PIDS+=($!)
sleep 1
declare -A BASE
for j in "${JOBS[@]}"; do
  set -- $j
  name=$1
  shift
  evict "$W/plain.img"
  BASE[$name]=$(fio_job nbd://127.0.0.1:10810/ "$name" "$@")
done

first=1
for delay in 0.00025 0.001; do
  bridge "$delay"
  ip netns exec "$P-b" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  sleep 0.5
  # TCP round trips through the bridge, median of 300: a framed echo server.
  ip netns exec "$P-b" /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.253.0.2", 5300)); s.listen(1)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def exact(n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise SystemExit
        b += d
    return b
while True:
    h = exact(8)
    exact(int.from_bytes(h[:4], "big") - 8)
    c.sendall(b"y" * int.from_bytes(h[4:], "big"))' &
  sleep 0.5
  # "RTT": 64 bytes each way. "RTT4k": a 4 KiB message answered by 64 bytes,
  # the shape of one replicated 4 KiB write and its acknowledgement.
  cat >"$W/rtt.py" <<'EOT'
import socket, time
c = socket.create_connection(("10.253.0.2", 5300)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def rtt(size):
    t = []
    for i in range(300):
        a = time.monotonic(); c.sendall(size.to_bytes(4, "big") + (64).to_bytes(4, "big") + b"x" * (size - 8)); n = 0
        while n < 64: n += len(c.recv(64 - n))
        t.append(time.monotonic() - a)
    t.sort(); return round(t[150] * 1e6)
def pipelined(size, depth, secs=3.0):
    # Messages answered per second with `depth` in flight: the link's own
    # rate for a job's shape (a write out, an acknowledgement back), packet
    # costs of the bridge included, with no TLS and no disk.
    msg = size.to_bytes(4, "big") + (64).to_bytes(4, "big") + b"x" * (size - 8)
    for i in range(depth): c.sendall(msg)
    outstanding, done, got, a = depth, 0, 0, time.monotonic()
    while outstanding:
        got += len(c.recv(65536))
        while got >= 64:
            got -= 64; outstanding -= 1; done += 1
            if time.monotonic() - a < secs:
                c.sendall(msg); outstanding += 1
    return round(done / (time.monotonic() - a))
print(rtt(64), rtt(4096), pipelined(4096, 16), pipelined(1 << 20, 4))
EOT
  read -r RTT_US RTT4K_US PIPE4K PIPE1M <<<"$(ip netns exec "$P-a" /usr/bin/python3 "$W/rtt.py")"
  BW=$(ip netns exec "$P-a" iperf3 -c 10.253.0.2 -p 5201 -t 4 -J | jget 'round(d["end"]["sum_received"]["bits_per_second"]/8e6,1)')
  if [ "$first" = 1 ]; then
    ip netns exec "$P-a" "$CK" mirror run web --config "$W/m.toml" --run-dir "$W/run" --node a \
      --export-listen 127.0.0.1:10809 2>"$W/a.log" &
    PIDS+=($!)
    ip netns exec "$P-b" "$CK" mirror run web --config "$W/m.toml" --run-dir "$W/run" --node b 2>"$W/b.log" &
    PIDS+=($!)
    for ((i = 0; i < 3000; i++)); do
      [ "$(status b 2>/dev/null | jget 'd["disk_state"] == "UpToDate" and d["connection"] == "Connected"' 2>/dev/null)" = True ] && break
      sleep 0.2
    done
    RS_BYTES=$(status a | jget 'd["last_resync"]["bytes"]')
    RS_SECS=$(status a | jget 'round(d["last_resync"]["seconds"], 2)')
    RS_MBPS=$(python3 -c "print(round($RS_BYTES/$RS_SECS/1e6,1))")
    echo
    echo "resync (one-way delay ${delay}s): $RS_BYTES bytes in ${RS_SECS}s = $RS_MBPS MB/s; link (iperf3, one stream) $BW MB/s; ratio $(python3 -c "print(round($RS_MBPS/$BW,2))")"
    "$CK" mirror promote web --config "$W/m.toml" --run-dir "$W/run" --node a >/dev/null
    first=0
  fi
  echo
  echo "one-way delay ${delay}s: TCP RTT through the bridge (median) ${RTT_US}us (4 KiB out, 64 B back: ${RTT4K_US}us), iperf3 $BW MB/s; plain-TCP echo of the jobs' shapes: 4 KiB at depth 16 $PIPE4K/s, 1 MiB at depth 4 $PIPE1M/s"
  # The link's own limit for a job: its bandwidth, at depth D at most D
  # writes per round trip, and the rate at which a plain TCP echo of the
  # job's shape (4 KiB or 1 MiB out, 64 bytes back, D in flight) crosses
  # the bridge, whose per-packet cost the bandwidth of large segments hides. "vs bound" is the mirror against the lower of
  # nbdkit and that limit: the issue's target reads "≥ 80% of nbdkit where
  # the link is not the limit".
  printf '| %-18s | %9s | %9s | %8s | %10s | %8s | %10s | %10s | %7s | %9s | %9s | %9s |\n' job "mirror IOPS" "nbdkit IOPS" ratio "link bound" "vs bound" "mirror p50" "nbdkit p50" "MB/s" "nbdkit MB/s" "p50/(local+RTT)" "p50/(local+RTT4k)"
  for j in "${JOBS[@]}"; do
    set -- $j
    name=$1
    shift
    evict "$W/a.img" "$W/b.img"
    read -r mi mp mm mb <<<"$(fio_job nbd://127.0.0.1:10809/ "$name" "$@")"
    read -r bi bp bm bb <<<"${BASE[$name]}"
    bs=$(printf '%s\n' "$@" | sed -n 's/^--bs=//p' | tr kmg KMG | numfmt --from=iec)
    qd=$(printf '%s\n' "$@" | sed -n 's/^--iodepth=//p')
    case "$bs/$qd" in
      4096/16) echo_rate=$PIPE4K ;;
      1048576/4) echo_rate=$PIPE1M ;;
      *) echo_rate=$(python3 -c "print(round($qd*1e6/$RTT4K_US))") ;;
    esac
    lb=$(python3 -c "print(round(min($BW*1e6/$bs, $qd*1e6/$RTT_US, $echo_rate)))")
    printf '| %-18s | %9s | %9s | %7.2fx | %10s | %7.2fx | %8sus | %8sus | %7s | %9s | %8.2fx | %8.2fx |\n' "$name" "$mi" "$bi" \
      "$(python3 -c "print($mi/$bi)")" "$lb" "$(python3 -c "print($mi/min($bi,$lb))")" "$mp" "$bp" "$mb" "$bb" "$(python3 -c "print($mp/($bp+$RTT_US))")" "$(python3 -c "print($mp/($bp+$RTT4K_US))")"
  done
done
