#!/usr/bin/env bash
# bench/failover.sh [CLOUDKEEP]: fenced automatic failover (issue 13), ROUNDS
# (20) times: a client (qemu-io through qemu's NBD client, reconnect-delay)
# writes 4 KiB blocks through the service address; the primary is SIGKILLed
# and its links go down; the standby takes the key, the address and the
# export; the time from the SIGKILL to the first write the new primary
# acknowledges, split by the daemons' stamped log lines (monotonic clock,
# shared by the namespaces) into
#   detection   SIGKILL -> the standby's connection leaves Connected
#   lease       SIGKILL -> the standby sees the leader key free (the dead lease expired)
#   election    key free -> "won the leader key"
#   promotion   won -> "promoted: primary" (service address, ARP, export)
#   reconnect   promoted -> "first change acknowledged in this term" (the client's retry)
# A binary older than those log lines: detection and the first
# acknowledgement are sampled instead (every 50 ms: the standby's status and
# the client's output), the key free is taken as the win (lease expiry then
# includes the election), and the last column says which were.
# with the default lease_ttl / renew_interval / suspend_margin / etcd_timeout.
# Then the old primary restarts as the standby and resyncs, and the roles
# swap for the next round. Write throughput (4 KiB, depth 1, WRITES writes)
# before the first failover, right after it (standby gone) and after the
# resync. Uses the integration tests' helpers (tests/integration/lib*.sh).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
export CLOUDKEEP="$(realpath "${1:-build/src/cli/cloudkeep}")"
ROUNDS=${ROUNDS:-20}
WRITES=${WRITES:-2000}
case "$ROUNDS$WRITES" in *[!0-9]*) echo "bench/failover.sh: ROUNDS and WRITES are numbers: $ROUNDS $WRITES" >&2; exit 2 ;; esac
[ -x "$CLOUDKEEP" ] || { echo "bench/failover.sh: no cloudkeep binary at $CLOUDKEEP" >&2; exit 2; }
. "$HERE/tests/integration/lib.sh"
. "$HERE/tests/integration/lib_mirror.sh"
need etcd qemu-io arping stdbuf
fenced_hosts
start_etcd 1
fenced_resource
fenced_start

# throughput LABEL: WRITES sequential 4 KiB writes through the service address.
throughput() {
  local t0 t1 i args=()
  for ((i = 0; i < WRITES; i++)); do args+=(-c "write -q -P 9 $((i * 4096)) 4k"); done
  t0=$(mono)
  ip netns exec "$NS_C" qemu-io --image-opts \
    "driver=nbd,server.type=inet,server.host=$SERVICE,server.port=10809,export=web" \
    "${args[@]}" >/dev/null
  t1=$(mono)
  /usr/bin/python3 -c "print('throughput %-28s %6.0f writes/s (%d x 4 KiB, depth 1)' % ('$1', $WRITES / ($t1 - $t0), $WRITES))"
}
other() { if [ "$1" = a ]; then echo b; else echo a; fi; }
throughput "before failover:" | tee "$WORK/throughput"

# watch NODE WRITER_OUT T_KILL: samples, every 50 ms, the standby NODE's
# status (connection, leader key holder) and the client's acknowledged
# count, and prints when each first changed: the times that a binary
# without the stamped log lines (connection, key free, first
# acknowledgement) cannot give. Ends at the first acknowledgement.
watch() {
  exec /usr/bin/python3 - "$CLOUDKEEP" "$CFG" "$WORK/run" "$1" "$2" "$3" >"$WORK/watch" <<'PY'
import json, subprocess, sys, time
ck, cfg, run, node, out, kill = sys.argv[1:7]
until = time.monotonic() + 120  # a bound, should the round fail
def acked():
    try:
        return sum(1 for l in open(out, errors="replace") if l.startswith("wrote 4096/4096"))
    except OSError:
        return 0
base, seen = acked(), {}
while True:
    t = time.monotonic()
    r = subprocess.run([ck, "--json", "mirror", "status", "web", "--config", cfg, "--run-dir", run,
                        "--node", node], capture_output=True, text=True)
    try:
        d = json.loads(r.stdout)
    except ValueError:
        d = {}
    if "detect" not in seen and d.get("connection") not in (None, "Connected"):
        seen["detect"] = t
    if "free" not in seen and d.get("fencing", {}).get("leader", "x") is None:
        seen["free"] = t
    if "ack" not in seen and "detect" in seen and acked() > base:
        seen["ack"] = time.monotonic()
    print(json.dumps(seen), flush=True)
    if "ack" in seen or time.monotonic() > until:
        break
    time.sleep(0.05)
PY
}

# phases NODE T_KILL: the new primary's stamped lines after the SIGKILL; the
# watcher's samples where a line is missing (an older binary).
phases() {
  /usr/bin/python3 - "$WORK/$1.log" "$2" "$WORK/watch" <<'PY'
import json, re, sys
log, kill, watch = sys.argv[1], float(sys.argv[2]), sys.argv[3]
want = {"detect": "connection Connected -> ", "free": "the leader key is free",
        "won": "won the leader key", "promoted": "promoted: primary",
        "ack": "first change acknowledged in this term"}
got, src = {}, {}
for line in open(log, errors="replace"):
    m = re.search(r"\(t=([0-9.]+)\)$", line.rstrip())
    if not m or float(m.group(1)) < kill:
        continue
    for k, text in want.items():
        if k not in got and text in line:
            got[k], src[k] = float(m.group(1)), "log"
lines = open(watch).read().split("\n")
lines = [l for l in lines if l.strip()]
sampled = json.loads(lines[-1]) if lines else {}
for k in ("detect", "free", "ack"):
    if k not in got and k in sampled:
        got[k], src[k] = sampled[k], "sampled"
# The standby reads the key free and campaigns in the same round, so its
# status rarely shows it free: without the log line, the win bounds it.
if "free" not in got and "won" in got:
    got["free"], src["free"] = got["won"], "won"
missing = [k for k in want if k not in got]
if missing:
    sys.exit("no time for " + ", ".join(missing))
got["free"] = min(got["free"], got["won"])
g = lambda k: got[k]
print("%.3f %.3f %.3f %.3f %.3f %.3f %s" % (g("detect") - kill, g("free") - kill, g("won") - g("free"),
      g("promoted") - g("won"), g("ack") - g("promoted"), g("ack") - kill,
      ",".join(k + "=" + src[k] for k in ("detect", "free", "ack") if src[k] != "log") or "-"))
PY
}

P=a
: >"$WORK/rows"
for ((r = 1; r <= ROUNDS; r++)); do
  S=$(other "$P")
  writer "w$r" 0 4000 # blocks 0-3999: the 32 MiB device has 8192
  W=$WRITER
  wait_for acked_ge "w$r" 200
  T_KILL=$(mono)
  watch "$S" "$WORK/w$r.out" "$T_KILL" &
  WATCH=$!
  kill_node "$P"
  host_links "$P" down
  wait_st "$S" 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 60
  wait_for phases "$S" "$T_KILL"
  kill "$WATCH" 2>/dev/null || true
  wait "$WATCH" 2>/dev/null || true
  ROW=$(phases "$S" "$T_KILL")
  kill -9 "$W" 2>/dev/null || true
  wait "$W" 2>/dev/null || true
  grep -q "failed" "$WORK/w$r.out" && { echo "round $r: the client saw an error: $(grep failed "$WORK/w$r.out" | head -1)" >&2; exit 1; }
  echo "$r $P $S $ROW" | tee -a "$WORK/rows"
  [ "$r" = 1 ] && throughput "after failover (no standby):" | tee -a "$WORK/throughput"
  # The old primary's log restarts clean, so that the next round reads only its own lines.
  mv "$WORK/$P.log" "$WORK/$P.log.$r"
  start_node "$P" "${EXPORT_FLAGS[@]}"
  host_links "$P" up
  in_sync 120
  wait_st "$S" 'd["fencing"].get("peer_record") == "UpToDate"' 60
  [ "$r" = 1 ] && throughput "after the resync:" | tee -a "$WORK/throughput"
  P=$S
done
echo
echo "commit $(git -C "$HERE" rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "lease_ttl 3s renew_interval 500ms suspend_margin 1250ms etcd_timeout 500ms (defaults), peer_timeout 2s"
/usr/bin/python3 - "$WORK/rows" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
names = ["detection", "lease expiry", "election", "promotion", "client reconnect", "total"]
cols = list(zip(*[[float(x) for x in r[3:9]] for r in rows]))
print("round  killed  new    " + "  ".join("%-16s" % n for n in names) + "  sampled (not logged)")
for r in rows:
    print("%5s  %-6s  %-5s  " % (r[0], r[1], r[2]) + "  ".join("%-16s" % ("%.2f s" % float(x)) for x in r[3:9]) + "  " + r[9])
print("%d rounds: " % len(rows) + "; ".join("%s median %.2f s, max %.2f s" % (n, statistics.median(c), max(c))
                                            for n, c in zip(names, cols)))
PY
cat "$WORK/throughput"
