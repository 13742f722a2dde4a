#!/usr/bin/env bash
# cloudkeep agent alerts end to end: an exec job that fails on every run
# raises one "failure" alert (not one per run), and when it works again one
# "recovery" alert. A webhook receiver on loopback takes the JSON POSTs (it
# answers 503 to the first one, so the retry is exercised) with the bearer
# token; a real Postfix takes the email through its own sendmail(1)
# (MAIL_CONFIG points at the test's private Postfix), and its log shows
# the message queued for each recipient with its Subject.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_postfix.sh"
need postfix /usr/sbin/sendmail /usr/bin/python3

SMTP=$(free_port)
HOOK=$(free_port)
PORT=$(free_port)
postfix_start alerts "$SMTP" closed
# The Subject of every message reaches the log (a WARN header check), and
# the local pickup path (sendmail → postdrop → pickup) needs the maildrop
# queue of this private instance.
printf '/^Subject:/ WARN\n' >"$POSTFIX_DIR/conf/header_checks"
cat >>"$POSTFIX_DIR/conf/main.cf" <<CF
header_checks = regexp:$POSTFIX_DIR/conf/header_checks
CF
postfix -c "$POSTFIX_DIR/conf" reload >/dev/null 2>&1 || fail "postfix reload"
export MAIL_CONFIG="$POSTFIX_DIR/conf"

# --- the webhook receiver ----------------------------------------------
cat >"$WORK/hook.py" <<'PY'
import http.server, json, sys
port, log = int(sys.argv[1]), sys.argv[2]
seen = {"n": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen["n"] += 1
        code = 503 if seen["n"] == 1 else 200
        with open(log, "a") as f:
            f.write(json.dumps({"code": code, "auth": self.headers.get("Authorization"),
                                "body": json.loads(body)}) + "\n")
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
print("listening on port %d" % port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
start_daemon hook 'listening on' /usr/bin/python3 "$WORK/hook.py" "$HOOK" "$WORK/hook.log"

# The job fails while $WORK/broken exists.
touch "$WORK/broken"
printf 'hook-token\n' >"$WORK/token"
cat >"$WORK/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$PORT"
state_dir = "$WORK/state"
shutdown_timeout = "20s"

[[job]]
name = "probe"
kind = "exec"
every = "1s"
command = ["/bin/sh", "-c", "echo run >>'$WORK/runs'; if [ -e '$WORK/broken' ]; then echo 'disk full' >&2; exit 3; fi"]

[[alert]]
webhook = "http://127.0.0.1:$HOOK/hook"

[[alert]]
email = ["ops@good.test", "dba@good.test"]
from = "agent@good.test"
TOML
expect_rc 0 "$CK" agent check-config "$WORK/agent.toml"

# Bad alert tables: refused before anything runs, one line each.
cat >"$WORK/bad.toml" <<TOML
[[alert]]
webhook = "gopher://x"
[[alert]]
email = ["-oQ/tmp/x"]
TOML
expect_rc 2 "$CK" agent check-config "$WORK/bad.toml"
expect_contains "$ERR" 'webhook = "gopher://x": needs an http:// or https:// URL'
expect_contains "$ERR" 'email = "-oQ/tmp/x": each element needs one address'

start_daemon agent 'listening on' "$CK" agent run --config "$WORK/agent.toml"
AGENT=$DAEMON_PID

runs() { [ -f "$WORK/runs" ] && [ "$(wc -l <"$WORK/runs")" -ge "$1" ]; }
hook_posts() { [ -f "$WORK/hook.log" ] && [ "$(wc -l <"$WORK/hook.log")" -ge "$1" ]; }
# The first failure: POSTed, refused with 503, retried, accepted.
wait_for hook_posts 2
# Three more failed runs raise nothing new.
wait_for runs 4
n_before=$(wc -l <"$WORK/runs")
wait_for runs $((n_before + 3))
expect_eq "$(wc -l <"$WORK/hook.log")" 2 "posts while the job stays broken"
first=$(sed -n 1p "$WORK/hook.log")
second=$(sed -n 2p "$WORK/hook.log")
expect_contains "$first" '"code": 503'
expect_contains "$second" '"code": 200'
expect_eq "$(json_get 'd["body"]["event"]' <<<"$second")" failure
expect_eq "$(json_get 'd["body"]["job"]' <<<"$second")" probe
expect_eq "$(json_get 'd["body"]["outcome"]' <<<"$second")" failure
expect_contains "$(json_get 'd["body"]["error"]' <<<"$second")" "disk full"
expect_eq "$(json_get 'd["auth"]' <<<"$second")" None "no token was configured"
expect_contains "$(cat "$WORK/agent.err")" "retrying in"

# The email: Postfix queued it for both recipients, with the subject.
mail_for() { grep -q "to=<$1>" "$POSTFIX_LOG"; }
wait_for mail_for ops@good.test
wait_for mail_for dba@good.test
expect_contains "$(cat "$POSTFIX_LOG")" "from=<agent@good.test>"
expect_contains "$(grep 'warning: header Subject' "$POSTFIX_LOG")" "job probe failed (failure)"

# Fixed: one recovery alert on each target.
rm "$WORK/broken"
wait_for hook_posts 3
expect_eq "$(json_get 'd["body"]["event"]' <<<"$(sed -n 3p "$WORK/hook.log")")" recovery
recovered() { grep 'warning: header Subject' "$POSTFIX_LOG" | grep -q "job probe recovered"; }
wait_for recovered
n_before=$(wc -l <"$WORK/runs")
wait_for runs $((n_before + 3))
expect_eq "$(wc -l <"$WORK/hook.log")" 3 "posts while the job keeps working"

kill -TERM "$AGENT"
stopped() { ! kill -0 "$AGENT" 2>/dev/null; }
wait_for stopped
expect_contains "$(cat "$WORK/agent.err")" "agent: stopped"
echo "PASS test_agent_alerts"
