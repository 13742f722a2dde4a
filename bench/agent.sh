#!/usr/bin/env bash
# bench/agent.sh [CLOUDKEEP]: the agent's footprint against node_exporter's,
# in one run:
#   - idle: `cloudkeep agent run` with 20 jobs (none due during the window)
#     plus a `latency serve` responder, against prometheus-node-exporter with
#     its default collectors; CPU time (utime+stime from /proc) over
#     IDLE_SECONDS and resident memory at the end, both scraped every 15 s as
#     Prometheus would;
#   - scrape: /metrics with 1,000 volumes' series in the history (median and
#     max of 100 scrapes, curl's time_total), against node_exporter's /metrics;
#   - memory over many runs: an exec job every 10 ms, RSS after 1,000 runs and
#     after RUNS (default 10,000) runs.
# Targets (issue 15): idle below node_exporter's CPU and memory; scrape under 10 ms.
set -euo pipefail
CK="$(realpath "${1:-build/src/cli/cloudkeep}")"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
IDLE_SECONDS=${IDLE_SECONDS:-60}
RUNS=${RUNS:-10000}
NE=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
for c in "$NE" curl /usr/bin/python3; do command -v "$c" >/dev/null || { echo "bench/agent.sh needs $c (make bench)" >&2; exit 1; }; done
W=$(mktemp -d /var/tmp/ck-bench-agent.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU time of every thread of a process, in ns (schedstat: finer than the clock ticks of stat).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
scrape_ms() {  # URL N: "median max" of N scrapes in ms
  for _ in $(seq "$2"); do curl -fsS -o /dev/null -w '%{time_total}\n' "$1"; done |
    /usr/bin/python3 -c 'import sys; v=sorted(float(x)*1000 for x in sys.stdin); print("%.2f %.2f" % (v[len(v)//2], v[-1]))'
}

echo "# bench/agent.sh $(git -C "$HERE" rev-parse --short HEAD) $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- idle footprint -----------------------------------------------------
AP=$(free_port)
{
  printf '[agent]\nlisten = "127.0.0.1:%s"\nstate_dir = "%s/state"\n' "$AP" "$W"
  for i in $(seq 20); do
    printf '\n[[job]]\nname = "job%02d"\nkind = "exec"\nschedule = "%d 3 * * *"\ncommand = ["/bin/true"]\n' "$i" "$i"
  done
} >"$W/idle.toml"
"$CK" agent run --config "$W/idle.toml" 2>"$W/idle.err" &
AGENT=$!
PIDS+=("$AGENT")
"$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone z1 >/dev/null 2>&1 &
RESP=$!
PIDS+=("$RESP")
NP=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$NP" >/dev/null 2>&1 &
NEP=$!
PIDS+=("$NEP")
wait_http "http://127.0.0.1:$AP/metrics"
wait_http "http://127.0.0.1:$NP/metrics"
sleep 2
a0=$(cpu_ns "$AGENT"); r0=$(cpu_ns "$RESP"); n0=$(cpu_ns "$NEP")
for ((t = 0; t < IDLE_SECONDS; t += 15)); do
  curl -fsS -o /dev/null "http://127.0.0.1:$AP/metrics"
  curl -fsS -o /dev/null "http://127.0.0.1:$NP/metrics"
  sleep 15
done
a1=$(cpu_ns "$AGENT"); r1=$(cpu_ns "$RESP"); n1=$(cpu_ns "$NEP")
arss=$(rss_kb "$AGENT"); rrss=$(rss_kb "$RESP"); nrss=$(rss_kb "$NEP")
row() {  # NAME CPU_NS RSS_KB
  printf '| %-38s | %12s | %8s |\n' "$1" "$(/usr/bin/python3 -c "print('%.1f' % ($2 / 1e6))")" "$(/usr/bin/python3 -c "print(round($3 / 1024, 1))")"
}
echo
echo "idle over ${IDLE_SECONDS}s (each scraped every 15 s):"
printf '| %-38s | %12s | %8s |\n' process "CPU ms" "RSS MiB"
row "cloudkeep agent run (20 jobs)" $((a1 - a0)) "$arss"
row "cloudkeep latency serve (responder)" $((r1 - r0)) "$rrss"
row "agent + responder" $((a1 - a0 + r1 - r0)) $((arss + rrss))
row "prometheus-node-exporter" $((n1 - n0)) "$nrss"
/usr/bin/python3 -c "
a, r, n = $((a1 - a0)), $((r1 - r0)), $((n1 - n0))
A, R, N = $arss, $rrss, $nrss
print('ratios to node_exporter: agent CPU %.2f, memory %.2f; agent + responder CPU %.2f, memory %.2f' % (a / n, A / N, (a + r) / n, (A + R) / N))"
NE_SCRAPE=$(scrape_ms "http://127.0.0.1:$NP/metrics" 100)
kill "$AGENT" "$RESP"
wait "$AGENT" 2>/dev/null || true

# --- scrape latency with 1,000 volumes -----------------------------------
# The volumes table as snapshot jobs fill it (history.cpp's schema), written
# before the agent opens it.
SP=$(free_port)
mkdir -p "$W/scrape"
printf '[agent]\nlisten = "127.0.0.1:%s"\nstate_dir = "%s/scrape"\n[[job]]\nname = "x"\nkind = "exec"\nschedule = "0 3 * * *"\ncommand = ["/bin/true"]\n' "$SP" "$W" >"$W/scrape.toml"
"$CK" agent run --config "$W/scrape.toml" 2>"$W/scrape.err" &
S=$!
PIDS+=("$S")
wait_http "http://127.0.0.1:$SP/metrics"
kill "$S"
wait "$S" 2>/dev/null || true
/usr/bin/python3 - "$W/scrape/history.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1e6)
db.executemany("INSERT INTO volumes (volume, last_success_us, last_duration_s, snapshot_count) VALUES (?, ?, ?, ?)",
               [("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol%017d" % i, now - i * 1000000, 1.5, 24) for i in range(1000)])
db.commit()
PY
"$CK" agent run --config "$W/scrape.toml" 2>>"$W/scrape.err" &
S=$!
PIDS+=("$S")
wait_http "http://127.0.0.1:$SP/metrics"
SERIES=$(curl -fsS "http://127.0.0.1:$SP/metrics" | grep -vc '^#')
CK_SCRAPE=$(scrape_ms "http://127.0.0.1:$SP/metrics" 100)
kill "$S"
wait "$S" 2>/dev/null || true
echo
echo "scrape of /metrics, 100 times (ms, median and max):"
echo "  cloudkeep agent, 1,000 volumes ($SERIES series): $CK_SCRAPE"
echo "  prometheus-node-exporter (default collectors): $NE_SCRAPE"

# --- memory over many short runs ---------------------------------------
RP=$(free_port)
printf '[agent]\nlisten = "127.0.0.1:%s"\nstate_dir = "%s/runs"\nhistory_max_runs = 500\n[[job]]\nname = "fast"\nkind = "exec"\nevery = "10ms"\ncommand = ["/bin/true"]\n' "$RP" "$W" >"$W/runs.toml"
"$CK" agent run --config "$W/runs.toml" 2>"$W/runs.err" &
R=$!
PIDS+=("$R")
wait_http "http://127.0.0.1:$RP/metrics"
runs_done() { curl -fsS "http://127.0.0.1:$RP/metrics" | awk -F'} ' '/^cloudkeep_agent_job_runs_total\{.*outcome="success"/{s+=$2} END{print s+0}'; }
until [ "$(runs_done)" -ge 1000 ]; do sleep 1; done
rss1k=$(rss_kb "$R")
t0=$(date +%s)
until [ "$(runs_done)" -ge "$RUNS" ]; do sleep 2; done
rssN=$(rss_kb "$R")
t1=$(date +%s)
echo
echo "memory over short runs (exec /bin/true every 10 ms, history_max_runs 500):"
echo "  RSS after 1,000 runs: $((rss1k / 1024)) MiB; after $RUNS runs: $((rssN / 1024)) MiB ($(/usr/bin/python3 -c "print('%+.1f' % (($rssN-$rss1k)/1024))") MiB; $((t1 - t0)) s for the last $((RUNS - 1000)))"
