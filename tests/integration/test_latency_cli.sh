#!/usr/bin/env bash
# latency on loopback: bad input (exit 2, one line naming the value),
# unreachable targets (lost after the timeout, exit 1), the zone from a local
# IMDSv2 emulator, and token handling.
. "$(dirname "$0")/lib.sh"
need /usr/bin/python3

# --- bad input ------------------------------------------------------------
expect_rc 2 "$CK" latency probe 127.0.0.1:17001 --proto sctp
expect_contains "$ERR" "'sctp'"
expect_rc 2 "$CK" latency probe 127.0.0.1:99999
expect_contains "$ERR" "'127.0.0.1:99999'"
expect_rc 2 "$CK" latency probe 127.0.0.1 --interval 5parsecs
expect_contains "$ERR" "5parsecs"
expect_rc 2 "$CK" latency probe 127.0.0.1 --size 10
expect_contains "$ERR" "--size '10'"
expect_rc 2 "$CK" latency throughput 127.0.0.1 --streams 0
expect_contains "$ERR" "--streams '0'"
printf 'name,address,zone\na,127.0.0.1:17001,z\nb,127.0.0.1:17002\n' >"$WORK/bad.csv"
expect_rc 2 "$CK" latency mesh --peers "$WORK/bad.csv"
expect_contains "$ERR" "bad.csv:3: expected 3 fields"
printf '[[peer]]\nname = "a"\naddress = "127.0.0.1:17001"\nzone = 3\n' >"$WORK/bad.toml"
expect_rc 2 "$CK" latency mesh --peers "$WORK/bad.toml"
expect_contains "$ERR" "bad.toml:4:"
expect_rc 2 "$CK" latency mesh --peers "$WORK/missing.csv"
expect_contains "$ERR" "missing.csv"
printf 'name,address,zone\na,127.0.0.1:17001,z\nb,127.0.0.1:17002,z\n' >"$WORK/ok.csv"
expect_rc 2 env -u CLOUDKEEP_MESH_TOKEN "$CK" latency mesh --peers "$WORK/ok.csv"
expect_contains "$ERR" "needs a token"

# --- unreachable: lost after the timeout, never a hang ----------------------
DEAD=$(free_port)  # reserved, nothing listens there
expect_rc 1 "$CK" --json latency probe "127.0.0.1:$DEAD" --count 3 --interval 10ms --timeout 100ms
expect_eq "$(json_get 'd["targets"][0]["lost"]' <<<"$OUT")" 3 "lost"
expect_eq "$(json_get 'd["targets"][0]["loss_ratio"]' <<<"$OUT")" 1.0 "loss ratio"
expect_rc 1 "$CK" latency probe "127.0.0.1:$DEAD" --proto tcp --count 2 --timeout 100ms
expect_contains "$OUT" "127.0.0.1:$DEAD"

# --- zone from IMDSv2 (a local emulator; never the real link-local address) --
cat >"$WORK/imds.py" <<'PY'
import http.server, sys
TOKEN = "tok-123"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_PUT(self):
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.send_response(400); self.end_headers(); return
        self.send_response(200); self.end_headers(); self.wfile.write(TOKEN.encode())
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.send_response(401); self.end_headers(); return
        if self.path != "/latest/meta-data/placement/availability-zone-id":
            self.send_response(404); self.end_headers(); return
        self.send_response(200); self.end_headers(); self.wfile.write(b"use1-az4")
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
start_daemon imds '^listening on' /usr/bin/python3 "$WORK/imds.py"
IMDS=$DAEMON_PORT
# Each agent logs "serving NAME (zone Z) on ADDR:PORT udp+tcp". Not port 0:
# the agent then binds TCP on the number UDP got, which a TCP connection of
# another test may hold.
SERVING='^cloudkeep: serving'

AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$IMDS start_daemon serve1 "$SERVING" \
  "$CK" latency serve --listen "127.0.0.1:$(free_port)" --name imds-host
P1=$DAEMON_PORT
wait_for "$CK" latency probe 127.0.0.1:$P1 --count 1 --warmup 0 --timeout 100ms
expect_rc 0 "$CK" --json latency probe 127.0.0.1:$P1 --count 2 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["zone"]' <<<"$OUT")" use1-az4 "zone from IMDSv2"
expect_eq "$(json_get 'd["targets"][0]["name"]' <<<"$OUT")" imds-host "name"

AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$IMDS AWS_EC2_METADATA_DISABLED=true \
  start_daemon serve2 "$SERVING" "$CK" latency serve --listen "127.0.0.1:$(free_port)"
P2=$DAEMON_PORT
wait_for "$CK" latency probe 127.0.0.1:$P2 --count 1 --warmup 0 --timeout 100ms
expect_rc 0 "$CK" --json latency probe 127.0.0.1:$P2 --count 1
expect_eq "$(json_get 'd["targets"][0]["zone"]' <<<"$OUT")" unknown "IMDS disabled"
expect_contains "$(cat "$WORK/serve2.err")" "zone unknown"
expect_contains "$(cat "$WORK/serve2.err")" "no mesh token"

# An IMDS endpoint that does not answer: warning, zone unknown, still serves.
AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(free_port) start_daemon serve3 "$SERVING" \
  "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone z1
wait_for "$CK" latency probe 127.0.0.1:$DAEMON_PORT --count 1 --warmup 0 --timeout 100ms

# --- the per-source limit: back-to-back probes beyond it are lost, and said so
expect_rc 2 "$CK" latency serve --listen 127.0.0.1:0 --rate-per-source -1
expect_contains "$ERR" "--rate-per-source '-1'"
start_daemon serve6 "$SERVING" "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone z1 --rate-per-source 10 --burst-per-source 5
P6=$DAEMON_PORT
wait_for "$CK" latency probe 127.0.0.1:$P6 --count 1 --warmup 0 --timeout 100ms
sleep 0.6  # the bucket refills (5 tokens at 10/s)
# A lost probe waits its 1 ms timeout: 200 probes take at least 0.2 s, in
# which the bucket earns 2 tokens or a few more on a slow machine.
expect_rc 0 "$CK" --json latency probe 127.0.0.1:$P6 --count 200 --interval 0 --warmup 0 --timeout 1ms
expect_eq "$(json_get '4 <= d["targets"][0]["received"] < 60' <<<"$OUT")" True "limited to the burst plus the rate"
expect_contains "$ERR" "--rate-per-source"
expect_rc 0 "$CK" --json latency probe 127.0.0.1:$P6 --proto tcp --count 10 --interval 0 --warmup 0
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 10 "tcp probes wait instead of being lost"

# --- an agent without a token refuses mesh runs; tokens must match ----------
printf 'name,address,zone\na,127.0.0.1:%s,z\nb,127.0.0.1:%s,z\n' "$P2" "$P1" >"$WORK/peers.csv"
expect_rc 1 env CLOUDKEEP_MESH_TOKEN=t1 "$CK" latency mesh --peers "$WORK/peers.csv" --count 1
expect_contains "$ERR" "authentication failed"
echo t1 >"$WORK/t1"
CLOUDKEEP_MESH_TOKEN=t1 start_daemon serve4 "$SERVING" "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone z1 --name n1
P4=$DAEMON_PORT
CLOUDKEEP_MESH_TOKEN=t1 start_daemon serve5 "$SERVING" "$CK" latency serve --listen "[::1]:$(free_port)" --zone z2 --name n2
P5=$DAEMON_PORT
wait_for "$CK" latency probe 127.0.0.1:$P4 --count 1 --warmup 0 --timeout 100ms
wait_for "$CK" latency probe "[::1]:$P5" --count 1 --warmup 0 --timeout 100ms
printf 'name,address,zone\nn1,127.0.0.1:%s,z1\nn2,[::1]:%s,z2\n' "$P4" "$P5" >"$WORK/mesh.csv"
expect_rc 0 "$CK" --json latency mesh --peers "$WORK/mesh.csv" --token-file "$WORK/t1" --count 3 --interval 1ms
expect_eq "$(json_get 'len(d["pairs"]) == 2 and all(p["received"] == 3 for p in d["pairs"])' <<<"$OUT")" True "loopback mesh"
expect_rc 0 "$CK" --json latency mesh --peers "$WORK/mesh.csv" --token-file "$WORK/t1" --count 1 --proto tcp
expect_rc 0 "$CK" --json latency throughput 127.0.0.1:$P4 --duration 200ms --token-file "$WORK/t1"
expect_eq "$(json_get 'd["bits_per_second"] > 0' <<<"$OUT")" True "throughput with token"
expect_rc 1 "$CK" latency throughput 127.0.0.1:$P4 --duration 200ms
expect_contains "$ERR" "authentication failed"
