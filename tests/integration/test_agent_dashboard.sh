#!/usr/bin/env bash
# The agent's dashboard in a real browser: a live agent runs a snapshot job
# (an image-file volume), a snapshot job whose volume has gone (failures on
# the timeline), a latency mesh between two responders on loopback, and a
# mail check against a resolver that never answers (an UNKNOWN finding).
# Debian's chromium, driven headless by puppeteer-core, loads `/`: the page
# must render the jobs, the timeline with both outcomes, the mesh tables and
# heatmap, the mail findings and the history, log no console error, make no
# request to anything but the agent, and fit a phone's width. /api/state
# and the page never show the mesh token. Screenshots go to
# $CK_BUILD_DIR/screenshots/ (the README's comes from there). The reports
# also become series on /metrics (mesh quantiles and loss per pair, mail
# findings by rule and level), which `promtool check metrics` accepts; the
# alerting rules in docs/prometheus pass `promtool check rules` and their
# own `promtool test rules`.
. "$(dirname "$0")/lib.sh"
need chromium node curl promtool /usr/bin/python3
FAKES="$CK_SOURCE_DIR/tests/fakes"
[ -d "$FAKES/node_modules/puppeteer-core" ] ||
  skip_or_fail "puppeteer-core (scripts/install-deps.sh test runs npm ci in tests/fakes)"

# --- two mesh responders and a resolver that swallows every query ----------
SERVING='serving'
printf 'meshtoken-s3cret\n' >"$WORK/mesh.token"
CLOUDKEEP_MESH_TOKEN=meshtoken-s3cret start_daemon serve1 "$SERVING" \
  "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone use1-az1 --name web1
P1=$DAEMON_PORT
CLOUDKEEP_MESH_TOKEN=meshtoken-s3cret start_daemon serve2 "$SERVING" \
  "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone use1-az2 --name db1
P2=$DAEMON_PORT
wait_for "$CK" latency probe "127.0.0.1:$P1" --count 1 --warmup 0 --timeout 100ms
wait_for "$CK" latency probe "127.0.0.1:$P2" --count 1 --warmup 0 --timeout 100ms
printf 'name,address,zone\nweb1,127.0.0.1:%s,use1-az1\ndb1,127.0.0.1:%s,use1-az2\n' "$P1" "$P2" >"$WORK/peers.csv"
start_daemon blackhole '^ready' /usr/bin/python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print("ready", u.getsockname()[1], flush=True)
while True: u.recvfrom(4096)
'
DEAD=$(awk '/^ready/{print $2}' "$WORK/blackhole.out")

IMG="$WORK/vol.img"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$IMG"
GONE="$WORK/gone.img"
truncate -s 1M "$GONE"
PORT=$(free_port)
cat >"$WORK/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$PORT"
state_dir = "$WORK/state"
timezone = "UTC"
shutdown_timeout = "20s"

[[job]]
name = "web-snap"
kind = "snapshot"
every = "2s"
volumes = ["$IMG"]
store = "$WORK/store"
keep_last = 3

[[job]]
name = "old-disk"
kind = "snapshot"
every = "3s"
volumes = ["$GONE"]
store = "$WORK/store"
keep_last = 3

[[job]]
name = "zones"
kind = "mesh"
every = "3s"
peers = "$WORK/peers.csv"
token_file = "$WORK/mesh.token"
count = 5
interval = "1ms"

[[job]]
name = "mail"
kind = "mail-check"
every = "5s"
domain = "dead.test"
resolver = "127.0.0.1:$DEAD"
dns_timeout = "1s"
no_smtp = true
TOML
expect_rc 0 "$CK" agent check-config "$WORK/agent.toml"
rm "$GONE"  # from now on its job fails
start_daemon agent 'listening on' "$CK" agent run --config "$WORK/agent.toml"

state() { curl -fsS "http://127.0.0.1:$PORT/api/state"; }
ready() {
  state | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
runs = s["runs"]
ok = lambda job, outcome: sum(r["job"] == job and r["outcome"] == outcome for r in runs)
kinds = {r["kind"] for r in s["reports"]}
sys.exit(0 if ok("web-snap", "success") >= 2 and ok("old-disk", "failure") >= 1
         and kinds >= {"mesh", "mail-check"} else 1)'
}
wait_for ready
STATE=$(state)
expect_not_contains "$STATE" "meshtoken-s3cret" "the mesh token in /api/state"
expect_not_contains "$(curl -fsS "http://127.0.0.1:$PORT/")" "meshtoken-s3cret" "the token on the page"
expect_not_contains "$(curl -fsS "http://127.0.0.1:$PORT/metrics")" "meshtoken-s3cret" "the token in /metrics"
expect_contains "$(curl -fsSI "http://127.0.0.1:$PORT/")" "default-src 'none'"

# --- the reports as series -----------------------------------------------
METRICS=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
expect_contains "$METRICS" 'cloudkeep_mesh_rtt_seconds{agent_job="zones",from="web1",to="db1",quantile="0.5"} '
expect_contains "$METRICS" 'cloudkeep_mesh_loss_ratio{agent_job="zones",from="db1",to="web1"} 0.000000'
expect_contains "$METRICS" 'cloudkeep_mail_findings{agent_job="mail",domain="dead.test",group="DNS",level="UNKNOWN"} 1'
expect_contains "$METRICS" 'cloudkeep_mesh_report_timestamp_seconds{agent_job="zones"} '
p50=$(sed -n 's/^cloudkeep_mesh_rtt_seconds{agent_job="zones",from="web1",to="db1",quantile="0.5"} //p' <<<"$METRICS")
expect_eq "$(/usr/bin/python3 -c "print(0 < $p50 < 1)")" True "a loopback round trip in seconds: $p50"
promtool check metrics <<<"$METRICS" >"$WORK/promtool.out" 2>&1 || { cat "$WORK/promtool.out" >&2; fail "promtool check metrics"; }
expect_rc 0 promtool check rules "$CK_SOURCE_DIR/docs/prometheus/cloudkeep-rules.yml"
(cd "$CK_SOURCE_DIR/tests/integration" && promtool test rules agent_rules_test.yml) >"$WORK/rules.out" 2>&1 ||
  { cat "$WORK/rules.out" >&2; fail "promtool test rules"; }

mkdir -p "$CK_BUILD_DIR/screenshots"
(cd "$FAKES" && timeout 180 node dashboard_check.mjs "http://127.0.0.1:$PORT/" "$CK_BUILD_DIR/screenshots") \
  >"$WORK/page.json" 2>"$WORK/page.err" || { cat "$WORK/page.err" >&2; fail "chromium could not load the dashboard"; }
PAGE=$(cat "$WORK/page.json")
check() { expect_eq "$(json_get "$1" <<<"$PAGE")" True "$2"; }
check 'd["foreign"] == []' "requests to anything but the agent: $(json_get 'd["foreign"]' <<<"$PAGE")"
check 'd["console_errors"] == [] and d["page_errors"] == []' "console errors: $(json_get 'd["console_errors"] + d["page_errors"]' <<<"$PAGE")"
check 'd["rendered"]["status"].startswith("updated ")' "the page says it is up to date"
check 'sorted(r[0] for r in d["rendered"]["job_rows"]) == ["mail", "old-disk", "web-snap", "zones"]' "one row per job"
check 'any(r[0] == "old-disk" and r[3] == "failure" and "gone.img" in r[6] for r in d["rendered"]["job_rows"])' "the broken job's outcome and error"
check 'any(r.endswith("vol.img") for r in d["rendered"]["timeline_rows"]) and any(r.endswith("gone.img") for r in d["rendered"]["timeline_rows"])' "a timeline row per volume"
check '"run success" in d["rendered"]["timeline_marks"] and "run failure" in d["rendered"]["timeline_marks"]' "successes and failures on the timeline"
check 'any(r[0] == "use1-az1 ↔ use1-az2" and r[1] == "2" for r in d["rendered"]["mesh_zone_rows"])' "the cross-zone row of the mesh"
check 'd["rendered"]["heatmap_cells"] == 4' "a 2×2 heatmap"
check 'any("dead.test" in h for h in d["rendered"]["mail_headings"])' "the mail report's heading"
check 'any(f[2] == "UNKNOWN" for f in d["rendered"]["mail_findings"])' "the mail finding that could not be checked"
check 'd["rendered"]["history_rows"] >= 4' "the history"
check 'd["phone_overflow"] <= 0' "the page is wider than a phone by $(json_get 'd["phone_overflow"]' <<<"$PAGE") px"
[ -s "$CK_BUILD_DIR/screenshots/dashboard-desktop.png" ] || fail "no screenshot"
echo "PASS test_agent_dashboard"
