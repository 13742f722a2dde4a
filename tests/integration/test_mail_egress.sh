#!/usr/bin/env bash
# mail egress: can a host open an SMTP session on port 25 to the outside?
# Network namespaces are the world: cloudkeep runs in HOST, every server in
# WORLD, and between them a WIRE namespace runs tests/tools/delay_bridge
# (the user-space bridge of the latency tests), first as a plain wire, then
# with --drop-port 25: a provider's silent block. In WORLD: a real Postfix
# (mx.good.test), an address where nothing listens (mx.refuse.test: RST), a
# transparent proxy answering with its own banner (mx.proxied.test), NSD for
# the names, and the EC2 emulator as this host's metadata service for the
# AWS advice. No client ever sends MAIL FROM or DATA (checked in both logs).
#
# The script re-runs itself inside WORLD (CK_EGRESS_WORLD set) so that the
# shared helpers (lib_dns, lib_postfix) start their servers there.
if [ -z "${CK_EGRESS_WORLD:-}" ]; then
  . "$(dirname "$0")/lib.sh"
  need_root
  BRIDGE="${CK_DELAY_BRIDGE:-delay_bridge}"
  need ip /usr/bin/python3 "$BRIDGE"
  P="ck-egr-$$"
  for n in host wire world; do
    ip netns add "$P-$n"
    defer "ip netns del '$P-$n'"
    ip -n "$P-$n" link set lo up
  done
  ip -n "$P-host" link add eth0 type veth peer name vh "netns" "$P-wire"
  ip -n "$P-world" link add eth0 type veth peer name vw "netns" "$P-wire"
  ip -n "$P-wire" link set vh up
  ip -n "$P-wire" link set vw up
  ip -n "$P-host" addr add 10.99.0.2/24 dev eth0
  for a in 25 26 27 53 80; do ip -n "$P-world" addr add "10.99.0.$a/24" dev eth0; done
  for n in host world; do
    # Frames of at most one MTU, so the user-space bridge can pass TCP.
    ip -n "$P-$n" link set eth0 gso_max_size 1500 up
  done
  rc=0
  CK_EGRESS_WORLD="$P" ip netns exec "$P-world" bash "$0" || rc=$?
  exit "$rc"
fi

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"
. "$(dirname "$0")/lib_postfix.sh"
P=$CK_EGRESS_WORLD
BRIDGE="${CK_DELAY_BRIDGE:-delay_bridge}"
need postfix nsd /usr/bin/python3

wire() {  # wire [bridge options]: (re)starts the bridge between host and world
  if [ -n "${WIRE_PID:-}" ]; then kill "$WIRE_PID"; wait "$WIRE_PID" 2>/dev/null || true; fi
  WIRE_N=$((${WIRE_N:-0} + 1))
  ip netns exec "$P-wire" "$BRIDGE" vh vw 0 "$@" 2>"$WORK/bridge-$WIRE_N.err" &
  WIRE_PID=$!
  defer "kill $WIRE_PID 2>/dev/null; wait $WIRE_PID 2>/dev/null"
  wait_for grep -q "forwarding" "$WORK/bridge-$WIRE_N.err"
}
in_host() { ip netns exec "$P-host" "$@"; }
ck() { in_host env AWS_EC2_METADATA_DISABLED=true "$CK" "$@"; }
wire

DNS_ADDR=10.99.0.53
Z="$WORK/zones"
dns_zone "$Z" test <<'ZONE'
good          MX  10 mx.good.test.
mx.good       A   10.99.0.25
refuse        MX  10 mx.refuse.test.
mx.refuse     A   10.99.0.26
proxied       MX  10 mx.proxied.test.
mx.proxied    A   10.99.0.27
ZONE
dns_start "$Z" 53
R="10.99.0.53:53"

POSTFIX_ADDR=10.99.0.25 POSTFIX_HOSTNAME=mx.good.test postfix_start good 25 closed

# The transparent proxy: answers for whatever was dialled with its own name.
cat >"$WORK/proxy.py" <<'PY'
import socketserver, sys
log = open(sys.argv[2], "a", buffering=1)
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 proxy.intercept.test ESMTP ready\r\n")
        for line in self.rfile:
            cmd = line.decode(errors="replace").strip()
            log.write(cmd + "\n")
            if cmd.upper().startswith("EHLO"):
                self.wfile.write(b"250-proxy.intercept.test\r\n250 PIPELINING\r\n")
            elif cmd.upper().startswith("QUIT"):
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not here\r\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
srv = socketserver.ThreadingTCPServer((sys.argv[1], 25), H)
print("proxy listening on %s:25" % sys.argv[1], flush=True)
srv.serve_forever()
PY
start_daemon proxy '^proxy listening' /usr/bin/python3 "$WORK/proxy.py" 10.99.0.27 "$WORK/proxy.log"

# A real Postfix: open, EHLO and QUIT only.
expect_rc 0 ck --json mail egress mx.good.test:25 --resolver "$R"
expect_eq "$(json_get 'd["port25"]' <<<"$OUT")" open
expect_eq "$(json_get 'd["probes"][0]["result"]' <<<"$OUT")" open
expect_contains "$(json_get 'd["probes"][0]["banner"]' <<<"$OUT")" "220 mx.good.test ESMTP"
expect_eq "$(json_get 'd["complete"]' <<<"$OUT")" True
# By domain: its MX host, and 587/465 tried too (nothing listens there: refused).
expect_rc 0 ck mail egress good.test --resolver "$R"
expect_contains "$OUT" "port 25: open"
expect_contains "$OUT" "relay ports 587/465: blocked"

# Refusal: RST on connect.
expect_rc 1 ck --json mail egress refuse.test --resolver "$R"
expect_eq "$(json_get 'd["port25"]' <<<"$OUT")" blocked
expect_eq "$(json_get '[p["result"] for p in d["probes"]]' <<<"$OUT")" "['refused', 'refused', 'refused']"
expect_contains "$ERR" "outbound port 25 is blocked"

# A transparent proxy: a greeting, but not from the target.
expect_rc 1 ck --json mail egress mx.proxied.test:25 --resolver "$R"
expect_eq "$(json_get 'd["probes"][0]["result"]' <<<"$OUT")" proxy
expect_contains "$(json_get 'd["probes"][0]["detail"]' <<<"$OUT")" "names proxy.intercept.test, not mx.proxied.test"
expect_contains "$ERR" "something on the path answers"

# The silent drop: the wire now swallows TCP port 25.
wire --drop-port 25
expect_rc 1 ck --json mail egress mx.good.test:25 mx.good.test:587 --smtp-timeout 2s --resolver "$R"
expect_eq "$(json_get '[p["result"] for p in d["probes"]]' <<<"$OUT")" "['dropped', 'refused']"
expect_eq "$(json_get 'd["port25"]' <<<"$OUT")" blocked
expect_contains "$(json_get 'd["advice"]' <<<"$OUT")" "smarthost on 587"
# The same on "EC2": IMDSv2 (the emulator) says so, and the advice is AWS's request form.
cat >"$WORK/state.json" <<'JSON'
{"region": "us-east-2", "credentials": [{"access_key_id": "AKIDEGRESS0000000001", "secret_access_key": "s"}],
 "instance": {"id": "i-0abcdef0123456789", "az": "us-east-2a"}}
JSON
start_daemon imds '^ec2-emulator listening' /usr/bin/python3 "$CK_SOURCE_DIR/tests/fakes/ec2_emulator.py" \
  --port 0 --bind 10.99.0.80 --state "$WORK/state.json"
IMDS="http://10.99.0.80:$DAEMON_PORT"
expect_rc 1 in_host env -u AWS_EC2_METADATA_DISABLED AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS" \
  "$CK" --json mail egress mx.good.test:25 --smtp-timeout 2s --resolver "$R"
expect_eq "$(json_get 'd["cloud"]' <<<"$OUT")" aws
expect_contains "$(json_get 'd["advice"]' <<<"$OUT")" "Request to remove email sending limitations"
expect_contains "$(json_get 'd["advice"]' <<<"$OUT")" "us-east-2"
# AWS_EC2_METADATA_DISABLED=true is honoured even with the endpoint named: no cloud, no AWS advice.
expect_rc 1 in_host env AWS_EC2_METADATA_DISABLED=true AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS" \
  "$CK" --json mail egress mx.good.test:25 --smtp-timeout 2s --resolver "$R"
expect_eq "$(json_get 'd["cloud"]' <<<"$OUT")" None
expect_contains "$(json_get 'd["advice"]' <<<"$OUT")" "smarthost on 587"
# mail check's first group is the same probe, with the same advice on "EC2".
expect_rc 1 in_host env -u AWS_EC2_METADATA_DISABLED AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS" \
  "$CK" --json mail check good.test --egress-target mx.good.test:25 --smtp-timeout 2s --no-relay-test \
  --rbl bl.test --dkim-selector s1 --resolver "$R"
expect_eq "$(json_get 'd["findings"][0]["group"] + " " + d["findings"][0]["level"]' <<<"$OUT")" "egress FAIL"
expect_contains "$(json_get 'd["findings"][0]["message"]' <<<"$OUT")" "outbound port 25 is blocked from this host (mx.good.test dropped)"
expect_contains "$(json_get 'd["findings"][0]["fix"]' <<<"$OUT")" "Request to remove email sending limitations"
expect_eq "$(json_get 'd["egress"]["cloud"]' <<<"$OUT")" aws

# Could not check is never a pass: a name with no address.
expect_rc 1 ck --json mail egress nowhere.test:25 --resolver "$R"
expect_eq "$(json_get 'd["port25"]' <<<"$OUT")" unknown
expect_eq "$(json_get 'd["probes"][0]["result"]' <<<"$OUT")" "not run"
expect_contains "$ERR" "UNKNOWN"

# Bad input: exit 2 naming the value.
expect_rc 2 ck mail egress 'bad host!' --resolver "$R"
expect_contains "$ERR" "bad host!"

# Never MAIL FROM or DATA, to Postfix or to the proxy.
postfix_expect_no_data
expect_contains "$(postfix_disconnects)" "ehlo=1"
expect_not_contains "$(postfix_disconnects)" "mail="
expect_not_contains "$(cat "$WORK/proxy.log")" "MAIL"
expect_not_contains "$(cat "$WORK/proxy.log")" "DATA"
echo "PASS"
