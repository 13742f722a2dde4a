#!/usr/bin/env bash
# mail check end to end: nsd serves good and broken zones (SPF, DKIM, DMARC,
# PTR), rbldnsd a blocklist, unbound sits in front of both as the only
# resolver, Postfix runs as a closed server with STARTTLS (mx.good.test,
# 127.0.0.10) and as an open relay (mx.bad.test, 127.0.0.20), and a fixture
# relays through the percent hack only. No DATA ever reaches a server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"
. "$(dirname "$0")/lib_rbldnsd.sh"
. "$(dirname "$0")/lib_postfix.sh"
need_root
need postfix openssl nsd rbldnsd unbound /usr/bin/python3

Z="$WORK/zones"
dns_zone "$Z" good.test <<'ZONE'
@              MX  10 mx.good.test.
@              TXT "v=spf1 ip4:127.0.0.10 -all"
mx             A   127.0.0.10
_dmarc         TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.test"
s1._domainkey  TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsqw1/6ykYIwlE3/PA172/dV+HPGbZsNuoszBqSjGYsF5/h9WnD4S3rKpLiipgnXSA7tEY4LTtt/6KJbe95I99/LGIIXiuvyNYUXeVg9WwQlCsgCP0AH4ydDTx6QigwZPTFSGR6TJrMr27r1faJe/f9G+HK+v" "CWhnq4VmAKiYWgcDbciUxrOVSqyVTCD8M3NjzSUbPowtKrNnj+Rwyrw9fbYm+s1LBlz48fyxJw2UpFQ/iCmWUf7ByhQTsZHCNuS3aipmRFTkSfYp9y3QPSsLK3g4rj6eBraZc9lrkNvN9Yf5q2PQcLzDBXvge/CnTvIEZQIT8YKBUU3cstncrXJyVwIDAQAB"
ZONE
dns_zone "$Z" bad.test <<'ZONE'
@              MX  10 mx.bad.test.
mx             A   127.0.0.20
ZONE
dns_zone "$Z" cloud.test <<'ZONE'
host-20        A   127.0.0.20
ZONE
dns_zone "$Z" 0.0.127.in-addr.arpa <<'ZONE'
10             PTR mx.good.test.
20             PTR host-20.cloud.test.
30             PTR mx.good.test.
ZONE
AUTH=$(free_port)
dns_start "$Z" "$AUTH"

RBL="$WORK/rbl"
mkdir -p "$RBL"
cat >"$RBL/bl4" <<'ZONE'
:127.0.0.2:Listed by bl.test
127.0.0.20
127.0.0.100-127.0.0.199
ZONE
RBLPORT=$(free_port)
rbl_start "$RBL" "$RBLPORT" bl.test:ip4set:bl4
resolver_start "$(free_port)" "$AUTH" "good.test bad.test cloud.test 0.0.127.in-addr.arpa" "$RBLPORT" "bl.test"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.good.test" \
  -addext "subjectAltName=DNS:mx.good.test" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"
# One SMTP port for both Postfix instances (mail check takes one --smtp-port).
SMTP=$(free_port)
TRICK=$(free_port)
POSTFIX_ADDR=127.0.0.10 postfix_start good "$SMTP" closed "$WORK/cert.pem" "$WORK/key.pem"
GOOD_LOG=$POSTFIX_LOG
POSTFIX_ADDR=127.0.0.20 postfix_start bad "$SMTP" open
BAD_LOG=$POSTFIX_LOG
trick_server_start 127.0.0.30 "$TRICK"

# Outbound port 25 (the first group) is probed against the good Postfix: the
# test's world has no gmail.com.
BASE=(--resolver "$RESOLVER" --rbl bl.test --dkim-selector s1 --ca-file "$WORK/cert.pem")
COMMON=("${BASE[@]}" --egress-target "mx.good.test:$SMTP")

# --- the good domain passes everything
expect_rc 0 "$CK" mail check good.test "${COMMON[@]}" --smtp-port "$SMTP"
for t in "Rule 1" "Rule 2: SPF" "Rule 2: DKIM" "Rule 3" "Rule 4" "DMARC" "TLS" "Bulk-sender"; do expect_contains "$OUT" "$t"; done
expect_contains "$OUT" "not an open relay: all 19 relay forms refused"
expect_contains "$OUT" "PTR mx.good.test resolves back to 127.0.0.10"
expect_contains "$OUT" "0 failed"
expect_contains "$OUT" "Before the rules: outbound port 25 from this host"
expect_contains "$OUT" "outbound SMTP session on port 25 opened (mx.good.test greeted)"
expect_rc 0 "$CK" --json mail check good.test "${COMMON[@]}" --smtp-port "$SMTP"
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"]=="egress"]' <<<"$OUT")" "['PASS']"
expect_eq "$(json_get 'd["findings"][0]["group"]' <<<"$OUT")" "egress"
expect_eq "$(json_get 'd["egress"]["port25"]' <<<"$OUT")" "open"
expect_contains "$(json_get 'd["egress"]["probes"][0]["banner"]' <<<"$OUT")" "220 mx.good.test ESMTP"
expect_eq "$(json_get 'd["failed"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["hosts"][0]["smtp"]["tls"]["certificate_valid"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["hosts"][0]["spf"][0]["result"]' <<<"$OUT")" "pass"
expect_eq "$(json_get 'd["hosts"][0]["ptr"]["ok"]' <<<"$OUT")" "True"
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"]=="1 relay"]' <<<"$OUT")" "['PASS']"
# The dirty neighbourhood (127.0.0.20, .100-.199) is a warning, not a failure.
expect_rc 0 "$CK" --json mail check good.test "${COMMON[@]}" --smtp-port "$SMTP" --block-prefix 24 --no-relay-test
expect_eq "$(json_get '[f["message"] for f in d["findings"] if f["group"]=="4 RBL" and f["level"]=="WARN"][0]' <<<"$OUT")" \
  "neighbours listed: 101 on bl.test (of 256 addresses)"

# --- the broken domain fails each rule, with a fix for each
expect_rc 1 "$CK" --json mail check bad.test "${COMMON[@]}" --smtp-port "$SMTP"
expect_eq "$(json_get 'd["failed"]' <<<"$OUT")" "True"
FAILS="$(json_get 'sorted(set(f["group"] for f in d["findings"] if f["level"]=="FAIL"))' <<<"$OUT")"
expect_eq "$FAILS" "['1 relay', '2 DKIM', '2 SPF', '3 PTR', '4 RBL', 'DMARC', 'TLS', 'bulk']"
expect_eq "$(json_get 'all("fix" in f for f in d["findings"] if f["level"]=="FAIL")' <<<"$OUT")" "True"
expect_contains "$(json_get '[f["fix"] for f in d["findings"] if f["group"]=="3 PTR" and f["level"]=="FAIL"][0]' <<<"$OUT")" \
  "20.0.0.127.in-addr.arpa. PTR mx.bad.test."
expect_contains "$(json_get '[f["fix"] for f in d["findings"] if f["group"]=="DMARC"][0]' <<<"$OUT")" \
  '_dmarc.bad.test. TXT "v=DMARC1; p=none'
expect_contains "$(json_get '[f["fix"] for f in d["findings"] if f["group"]=="2 SPF" and f["level"]=="FAIL"][0]' <<<"$OUT")" \
  'bad.test. TXT "v=spf1 mx ip4:127.0.0.20 -all"'
expect_eq "$(json_get 'd["hosts"][0]["smtp"]["open_relay"]' <<<"$OUT")" "True"
expect_rc 1 "$CK" mail check bad.test "${COMMON[@]}" --smtp-port "$SMTP"
expect_contains "$OUT" "OPEN RELAY"
expect_contains "$ERR" "check(s) failed"

# --- a host that relays through one trick only: told apart from open and closed
expect_rc 1 "$CK" --json mail check good.test "${COMMON[@]}" --host mx.good.test --ip 127.0.0.30 --smtp-port "$TRICK"
expect_contains "$(json_get '[f["message"] for f in d["findings"] if f["group"]=="1 relay"][0]' <<<"$OUT")" \
  "2 of 19 forms relayed (percent hack via [ip], percent hack via server name)"

# --- --no-smtp makes no connection; --no-relay-test sends no MAIL
sleep 0.5
BEFORE=$(grep -c "connect from" "$GOOD_LOG")
expect_rc 0 "$CK" --json mail check good.test "${COMMON[@]}" --smtp-port "$SMTP" --no-smtp
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"] in ("1 relay","TLS")]' <<<"$OUT")" "['SKIP', 'SKIP']"
sleep 0.5
expect_eq "$(grep -c "connect from" "$GOOD_LOG")" "$BEFORE" "--no-smtp connected"
expect_eq "$(json_get 'd["egress"]' <<<"$OUT")" "None"
# A target that refuses: outbound port 25 fails, with the advice, and 587/465
# are then tried for it; --no-egress skips the group (SKIP, never PASS).
REFUSE=$(free_port)
expect_rc 1 "$CK" --json mail check good.test "${BASE[@]}" --smtp-port "$SMTP" --no-relay-test \
  --egress-target "127.0.0.10:$REFUSE" --egress-target 127.0.0.11
expect_eq "$(json_get '[(f["subject"], f["level"]) for f in d["findings"] if f["group"]=="egress"]' <<<"$OUT")" \
  "[('port 25', 'FAIL'), ('587/465', 'FAIL')]"
expect_contains "$(json_get 'd["findings"][0]["fix"]' <<<"$OUT")" "smarthost on 587"
expect_eq "$(json_get '[(p["port"], p["result"]) for p in d["egress"]["probes"]]' <<<"$OUT")" \
  "[($REFUSE, 'refused'), (25, 'refused'), (587, 'refused'), (465, 'refused')]"
expect_rc 0 "$CK" --json mail check good.test "${COMMON[@]}" --smtp-port "$SMTP" --no-relay-test --no-egress
expect_eq "$(json_get '[f["level"] for f in d["findings"] if f["group"]=="egress"]' <<<"$OUT")" "['SKIP']"
expect_rc 2 "$CK" mail check good.test "${COMMON[@]}" --egress-target 'bad target!'
expect_contains "$ERR" "bad target!"
expect_rc 0 "$CK" --json mail check good.test "${COMMON[@]}" --smtp-port "$SMTP" --no-relay-test
sleep 0.5
expect_not_contains "$(grep 'disconnect from' "$GOOD_LOG" | tail -1)" "mail="

# --- nothing ever sent DATA
POSTFIX_LOG=$GOOD_LOG postfix_expect_no_data
POSTFIX_LOG=$BAD_LOG postfix_expect_no_data
if grep -qiE '^(DATA|BDAT)' "$TRICK_LOG"; then fail "DATA reached the trick server"; fi

# --- mail ptr on its own
expect_rc 0 "$CK" mail ptr mx.good.test --resolver "$RESOLVER"
expect_contains "$OUT" "forward-confirmed reverse DNS is in order"
expect_rc 1 "$CK" --json mail ptr mx.bad.test --resolver "$RESOLVER"
expect_eq "$(json_get 'd["addresses"][0]["names"][0]["name"]' <<<"$OUT")" "host-20.cloud.test"
expect_eq "$(json_get 'd["addresses"][0]["fcrdns"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["addresses"][0]["matches_host"]' <<<"$OUT")" "False"
# 127.0.0.30's PTR says mx.good.test, which does not resolve back to it.
expect_rc 1 "$CK" --json mail ptr mx.good.test --ip 127.0.0.30 --resolver "$RESOLVER"
expect_eq "$(json_get 'd["addresses"][0]["names"][0]["resolves_back"]' <<<"$OUT")" "False"

# --- bad input
expect_rc 2 "$CK" mail check "bad domain" --resolver "$RESOLVER"
expect_rc 2 "$CK" mail check good.test --host mx.good.test --ip 999.1.1.1 --resolver "$RESOLVER"
expect_contains "$ERR" "999.1.1.1"
expect_rc 2 "$CK" mail check good.test --ip 127.0.0.10 --resolver "$RESOLVER"
