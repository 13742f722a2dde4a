#!/usr/bin/env bash
# "Could not check" is never "checked and clean", end to end: a DNS server
# that never answers, SMTP servers that dribble one byte a second, hang up
# before the relay test ran, say nothing, or answer every reply correctly
# but slowly until --deadline passes; DMARC records receivers ignore;
# DKIM names that cannot be published. Every such audit exits 1 (never 0),
# says UNKNOWN and how much was checked, and reports one root cause once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"
need /usr/bin/python3
HERE="$(dirname "$0")"

# A UDP and TCP port where a "DNS server" swallows every query.
start_daemon blackhole '^ready' /usr/bin/python3 -c '
import socket, threading, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
port = u.getsockname()[1]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port)); t.listen(64)
print("ready", port, flush=True)
def swallow_tcp():
    conns = []
    while True:
        c, _ = t.accept(); conns.append(c)
threading.Thread(target=swallow_tcp, daemon=True).start()
while True: u.recvfrom(4096)
'
DEAD=$(awk '/^ready/{print $2}' "$WORK/blackhole.out")
RD=(--resolver "127.0.0.1:$DEAD" --timeout 1s)

# --- mail check with a resolver that does not answer: one finding, exit 1.
# (`timeout 120` only guards against a hang: no speed is asserted.)
expect_rc 1 timeout 120 "$CK" --json mail check dead.test --resolver "127.0.0.1:$DEAD" --dns-timeout 1s --no-smtp
expect_eq "$(json_get 'd["complete"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'len(d["findings"])' <<<"$OUT")" "1"
expect_eq "$(json_get 'd["findings"][0]["level"]' <<<"$OUT")" "UNKNOWN"
expect_eq "$(json_get 'd["counts"]["pass"]' <<<"$OUT")" "0"
expect_not_contains "$OUT" "publish"
expect_rc 1 "$CK" mail check dead.test --resolver "127.0.0.1:$DEAD" --dns-timeout 1s --no-smtp
expect_contains "$OUT" "UNKNOWN"
expect_contains "$OUT" "1 could not be checked"

# --- mail rbl / ptr / spf / dmarc / dkim check with the same resolver.
expect_rc 1 "$CK" --json mail rbl 192.0.2.1 --rbl bl1.test --rbl bl2.test "${RD[@]}"
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["answered_zones"]' <<<"$OUT")" "0"
expect_rc 1 "$CK" mail rbl 192.0.2.1 --rbl bl1.test --rbl bl2.test "${RD[@]}"
expect_contains "$OUT" "0 of 2 blocklists answered"
expect_not_contains "$OUT" "not listed"
expect_rc 1 "$CK" --json mail ptr mx.dead.test "${RD[@]}"
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_rc 1 "$CK" mail ptr mx.dead.test --ip 192.0.2.1 "${RD[@]}"
expect_contains "$OUT" "UNKNOWN"
expect_not_contains "$OUT" "in order"
expect_rc 1 "$CK" --json mail spf --ip 192.0.2.1 --domain dead.test "${RD[@]}"
expect_eq "$(json_get 'd["result"]' <<<"$OUT")" "temperror"
expect_eq "$(json_get '[f["severity"] for f in d["lint"]["findings"]]' <<<"$OUT")" "['unknown']"
expect_not_contains "$OUT" "publishes no SPF record"
expect_rc 1 "$CK" --json mail dmarc dead.test "${RD[@]}"
expect_contains "$(json_get 'd["findings"][0]["severity"]' <<<"$OUT")" "unknown"
expect_rc 1 "$CK" --json mail dkim check dead.test "${RD[@]}"
expect_eq "$(json_get 'd["result"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["selectors_checked"]' <<<"$OUT")" "0"
expect_eq "$(json_get 'len(d["findings"])' <<<"$OUT")" "1"
expect_rc 1 "$CK" mail dkim check dead.test --selector s1 "${RD[@]}"
expect_contains "$OUT" "unchecked"
expect_not_contains "$OUT" "missing"

# --- SMTP: a greeting that dribbles one byte a second cannot hold a reply
# (and the relay test) beyond --timeout.
start_daemon dribble '^ready' /usr/bin/python3 "$HERE/smtp_misbehave.py" dribble 0
DRIB=$(awk '/^ready/{print $2}' "$WORK/dribble.out")
# The dribbler never ends its greeting: without the reply timeout this would
# hang until `timeout 120` (a hang guard, not a speed assertion) kills it.
t0=$(date +%s.%N)
expect_rc 1 timeout 120 "$CK" --json mail relay "mx.slow.test:$DRIB" --ip 127.0.0.1 --timeout 2s
echo "dribbling server: mail relay gave up after $(echo "$(date +%s.%N) - $t0" | bc)s (timeout 2s)"
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["tested"]' <<<"$OUT")" "0"
expect_eq "$(json_get 'd["forms"]' <<<"$OUT")" "19"
expect_rc 1 "$CK" mail relay "mx.slow.test:$DRIB" --ip 127.0.0.1 --timeout 1s
expect_contains "$OUT" "0 of 19 relay forms tested"
expect_not_contains "$OUT" "not an open relay"

# --- a server that hangs up at MAIL: the relay test never ran.
start_daemon hangup '^ready' /usr/bin/python3 "$HERE/smtp_misbehave.py" hangup 0
HANG=$(awk '/^ready/{print $2}' "$WORK/hangup.out")
expect_rc 1 "$CK" --json mail relay "mx.hangup.test:$HANG" --ip 127.0.0.1 --timeout 2s --no-starttls
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["open_relay"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["tested"]' <<<"$OUT")" "0"

# --- --deadline: a server that answers every reply correctly, each 0.7 s
# late (inside --timeout 1s), cannot stretch the probe beyond the deadline.
# What was not tested is untested, never "refused".
start_daemon slow '^ready' /usr/bin/python3 "$HERE/smtp_misbehave.py" slow 0
SLOW=$(awk '/^ready/{print $2}' "$WORK/slow.out")
expect_rc 1 "$CK" --json mail relay "mx.slow.test:$SLOW" --ip 127.0.0.1 --timeout 1s --deadline 3s
# verdict, open relay, complete, deadline reached, fewer than 19 of 19 forms tested
RELAY_STATE='(d["verdict"], d["open_relay"], d["complete"], d["deadline_reached"], d["tested"] < d["forms"] == 19)'
expect_eq "$(json_get "$RELAY_STATE" <<<"$OUT")" "('unknown', False, False, True, True)"
expect_eq "$(json_get 'd["error"]' <<<"$OUT")" "the deadline of 3s was reached"
expect_eq "$(json_get 'sum(1 for a in d["attempts"] if not a["tested"]) == 19 - d["tested"]' <<<"$OUT")" "True"
expect_eq "$(grep -c 'deadline of 3s was reached' <<<"$ERR")" "1"
expect_rc 1 "$CK" mail relay "mx.slow.test:$SLOW" --ip 127.0.0.1 --timeout 1s --deadline 3s
expect_contains "$OUT" "UNKNOWN: "
expect_contains "$OUT" " of 19 relay forms tested"
expect_contains "$OUT" "the deadline of 3s was reached"
expect_contains "$OUT" "untested"
expect_not_contains "$OUT" "not an open relay"
expect_contains "$ERR" "the deadline of 3s was reached"
# An open relay found before the deadline is still an open relay (exit 1),
# reported as found on part of the battery.
start_daemon slowopen '^ready' /usr/bin/python3 "$HERE/smtp_misbehave.py" slow-open 0
SLOWOPEN=$(awk '/^ready/{print $2}' "$WORK/slowopen.out")
expect_rc 1 "$CK" --json mail relay "mx.slow.test:$SLOWOPEN" --ip 127.0.0.1 --timeout 1s --deadline 5s
expect_eq "$(json_get "$RELAY_STATE" <<<"$OUT")" "('open relay', True, False, True, True)"
expect_contains "$ERR" "is an open relay"
expect_contains "$ERR" "the deadline of 5s was reached"
# Bad deadlines are usage errors naming the flag and the value.
for bad in 0 0s -1s soon 5parsecs; do
  expect_rc 2 "$CK" mail relay "mx.slow.test:$SLOW" --ip 127.0.0.1 "--deadline=$bad"
  expect_contains "$ERR" "--deadline '$bad'"
  expect_eq "$(wc -l <<<"$ERR")" "1"
  expect_rc 2 "$CK" mail check cnc.test --no-smtp "--deadline=$bad"
  expect_contains "$ERR" "--deadline '$bad'"
done

# --- mail check agrees with mail relay on the same servers (real DNS for the names).
mkdir -p "$WORK/zones"
dns_zone "$WORK/zones" cnc.test <<'ZONE'
@       MX  10 mx.cnc.test.
@       TXT "v=spf1 ip4:127.0.0.1 -all"
mx      A   127.0.0.1
_dmarc  TXT "v=DMARC1; rua=mailto:d@cnc.test; p=reject"
dup     TXT "v=spf1 -all"
_dmarc.dup TXT "v=DMARC1; p=reject; p=none"
rev     TXT "v=spf1 -all"
_dmarc.rev TXT "p=reject; v=DMARC1"
ZONE
dns_zone "$WORK/zones" 127.in-addr.arpa <<'ZONE'
1.0.0   PTR mx.cnc.test.
ZONE
dns_start "$WORK/zones" "$(free_port)"
R=(--resolver "127.0.0.1:$DNS_PORT")
# (--no-egress: outbound port 25 is checked in test_mail_egress and test_mail_audit_check.)
for server in "$DRIB" "$HANG"; do
  expect_rc 1 timeout 120 "$CK" --json mail check cnc.test "${R[@]}" --no-egress --smtp-port "$server" --smtp-timeout 2s --rbl bl.cnc.test --dkim-selector s1
  expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "1 relay"]' <<<"$OUT")" "['UNKNOWN']"
  # The dribbler never finished its greeting: TLS is not judged (the relay
  # finding says why); the hang-up server answered EHLO without STARTTLS.
  expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "TLS"]' <<<"$OUT")" "$(
    [ "$server" = "$DRIB" ] && echo "[]" || echo "['FAIL']")"
  expect_not_contains "$(json_get '[f["message"] for f in d["findings"]]' <<<"$OUT")" "not an open relay"
done

# --- mail check --deadline: the slow server holds the relay probe until the
# deadline; the probe stops, the checks not yet run are named in one UNKNOWN
# finding, nothing is passed that was not checked, exit 1.
expect_rc 1 "$CK" --json mail check cnc.test "${R[@]}" --no-egress --smtp-port "$SLOW" --smtp-timeout 1s --deadline 3s --rbl bl.cnc.test --dkim-selector s1
expect_eq "$(json_get 'd["complete"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["deadline_reached"]' <<<"$OUT")" "True"
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "1 relay"]' <<<"$OUT")" "['UNKNOWN']"
expect_contains "$(json_get '[f["message"] for f in d["findings"] if f["group"] == "1 relay"][0]' <<<"$OUT")" " of 19 relay forms tested, none relayed (the deadline of 3s was reached)"
expect_eq "$(json_get 'd["hosts"][0]["smtp"]["tested"] < 19' <<<"$OUT")" "True"
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "deadline"]' <<<"$OUT")" "['UNKNOWN']"
expect_contains "$(json_get '[f["message"] for f in d["findings"] if f["group"] == "deadline"][0]' <<<"$OUT")" "the deadline of 3s was reached; not checked: "
expect_eq "$(json_get '"DKIM of cnc.test" in d["not_checked"] and "the bulk-sender requirements" in d["not_checked"]' <<<"$OUT")" "True"
# Never judged: no DKIM, DMARC or bulk-sender finding at all, no TLS pass.
expect_eq "$(json_get '[f["group"] for f in d["findings"] if f["group"] in ("2 DKIM", "DMARC", "bulk")]' <<<"$OUT")" "[]"
expect_not_contains "$(json_get '[f["message"] for f in d["findings"]]' <<<"$OUT")" "not an open relay"
expect_eq "$(grep -c 'the deadline of 3s was reached' <<<"$ERR")" "1"
expect_rc 1 "$CK" mail check cnc.test "${R[@]}" --no-egress --smtp-port "$SLOW" --smtp-timeout 1s --deadline 3s --rbl bl.cnc.test --dkim-selector s1
expect_contains "$OUT" "Deadline"
expect_contains "$OUT" "could not check everything: the deadline of 3s was reached"
# A relay open before the deadline still fails the audit.
expect_rc 1 "$CK" --json mail check cnc.test "${R[@]}" --no-egress --smtp-port "$SLOWOPEN" --smtp-timeout 1s --deadline 5s --rbl bl.cnc.test --dkim-selector s1
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "1 relay"]' <<<"$OUT")" "['FAIL']"
expect_eq "$(json_get 'd["deadline_reached"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["complete"]' <<<"$OUT")" "False"
# DNS waits are clamped too: a resolver that never answers, a 10 s query
# timeout and a 2 s deadline: the deadline, not the query timeout, ends it.
expect_rc 1 "$CK" --json mail check dead.test --resolver "127.0.0.1:$DEAD" --dns-timeout 10s --deadline 2s --no-smtp
expect_eq "$(json_get 'd["deadline_reached"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["not_checked"]' <<<"$OUT")" "['the whole audit']"
expect_eq "$(json_get '[f["group"] + " " + f["level"] for f in d["findings"]]' <<<"$OUT")" "['deadline UNKNOWN']"
expect_eq "$(json_get 'd["counts"]["pass"]' <<<"$OUT")" "0"

# --- DMARC records receivers ignore are reported, never skipped.
expect_rc 1 "$CK" mail dmarc cnc.test "${R[@]}"
expect_contains "$OUT" "p= must be the second tag"
expect_rc 1 "$CK" mail dmarc dup.cnc.test "${R[@]}"
expect_contains "$OUT" "more than once"
expect_rc 1 "$CK" --json mail dmarc rev.cnc.test "${R[@]}"
expect_contains "$OUT" "ignored by receivers"

# --- DKIM names that cannot be published are usage errors naming the value.
expect_rc 2 "$CK" mail dkim keygen --selector "bad selector" --domain example.com --out "$WORK/k.pem"
expect_contains "$ERR" "'bad selector'"
[ ! -e "$WORK/k.pem" ] || fail "keygen wrote a key for an unusable selector"
expect_rc 2 "$CK" mail dkim keygen --selector "a..b" --domain example.com --out "$WORK/k.pem"
expect_contains "$ERR" "'a..b'"
expect_rc 2 "$CK" mail dkim keygen --selector s1 --domain "exa_mple..com" --out "$WORK/k.pem"
expect_contains "$ERR" "'exa_mple..com'"
expect_rc 0 "$CK" mail dkim keygen --selector s1 --domain example.com --out "$WORK/k.pem"
printf 'From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n' >"$WORK/m.eml"
expect_rc 2 "$CK" mail dkim sign --key "$WORK/k.pem" --domain example.com --selector=-s1 "$WORK/m.eml"
expect_contains "$ERR" "'-s1'"
expect_rc 2 "$CK" mail dkim check example.com --selector "$(printf 'x%.0s' {1..64})" "${R[@]}"
expect_rc 2 "$CK" mail check cnc.test --dkim-selector "s 1" "${R[@]}" --no-smtp
expect_contains "$ERR" "'s 1'"
