#!/usr/bin/env bash
# "Could not check" is never "checked and clean", end to end: a DNS server
# that never answers, SMTP servers that dribble one byte a second, hang up
# before the relay test ran or say nothing; DMARC records receivers ignore;
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
t0=$(date +%s)
expect_rc 1 "$CK" --json mail check dead.test --resolver "127.0.0.1:$DEAD" --dns-timeout 1s --no-smtp
expect_eq "$(json_get 'd["complete"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'len(d["findings"])' <<<"$OUT")" "1"
expect_eq "$(json_get 'd["findings"][0]["level"]' <<<"$OUT")" "UNKNOWN"
expect_eq "$(json_get 'd["counts"]["pass"]' <<<"$OUT")" "0"
expect_not_contains "$OUT" "publish"
expect_rc 1 "$CK" mail check dead.test --resolver "127.0.0.1:$DEAD" --dns-timeout 1s --no-smtp
expect_contains "$OUT" "UNKNOWN"
expect_contains "$OUT" "1 could not be checked"
[ $(($(date +%s) - t0)) -le 10 ] || fail "mail check against a dead resolver took $(($(date +%s) - t0)) s"

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
t0=$(date +%s.%N)
expect_rc 1 "$CK" --json mail relay "mx.slow.test:$DRIB" --ip 127.0.0.1 --timeout 2s
el=$(echo "$(date +%s.%N) - $t0" | bc)
echo "dribbling server: mail relay gave up after ${el}s (timeout 2s)"
[ "$(echo "$el < 4" | bc)" = 1 ] || fail "a dribbling server held mail relay for ${el}s (timeout 2s)"
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
dns_start "$WORK/zones" 15340
R=(--resolver "127.0.0.1:$DNS_PORT")
for server in "$DRIB" "$HANG"; do
  t0=$(date +%s)
  expect_rc 1 "$CK" --json mail check cnc.test "${R[@]}" --smtp-port "$server" --smtp-timeout 2s --rbl bl.cnc.test --dkim-selector s1
  [ $(($(date +%s) - t0)) -le 12 ] || fail "mail check took $(($(date +%s) - t0)) s against a misbehaving server"
  expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "1 relay"]' <<<"$OUT")" "['UNKNOWN']"
  # The dribbler never finished its greeting: TLS is not judged (the relay
  # finding says why); the hang-up server answered EHLO without STARTTLS.
  expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] == "TLS"]' <<<"$OUT")" "$(
    [ "$server" = "$DRIB" ] && echo "[]" || echo "['FAIL']")"
  expect_not_contains "$(json_get '[f["message"] for f in d["findings"]]' <<<"$OUT")" "not an open relay"
done

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
