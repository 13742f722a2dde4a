#!/usr/bin/env bash
# cloudkeep agent end to end: exec and snapshot jobs on short `every`
# schedules against an image-file volume and a store in $WORK; a real
# Prometheus scrapes /metrics and the values are read back through its HTTP
# API; promtool checks the exposition; a hanging job is killed at its timeout
# (its whole process group); SIGHUP with a bad config keeps the old one;
# SIGKILL and a restart keep the history and run no slot twice; SIGTERM stops.
. "$(dirname "$0")/lib.sh"
need prometheus promtool curl /usr/bin/python3

PORT=$(free_port)
PPORT=$(free_port)
IMG="$WORK/vol.img"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$IMG"
CONF="$WORK/agent.toml"

write_config() { # $1: extra text appended
  cat >"$CONF" <<TOML
[agent]
listen = "127.0.0.1:$PORT"
state_dir = "$WORK/state"
timezone = "UTC"
shutdown_timeout = "20s"

[[job]]
name = "tick"
kind = "exec"
every = "1s"
command = ["/bin/sh", "-c", "echo \"\$CLOUDKEEP_AGENT_SLOT\" >>'$WORK/ticks'"]

[[job]]
name = "snap"
kind = "snapshot"
every = "2s"
volumes = ["$IMG"]
store = "$WORK/store"
tag = ["by=agent"]
keep_last = 2
timeout = "5m"

[[job]]
name = "hang"
kind = "exec"
every = "2s"
timeout = "1s"
command = ["/bin/sh", "-c", "sleep 1000 & echo \$! >'$WORK/hang.pid'; wait"]
$1
TOML
}
write_config ""

# --- check-config ------------------------------------------------------
expect_rc 0 "$CK" agent check-config "$CONF"
expect_contains "$OUT" "OK, 3 job(s)"
cat >"$WORK/bad.toml" <<TOML
[agent]
listen = "0.0.0.0:$PORT"
[[job]]
name = "s"
kind = "snapshot"
schedule = "5 * * * mon-xyz"
volumes = ["$IMG"]
keep_daily = -5
keep_dialy = 3
freeze_timeout = "ten"
[[job]]
name = "m"
kind = "mail-check"
every = "1h"
no_relay_test = "yes"
TOML
expect_rc 2 "$CK" agent check-config "$WORK/bad.toml"
echo "$ERR"
for want in "bad.toml:2: [agent] listen = \"0.0.0.0:$PORT\": an address other than loopback needs bearer_token_file" \
  "bad.toml:6: job 's': schedule = \"5 * * * mon-xyz\"" \
  "bad.toml:8: job 's': keep_daily = \"-5\"" \
  "bad.toml:9: job 's': unknown key 'keep_dialy'" \
  "bad.toml:10: job 's': freeze_timeout = \"ten\"" \
  "bad.toml:15: job 'm': no_relay_test = \"yes\": a flag, give true or false"; do
  expect_contains "$ERR" "$want"
done
[ "$(grep -c . <<<"$ERR")" -ge 6 ] || fail "expected one line per error"

# --- the agent runs ----------------------------------------------------
start_agent() {
  start_daemon "agent$1" 'listening on' "$CK" agent run --config "$CONF"
  AGENT=$DAEMON_PID
  expect_eq "$DAEMON_PORT" "$PORT" "agent port"
}
start_agent 1
# The history is read through a config that loads (HIST_CONF): while the
# file holds a refused job, `agent history` refuses it too.
HIST_CONF=$CONF
runs() { # runs JOB OUTCOME: how many runs of JOB have OUTCOME in the history
  "$CK" --json agent history --config "$HIST_CONF" --job "$1" --limit 100000 |
    /usr/bin/python3 -c "import json,sys; print(sum(1 for r in json.load(sys.stdin)['runs'] if r['outcome']==sys.argv[1]))" "$2"
}
at_least() { [ "$(runs "$1" "$2")" -ge "$3" ]; }
wait_for at_least snap success 3
wait_for at_least tick success 3
wait_for at_least hang timeout 1

# The hanging job: killed at its 1 s timeout with its process group (the
# backgrounded sleep too), recorded as a timeout.
hang_pid=$(cat "$WORK/hang.pid")
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_for gone "$hang_pid"
expect_rc 0 "$CK" --json agent history --config "$CONF" --job hang
expect_contains "$OUT" '"outcome": "timeout"'
expect_contains "$OUT" "killed at its timeout of 1s"

# Snapshots exist in the store, retention applied (keep_last 2).
expect_rc 0 "$CK" --store "$WORK/store" --json snapshot list
n=$(json_get 'len(d["snapshots"])' <<<"$OUT")
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "expected 1-3 snapshots with keep_last 2 (one may be in flight), found $n"

# agent status
expect_rc 0 "$CK" --json agent status --config "$CONF"
expect_eq "$(json_get '[j["name"] for j in d["jobs"]]' <<<"$OUT")" "['tick', 'snap', 'hang']"
# hang runs every 2 s: its last run is the one running now or the last timeout.
expect_eq "$(json_get '[j for j in d["jobs"] if j["name"]=="hang"][0]["last_run"]["outcome"] in ("timeout", "running")' <<<"$OUT")" "True"

# --- /metrics, promtool, and a real Prometheus ------------------------
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics found problems"
grep -q '^cloudkeep_agent_build_info{version="' "$WORK/metrics.txt" || fail "no build info"
grep -qF "cloudkeep_snapshots{volume=\"$IMG\"}" "$WORK/metrics.txt" || fail "no snapshot count for the volume"
# Read-only: nothing but GET /metrics.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")
[ "$code" != 200 ] || fail "POST /metrics answered 200"
expect_not_contains "$(cat "$WORK/metrics.txt")" "sleep 1000" "a job's command must not be exported"

cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: cloudkeep-agent
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YML
promtool check config "$WORK/prometheus.yml" >/dev/null
start_daemon prometheus 'Server is ready to receive web requests' \
  prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$PPORT"
PROM=$DAEMON_PID
query() { # prints the first value of an instant query, or nothing
  curl -fsS "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else '')"
}
has_value() { [ -n "$(query "$1")" ]; }
wait_for has_value 'cloudkeep_agent_job_runs_total{agent_job="snap",outcome="success"} >= 3'
wait_for has_value "cloudkeep_snapshots{volume=\"$IMG\"}"
snaps=$(query "cloudkeep_snapshots{volume=\"$IMG\"}")
[ "$snaps" = 1 ] || [ "$snaps" = 2 ] || fail "Prometheus has cloudkeep_snapshots=$snaps, keep_last is 2"
last=$(query "cloudkeep_snapshot_last_success_timestamp_seconds{volume=\"$IMG\"}")
started=$(date +%s -r "$IMG")
/usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$last" "$started" ||
  fail "last snapshot time $last is before the test made the volume ($started)"
wait_for has_value 'cloudkeep_agent_job_runs_total{agent_job="hang",outcome="timeout"} >= 1'
expect_eq "$(query 'cloudkeep_agent_job_runs_total{agent_job="hang",outcome="success"}')" "0" "a hanging job never succeeds"
expect_eq "$(query 'cloudkeep_agent_build_info')" "1"
expect_eq "$(query 'up{job="cloudkeep-agent"}')" "1"

# --- SIGHUP with a bad config keeps the old one ------------------------
cp "$CONF" "$WORK/good.toml"
HIST_CONF=$WORK/good.toml
printf '[[job]]\nname = "x"\nkind = "exec"\nevery = "1s"\n' >>"$CONF"
kill -HUP "$AGENT"
refused() { grep -q "the new config was refused; the running one is kept" "$WORK/agent1.err"; }
wait_for refused
grep -q 'reload refused: .*job .x.: an exec job needs command' "$WORK/agent1.err" || fail "the refusal does not say why"
kill -0 "$AGENT" || fail "the agent died on a bad reload"
before=$(runs tick success)
more_ticks() { [ "$(runs tick success)" -gt "$before" ]; }
wait_for more_ticks
# A good one with a new job is taken.
write_config '[[job]]
name = "late"
kind = "exec"
every = "1s"
command = ["/bin/true"]'
kill -HUP "$AGENT"
HIST_CONF=$CONF
reloaded() { grep -q "config reloaded from .*: 4 job(s)" "$WORK/agent1.err"; }
wait_for reloaded
wait_for at_least late success 1

# --- SIGKILL and restart: history kept, no slot twice -----------------
hist_before=$("$CK" --json agent history --config "$CONF" --limit 100000 | json_get 'sorted(r["id"] for r in d["runs"])')
kill -9 "$AGENT"
wait "$AGENT" 2>/dev/null || true
ticks_before=$(wc -l <"$WORK/ticks")
start_agent 2
more_after_restart() { [ "$(wc -l <"$WORK/ticks")" -ge $((ticks_before + 3)) ]; }
wait_for more_after_restart
hist_after=$("$CK" --json agent history --config "$CONF" --limit 100000 | json_get 'sorted(r["id"] for r in d["runs"])')
/usr/bin/python3 -c "import sys,ast; b=set(ast.literal_eval(sys.argv[1])); a=set(ast.literal_eval(sys.argv[2])); sys.exit(0 if b <= a else 1)" "$hist_before" "$hist_after" ||
  fail "runs recorded before the SIGKILL are missing after the restart"
dups=$(sort "$WORK/ticks" | uniq -d)
[ -z "$dups" ] || fail "slots run twice: $dups"
slots_dup=$("$CK" --json agent history --config "$CONF" --job snap --limit 100000 |
  json_get 'len([r["slot"] for r in d["runs"] if r["outcome"]!="skipped"]) - len(set(r["slot"] for r in d["runs"] if r["outcome"]!="skipped"))')
expect_eq "$slots_dup" "0" "snapshot slots run twice"

# --- SIGTERM stops cleanly ---------------------------------------------
kill -TERM "$AGENT"
rc=0
wait "$AGENT" || rc=$?
expect_eq "$rc" "0" "agent exit status after SIGTERM"
grep -q "agent: stopped" "$WORK/agent2.err" || fail "no stop line"
grep -c . "$WORK/agent1.err" "$WORK/agent2.err"
