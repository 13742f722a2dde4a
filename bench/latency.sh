#!/usr/bin/env bash
# cloudkeep latency against its anchors, side by side in one run, over
# loopback and over a veth pair between two network namespaces:
#   RTT: cloudkeep UDP/TCP probe (back to back) vs sockperf ping-pong --full-rtt
#        and qperf udp_lat/tcp_lat (one-way, doubled);
#   throughput: cloudkeep latency throughput vs iperf3, 1 and 4 streams;
#   responder CPU while answering 1,000 probes a second.
# Usage: bench/latency.sh [path/to/cloudkeep]   (needs root for the namespaces)
set -euo pipefail
CK="${1:-${CLOUDKEEP:-/work/main/build-latency/src/cli/cloudkeep}}"
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

# run_env LABEL CLIENT_PREFIX SERVER_PREFIX ADDR
run_env() {
  local label=$1 cl=$2 sv=$3 addr=$4
  local ckp=17600 skp=17601 qp=17602 ip3=17603
  bg $sv "$CK" -q latency serve --listen "$addr:$ckp" --zone bench --rate 0
  local srv_pid=$!
  bg $sv sockperf server -i "$addr" -p "$skp"
  bg $sv sockperf server --tcp -i "$addr" -p "$skp"
  bg $sv qperf -lp "$qp"
  bg $sv iperf3 -s -p "$ip3"
  sleep 1
  local n=$((SECS * 10000))
  ck_rtt() {
    $cl "$CK" --json latency probe "$addr:$ckp" --proto "$1" --count "$n" --interval 0 --warmup 1000 --timeout 1s |
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
  local cu ct su st qu qt
  read -r cu_p50 cu_p99 cuu_p50 cuu_p99 < <(ck_rtt udp)
  read -r su_p50 su_p99 < <(sp_rtt "")
  read -r ct_p50 ct_p99 _ _ < <(ck_rtt tcp)
  read -r st_p50 st_p99 < <(sp_rtt "--tcp")
  qu=$(qp_lat udp_lat)
  qt=$(qp_lat tcp_lat)
  c1=$(ck_tp 1); i1=$(ip_tp 1); c4=$(ck_tp 4); i4=$(ip_tp 4)
  echo "== $label"
  $PY - "$cu_p50" "$cu_p99" "$su_p50" "$su_p99" "$qu" "$ct_p50" "$ct_p99" "$st_p50" "$st_p99" "$qt" "$c1" "$i1" "$c4" "$i4" "$cuu_p50" "$cuu_p99" <<'PY'
import sys
a=[float(x) for x in sys.argv[1:]]
cu,cu9,su,su9,qu,ct,ct9,st,st9,qt,c1,i1,c4,i4,uu,uu9=a
print(f"  RTT UDP  p50: cloudkeep user-space {uu:6.1f} us  sockperf {su:8.1f} us  ratio {uu/su:5.2f}   (same clock as sockperf)")
print(f"  RTT UDP  p99: cloudkeep user-space {uu9:6.1f} us  sockperf {su9:8.1f} us  ratio {uu9/su9:5.2f}")
print(f"  RTT UDP  p50: cloudkeep kernel ts  {cu:6.1f} us  sockperf {su:8.1f} us  ratio {cu/su:5.2f}  | qperf 2x one-way {qu:7.1f} us  ratio {cu/qu:5.2f}")
print(f"  RTT UDP  p99: cloudkeep kernel ts  {cu9:6.1f} us  sockperf {su9:8.1f} us  ratio {cu9/su9:5.2f}")
print(f"  RTT TCP  p50: cloudkeep {ct:8.1f} us  sockperf {st:8.1f} us  ratio {ct/st:5.2f}  | qperf 2x one-way {qt:7.1f} us  ratio {ct/qt:5.2f}")
print(f"  RTT TCP  p99: cloudkeep {ct9:8.1f} us  sockperf {st9:8.1f} us  ratio {ct9/st9:5.2f}")
print(f"  TCP 1 stream : cloudkeep {c1:6.2f} Gbit/s  iperf3 {i1:6.2f} Gbit/s  ratio {c1/i1:5.2f}")
print(f"  TCP 4 streams: cloudkeep {c4:6.2f} Gbit/s  iperf3 {i4:6.2f} Gbit/s  ratio {c4/i4:5.2f}")
PY
  # Responder CPU at 1,000 probes a second for 10 s.
  local hz t0 t1 ticks
  hz=$(getconf CLK_TCK)
  local rpid=$srv_pid  # `ip netns exec` execs the command: same pid
  if [ -n "$rpid" ]; then
    t0=$(awk '{print $14+$15}' "/proc/$rpid/stat")
    $cl "$CK" -q latency probe "$addr:$ckp" --count 10000 --interval 1ms >/dev/null
    t1=$(awk '{print $14+$15}' "/proc/$rpid/stat")
    $PY -c "print(f'  responder CPU at 1,000 probes/s for 10 s: {($t1-$t0)/$hz/10*100:.2f}% of a core')"
  fi
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
