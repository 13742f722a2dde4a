#!/usr/bin/env bash
# tests/tools/delay_bridge_bench.sh [BRIDGE [PYTHON_BRIDGE]]: the delay
# bridge's own numbers, in bench/mirror.sh's setup: hosts a and b (network
# namespaces, eth0 with gso_max_size 1500), a wire namespace w holding their
# veth peers ya and yb, the bridge between ya and yb. For each one-way delay
# (DELAYS, default "0.00025 0.001"): a 64-byte TCP ping-pong (median and
# p90 of 300 round trips, TCP_NODELAY) and one iperf3 TCP stream (SECS,
# default 5 s). BRIDGE defaults to build/tests/tools/delay_bridge; with
# PYTHON_BRIDGE (the old tests/integration/delay_bridge.py, e.g. from
# `git show a38cdf7:tests/integration/delay_bridge.py`) it is measured too.
# Needs root and iperf3.
set -euo pipefail
BRIDGE="$(realpath "${1:-build/tests/tools/delay_bridge}")"
PY_BRIDGE="${2:-}"
DELAYS=${DELAYS:-"0.00025 0.001"}
SECS=${SECS:-5}
for c in iperf3 ip /usr/bin/python3; do command -v $c >/dev/null || { echo "$0 needs $c" >&2; exit 1; }; done
[ "$(id -u)" -eq 0 ] || { echo "$0 needs root (network namespaces)" >&2; exit 1; }
P="ckdb$$"
W=$(mktemp -d)
PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  set +e
  stop
  for n in a b w; do ip netns del "$P-$n" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
for n in a b w; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
ip -n "$P-a" link add eth0 type veth peer name ya netns "$P-w"
ip -n "$P-b" link add eth0 type veth peer name yb netns "$P-w"
ip -n "$P-a" addr add 10.252.0.1/24 dev eth0
ip -n "$P-b" addr add 10.252.0.2/24 dev eth0
for n in a b; do ip -n "$P-$n" link set eth0 gso_max_size 1500 up; done
ip -n "$P-w" link set ya up
ip -n "$P-w" link set yb up

measure() {  # measure KIND DELAY CMD...
  local kind=$1 delay=$2
  shift 2
  ip netns exec "$P-w" "$@" ya yb "$delay" 2>"$W/bridge.err" &
  PIDS+=($!)
  sleep 0.5
  ip netns exec "$P-b" /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.252.0.2", 5300)); s.listen(1)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    d = c.recv(64)
    if not d: break
    c.sendall(d)' &
  PIDS+=($!)
  sleep 0.3
  local rtt bw
  rtt=$(ip netns exec "$P-a" /usr/bin/python3 -c '
import socket, time
c = socket.create_connection(("10.252.0.2", 5300)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t = []
for i in range(300):
    a = time.monotonic(); c.sendall(b"x" * 64); n = 0
    while n < 64: n += len(c.recv(64 - n))
    t.append(time.monotonic() - a)
t.sort(); print("%d %d %d" % (t[0] * 1e6, t[150] * 1e6, t[270] * 1e6))')
  ip netns exec "$P-b" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 0.5
  bw=$(ip netns exec "$P-a" iperf3 -c 10.252.0.2 -p 5201 -t "$SECS" -J |
    /usr/bin/python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]; print("%.1f %d" % (e["sum_received"]["bits_per_second"]/8e6, e["sum_sent"].get("retransmits", -1)))')
  stop
  read -r rmin r50 r90 <<<"$rtt"
  read -r mbps retr <<<"$bw"
  printf '| %-6s | %6.2f ms | %6s | %6s | %6s | %8s | %7s | load %s\n' "$kind" "$(python3 -c "print($delay*1e3)")" \
    "$rmin" "$r50" "$r90" "$mbps" "$retr" "$(cut -d' ' -f1 /proc/loadavg)"
  grep -h "sent .* after due" "$W/bridge.err" | sed 's/^delay_bridge: /    /; s/ frames forwarded.*; sent/ frames, sent/' || true
}

echo "# tests/tools/delay_bridge_bench.sh $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null) $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| bridge | one-way | RTT min us | p50 us | p90 us | iperf3 MB/s | retrans |"
for d in $DELAYS; do
  [ -n "$PY_BRIDGE" ] && measure python "$d" /usr/bin/python3 "$PY_BRIDGE"
  measure c++ "$d" "$BRIDGE"
done
