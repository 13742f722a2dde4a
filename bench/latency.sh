#!/usr/bin/env bash
# cloudkeep latency against its anchors, side by side in one run, over
# loopback and over a veth pair between two network namespaces:
#   RTT: cloudkeep UDP/TCP probe (back to back) vs sockperf ping-pong --full-rtt
#        and qperf udp_lat/tcp_lat (one-way, doubled);
#   throughput: cloudkeep latency throughput vs iperf3, 1 and 4 streams;
#   responder CPU while answering 1,000 probes a second.
# Usage: bench/latency.sh [path/to/cloudkeep]   (needs root for the namespaces)
set -euo pipefail
CK="${1:-${CLOUDKEEP:-$(dirname "$0")/../build/src/cli/cloudkeep}}"
SECS="${BENCH_SECS:-3}"
PY=/usr/bin/python3
for c in sockperf qperf iperf3 ip; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done
NS="ck-lat-bench-$$"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$NS-a" 2>/dev/null; ip netns del "$NS-b" 2>/dev/null
}
trap cleanup EXIT

bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }

# Client and server are pinned to different cores (taskset; CLIENT_CPU,
# SERVER_CPU), the same for every tool, so that no tool gains or loses by
# where the scheduler happened to put it. Each RTT measurement runs ROUNDS
# times, interleaved between the tools, and the median of the rounds' values
# is reported.
ROUNDS="${ROUNDS:-3}"
CLIENT_CPU="${CLIENT_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"

# CPU time in ns of every thread of a process (exact, unlike the tick-sampled
# utime+stime, which a 1 ms probe rhythm can alias with the 1 ms tick).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

median() { $PY -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# run_env LABEL CLIENT_PREFIX SERVER_PREFIX ADDR
run_env() {
  local label=$1 addr=$4
  local cl="$2 taskset -c $CLIENT_CPU" sv="$3 taskset -c $SERVER_CPU"
  local ckp=17600 skp=17601 qp=17602 ip3=17603
  bg $sv "$CK" -q latency serve --listen "$addr:$ckp" --zone bench --rate 0 --rate-per-source 0
  local srv_pid=$!
  bg $sv sockperf server -i "$addr" -p "$skp"
  local sp_pid=$!
  bg $sv sockperf server --tcp -i "$addr" -p "$skp"
  bg $sv qperf -lp "$qp"
  bg $sv iperf3 -s -p "$ip3"
  sleep 1
  local n=$((SECS * 10000))
  ck_rtt() {
    $cl "$CK" --json latency probe "$addr:$ckp" --proto "$1" --clock "${2:-kernel}" --count "$n" --interval 0 --warmup 1000 --timeout 1s |
      $PY -c 'import json,sys; t=json.load(sys.stdin)["targets"][0]; u=t.get("user_space", t); print(t["p50_us"], t["p99_us"], u["p50_us"], u["p99_us"])'
  }
  sp_rtt() {
    $cl sockperf ping-pong $1 -i "$addr" -p "$skp" -t "$SECS" --full-rtt 2>&1 |
      $PY -c '
import re,sys
t=sys.stdin.read(); g=lambda p: float(re.search(r"percentile %s = +([0-9.]+)" % p, t).group(1))
print(g("50.000"), g("99.000"))'
  }
  qp_lat() {
    $cl qperf -lp "$qp" -t "$SECS" "$addr" "$1" 2>&1 | $PY -c '
import re,sys
m=re.search(r"latency\s*=\s*([0-9.]+)\s*(us|ms|ns)", sys.stdin.read()); v=float(m.group(1))*{"us":1,"ms":1000,"ns":0.001}[m.group(2)]
print(2*v)'
  }
  ck_tp() {
    $cl "$CK" --json latency throughput "$addr:$ckp" --streams "$1" --duration "${SECS}s" |
      $PY -c 'import json,sys; print(json.load(sys.stdin)["bits_per_second"]/1e9)'
  }
  ip_tp() {
    $cl iperf3 -c "$addr" -p "$ip3" -t "$SECS" -P "$1" -J |
      $PY -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
  }
  local -a CU CU9 CUU CUU9 CO CO9 SU SU9 CT CT9 ST ST9 QU QT C1 I1 C4 I4
  local r a b c d
  for ((r = 0; r < ROUNDS; r++)); do
    read -r a b c d < <(ck_rtt udp); CU+=("$a"); CU9+=("$b"); CUU+=("$c"); CUU9+=("$d")
    read -r a b _ _ < <(ck_rtt udp user); CO+=("$a"); CO9+=("$b")
    read -r a b < <(sp_rtt ""); SU+=("$a"); SU9+=("$b")
    read -r a b _ _ < <(ck_rtt tcp); CT+=("$a"); CT9+=("$b")
    read -r a b < <(sp_rtt "--tcp"); ST+=("$a"); ST9+=("$b")
    QU+=("$(qp_lat udp_lat)"); QT+=("$(qp_lat tcp_lat)")
    C1+=("$(ck_tp 1)"); I1+=("$(ip_tp 1)"); C4+=("$(ck_tp 4)"); I4+=("$(ip_tp 4)")
  done
  echo "== $label (client on CPU $CLIENT_CPU, server on CPU $SERVER_CPU; median of $ROUNDS rounds)"
  $PY - "$(median "${CU[@]}")" "$(median "${CU9[@]}")" "$(median "${SU[@]}")" "$(median "${SU9[@]}")" \
    "$(median "${QU[@]}")" "$(median "${CT[@]}")" "$(median "${CT9[@]}")" "$(median "${ST[@]}")" "$(median "${ST9[@]}")" \
    "$(median "${QT[@]}")" "$(median "${C1[@]}")" "$(median "${I1[@]}")" "$(median "${C4[@]}")" "$(median "${I4[@]}")" \
    "$(median "${CUU[@]}")" "$(median "${CUU9[@]}")" "$(median "${CO[@]}")" "$(median "${CO9[@]}")" <<'PY'
import sys
a=[float(x) for x in sys.argv[1:]]
cu,cu9,su,su9,qu,ct,ct9,st,st9,qt,c1,i1,c4,i4,uu,uu9,co,co9=a
print(f"  RTT UDP  p50: cloudkeep --clock user {co:6.1f} us  sockperf {su:8.1f} us  ratio {co/su:5.2f}   (same clock as sockperf)")
print(f"  RTT UDP  p99: cloudkeep --clock user {co9:6.1f} us  sockperf {su9:8.1f} us  ratio {co9/su9:5.2f}")
print(f"  RTT UDP  p50: cloudkeep user-space beside kernel ts {uu:6.1f} us  ratio {uu/su:5.2f}")
print(f"  RTT UDP  p50: cloudkeep kernel ts  {cu:6.1f} us  sockperf {su:8.1f} us  ratio {cu/su:5.2f}  | qperf 2x one-way {qu:7.1f} us  ratio {cu/qu:5.2f}")
print(f"  RTT UDP  p99: cloudkeep kernel ts  {cu9:6.1f} us  sockperf {su9:8.1f} us  ratio {cu9/su9:5.2f}")
print(f"  RTT TCP  p50: cloudkeep {ct:8.1f} us  sockperf {st:8.1f} us  ratio {ct/st:5.2f}  | qperf 2x one-way {qt:7.1f} us  ratio {ct/qt:5.2f}")
print(f"  RTT TCP  p99: cloudkeep {ct9:8.1f} us  sockperf {st9:8.1f} us  ratio {ct9/st9:5.2f}")
print(f"  TCP 1 stream : cloudkeep {c1:6.2f} Gbit/s  iperf3 {i1:6.2f} Gbit/s  ratio {c1/i1:5.2f}")
print(f"  TCP 4 streams: cloudkeep {c4:6.2f} Gbit/s  iperf3 {i4:6.2f} Gbit/s  ratio {c4/i4:5.2f}")
PY
  # Responder CPU while answering 1,000 probes a second for 10 s: cloudkeep's
  # responder against sockperf's server answering every message at the same
  # rate (under-load --reply-every 1). `ip netns exec` and taskset exec the
  # command, so the pids are the servers'.
  local c0 c1x s0 s1x
  c0=$(cpu_ns "$srv_pid")
  $cl "$CK" -q latency probe "$addr:$ckp" --count 10000 --interval 1ms >/dev/null
  c1x=$(cpu_ns "$srv_pid")
  s0=$(cpu_ns "$sp_pid")
  $cl sockperf under-load -i "$addr" -p "$skp" --mps 1000 -t 10 -m 64 --reply-every 1 >/dev/null 2>&1
  s1x=$(cpu_ns "$sp_pid")
  $PY -c "c=($c1x-$c0)/1e9/10*100; s=($s1x-$s0)/1e9/10*100; print(f'  responder CPU at 1,000 probes/s for 10 s: cloudkeep {c:.2f}% of a core  sockperf server {s:.2f}%  ratio {c/s:5.2f}')"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  PIDS=()
}

run_env "loopback (127.0.0.1)" "" "" 127.0.0.1

ip netns add "$NS-a"
ip netns add "$NS-b"
ip -n "$NS-a" link add eth0 type veth peer name eth0 netns "$NS-b"
ip -n "$NS-a" addr add 10.250.0.101/24 dev eth0
ip -n "$NS-b" addr add 10.250.0.102/24 dev eth0
for n in a b; do ip -n "$NS-$n" link set lo up; ip -n "$NS-$n" link set eth0 up; done
run_env "veth pair between two namespaces (10.250.0.101 -> .102)" "ip netns exec $NS-a" "ip netns exec $NS-b" 10.250.0.102
