#!/usr/bin/env bash
# mail relay against real Postfix (closed, with STARTTLS; open relay) and a
# fixture that relays through one trick only; proves no DATA was ever sent,
# from Postfix's own log, the fixture's log and a tshark capture.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_postfix.sh"
need_root
need postfix openssl tshark /usr/bin/python3

# A certificate for mx.good.test, and a CA file that trusts it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.good.test" \
  -addext "subjectAltName=DNS:mx.good.test" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"

# --- closed server, STARTTLS offered
CLOSED=$(free_port)
postfix_start closed "$CLOSED" closed "$WORK/cert.pem" "$WORK/key.pem"
CLOSED_LOG=$POSTFIX_LOG
expect_rc 0 "$CK" mail relay "mx.good.test:$CLOSED" --ip 127.0.0.1 --ca-file "$WORK/cert.pem"
expect_contains "$OUT" "not an open relay: all 19 relay forms refused"
expect_contains "$OUT" "certificate valid for mx.good.test"
expect_rc 0 "$CK" --json mail relay "mx.good.test:$CLOSED" --ip 127.0.0.1 --ca-file "$WORK/cert.pem"
expect_eq "$(json_get 'd["open_relay"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["tested"]' <<<"$OUT")" "19"
expect_eq "$(json_get 'd["tls"]["established"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["tls"]["certificate_valid"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["greeting_name"]' <<<"$OUT")" "mx.good.test"
expect_eq "$(json_get 'sum(1 for a in d["attempts"] if a["mail_code"] > 0)' <<<"$OUT")" "19"
expect_eq "$(json_get '"DATA" in " ".join(d["commands_sent"]).upper()' <<<"$OUT")" "False"
# Without the CA the self-signed certificate is reported, not trusted.
expect_rc 0 "$CK" --json mail relay "mx.good.test:$CLOSED" --ip 127.0.0.1
expect_eq "$(json_get 'd["tls"]["certificate_valid"]' <<<"$OUT")" "False"
# A name the certificate does not carry is invalid too.
expect_rc 0 "$CK" --json mail relay "other.good.test:$CLOSED" --ip 127.0.0.1 --ca-file "$WORK/cert.pem"
expect_eq "$(json_get 'd["tls"]["certificate_valid"]' <<<"$OUT")" "False"
sleep 0.5
POSTFIX_LOG=$CLOSED_LOG postfix_expect_no_data
expect_contains "$(postfix_disconnects)" "starttls=1"
expect_contains "$(postfix_disconnects)" "rset="

# --- open relay (mynetworks = 0.0.0.0/0), plain text, captured by tshark
OPEN=$(free_port)
postfix_start open "$OPEN" open
tshark -i lo -f "tcp port $OPEN" -w "$WORK/open.pcap" >"$WORK/tshark.out" 2>&1 &
TSHARK=$!
defer "kill $TSHARK 2>/dev/null; wait $TSHARK 2>/dev/null"
wait_for grep -q "Capturing on" "$WORK/tshark.out"
expect_rc 1 "$CK" mail relay "127.0.0.1:$OPEN"
expect_contains "$OUT" "OPEN RELAY"
expect_contains "$ERR" "is an open relay"
expect_rc 1 "$CK" --json mail relay "127.0.0.1:$OPEN" --no-starttls
expect_eq "$(json_get 'd["open_relay"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["tls"]["offered"]' <<<"$OUT")" "False"
# Postfix accepts the plain external-to-external pair when it trusts everybody.
expect_eq "$(json_get '[a["accepted"] for a in d["attempts"] if a["name"]=="external to external"][0]' <<<"$OUT")" "True"
# dumpcap writes each packet as it comes; on a busy machine it may lag, so
# stop it only once both sessions' QUITs are in the file.
smtp_cmds() { tshark -r "$WORK/open.pcap" -d "tcp.port==$OPEN,smtp" -Y smtp.req.command -T fields -e smtp.req.command 2>/dev/null; }
both_quits_captured() { [ "$(smtp_cmds | grep -c '^QUIT')" -ge 2 ]; }
wait_for both_quits_captured
kill -INT $TSHARK
wait $TSHARK 2>/dev/null || true
CMDS="$(smtp_cmds | sort | uniq -c)"
echo "tshark saw: $(echo $CMDS)"
expect_contains "$CMDS" "RCPT"
expect_contains "$CMDS" "RSET"
expect_contains "$CMDS" "QUIT"
expect_not_contains "$CMDS" "DATA" "tshark saw a DATA command"
expect_not_contains "$CMDS" "BDAT" "tshark saw a BDAT command"
postfix_expect_no_data

# --- relays through the percent hack only
TRICK=$(free_port)
trick_server_start 127.0.0.30 "$TRICK"
expect_rc 1 "$CK" --json mail relay "trick.good.test:$TRICK" --ip 127.0.0.30
expect_eq "$(json_get 'd["accepted"]' <<<"$OUT")" "2"
expect_eq "$(json_get 'sorted(a["name"] for a in d["attempts"] if a["accepted"])' <<<"$OUT")" \
  "['percent hack via [ip]', 'percent hack via server name']"
expect_eq "$(json_get '[a["rcpt_to"] for a in d["attempts"] if a["accepted"]][0]' <<<"$OUT")" \
  "relaytest%example.net@[127.0.0.30]"
LOGGED="$(cat "$TRICK_LOG")"
expect_contains "$LOGGED" "RSET"
expect_contains "$LOGGED" "QUIT"
if grep -qiE '^(DATA|BDAT)' "$TRICK_LOG"; then fail "DATA reached the trick server"; fi
# Every MAIL is followed by RSET before the next MAIL.
expect_eq "$(grep -c '^MAIL' "$TRICK_LOG")" "$(grep -c '^RSET' "$TRICK_LOG")"

# --- STARTTLS offered but broken: the relay test goes on in plain text
BROKEN=$(free_port)
trick_server_start 127.0.0.31 "$BROKEN" broken-tls
expect_rc 1 "$CK" --json mail relay "trick.good.test:$BROKEN" --ip 127.0.0.31
expect_eq "$(json_get 'd["tls"]["offered"] and not d["tls"]["established"]' <<<"$OUT")" True "tls offered, failed"
expect_eq "$(json_get 'd["plaintext_fallback"]' <<<"$OUT")" True "fell back to plain text"
expect_eq "$(json_get 'd["accepted"]' <<<"$OUT")" 2 "the percent hack found in plain text"
expect_contains "$ERR" "testing relaying in plain text"
expect_eq "$(grep -c '^STARTTLS' "$TRICK_LOG")" 1 "STARTTLS tried once"
if grep -qiE '^(DATA|BDAT)' "$TRICK_LOG"; then fail "DATA reached the trick server"; fi
expect_rc 1 "$CK" mail relay "trick.good.test:$BROKEN" --ip 127.0.0.31
expect_contains "$OUT" "relaying tested in plain text"
expect_contains "$OUT" "OPEN RELAY"

# --- bad input and unreachable servers
DEAD=$(free_port)  # reserved, nothing listens there
expect_rc 2 "$CK" mail relay 127.0.0.1:70000
expect_contains "$ERR" "70000"
expect_rc 2 "$CK" mail relay mx.good.test --ip not-an-ip
expect_rc 2 "$CK" mail relay "127.0.0.1:$DEAD" --timeout 2fortnights
expect_contains "$ERR" "2fortnights"
expect_rc 2 "$CK" mail relay "127.0.0.1:$DEAD" --timeout 0s
expect_contains "$ERR" "--timeout '0s'"
expect_rc 2 "$CK" mail check good.test --smtp-timeout -1s
expect_contains "$ERR" "--smtp-timeout"
expect_rc 2 "$CK" mail check good.test --dns-timeout 11m
expect_contains "$ERR" "--dns-timeout '11m'"
expect_rc 2 "$CK" mail ptr mx.good.test --timeout soon
expect_contains "$ERR" "soon"
expect_rc 1 "$CK" mail relay "127.0.0.1:$DEAD" --timeout 2s
expect_contains "$ERR" "connect"
