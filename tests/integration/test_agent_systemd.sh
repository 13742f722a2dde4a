#!/usr/bin/env bash
# The agent under systemd's notify protocol, without systemd: a datagram
# socket of the test stands in for NOTIFY_SOCKET. The agent says READY=1
# once it listens, WATCHDOG=1 at half of WATCHDOG_USEC from its scheduler
# loop, RELOADING=1 and READY=1 around a SIGHUP (a refused config too), and
# STOPPING=1 on SIGTERM. The shipped unit passes `systemd-analyze verify`,
# and the sample config passes `agent check-config`.
. "$(dirname "$0")/lib.sh"
need systemd-analyze /usr/bin/python3

UNIT="$CK_SOURCE_DIR/dist/systemd/cloudkeep-agent.service"
sed "s|/usr/bin/cloudkeep|$CK|g" "$UNIT" >"$WORK/cloudkeep-agent.service"
expect_rc 0 systemd-analyze verify --man=no "$WORK/cloudkeep-agent.service"
expect_rc 0 "$CK" agent check-config "$CK_SOURCE_DIR/dist/agent.toml.example"

start_daemon notify '^ready' /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
with open(sys.argv[2], "a") as log:
    while True:
        for line in s.recv(4096).decode().split("\n"):
            if line:
                log.write(line + "\n"); log.flush()
' "$WORK/notify.sock" "$WORK/notify.log"

PORT=$(free_port)
cat >"$WORK/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$PORT"
state_dir = "$WORK/state"

[[job]]
name = "tick"
kind = "exec"
every = "1s"
command = ["/bin/true"]
TOML
NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=400000 \
  start_daemon agent 'listening on' "$CK" agent run --config "$WORK/agent.toml"
AGENT=$DAEMON_PID

count() { grep -c "^$1\$" "$WORK/notify.log" 2>/dev/null || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
wait_for at_least READY=1 1
expect_contains "$(cat "$WORK/notify.log")" "STATUS=1 job(s), listening on 127.0.0.1:$PORT"
wait_for at_least WATCHDOG=1 3
first_line=$(grep -m1 -E '^(READY|WATCHDOG)=1$' "$WORK/notify.log")
expect_eq "$first_line" READY=1 "READY before the first watchdog ping"
expect_contains "$(cat "$WORK/agent.err")" "systemd watchdog every 400ms"

# A reload, then a refused one: each is RELOADING=1 followed by READY=1.
kill -HUP "$AGENT"
wait_for at_least READY=1 2
expect_eq "$(count RELOADING=1)" 1
printf 'garbage = [\n' >>"$WORK/agent.toml"
kill -HUP "$AGENT"
wait_for at_least READY=1 3
expect_eq "$(count RELOADING=1)" 2
expect_contains "$(cat "$WORK/agent.err")" "the new config was refused"
n=$(count WATCHDOG=1)
wait_for at_least WATCHDOG=1 $((n + 2))

kill -TERM "$AGENT"
wait_for at_least STOPPING=1 1
gone() { ! kill -0 "$AGENT" 2>/dev/null; }
wait_for gone
echo "PASS test_agent_systemd"
