#!/usr/bin/env bash
# mail spf --batch end to end against NSD on loopback: one result per query
# line in input order (a file and stdin, text and JSON Lines), the same
# results as one `mail spf` per query, a bad line as an error result that
# does not stop the batch, and the usage errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"

PORT=$(free_port)
R=(--resolver "127.0.0.1:$PORT" --timeout 2s)
Z="$WORK/zones"

dns_zone "$Z" batch.test <<'ZONE'
@         TXT "v=spf1 ip4:192.0.2.0/25 mx include:_spf.batch.test -all"
@         MX  10 mx.batch.test.
mx        A   192.0.2.200
mx        TXT "v=spf1 a -all"
_spf      TXT "v=spf1 ip6:2001:db8:25::/48 -all"
soft      TXT "v=spf1 ~all"
redir     TXT "v=spf1 redirect=batch.test"
syntax    TXT "v=spf1 ip4:192.0.2.300 -all"
nospf     TXT "site-verification=1"
ZONE
dns_start "$Z" "$PORT"

# Distinct queries and what each must give.
cat >"$WORK/cases" <<'CASES'
192.0.2.10 alice@batch.test	pass
192.0.2.200 bob@batch.test mx.batch.test	pass
2001:db8:25::7 carol@batch.test	pass
198.51.100.7 dave@batch.test	fail
198.51.100.7 u@soft.batch.test	softfail
192.0.2.10 u@redir.batch.test	pass
192.0.2.10 u@syntax.batch.test	permerror
192.0.2.10 u@nospf.batch.test	none
192.0.2.10 nospf.batch.test	none
192.0.2.200 <> mx.batch.test	pass
198.51.100.7 <> mx.batch.test	fail
192.0.2.999 alice@batch.test	error
192.0.2.10	error
CASES

# 40 rounds of the cases, with comments and blank lines between: 520
# queries, enough for the 16 workers to finish out of order.
{
  echo "# a batch of queries"
  for ((i = 0; i < 40; i++)); do
    cut -f1 "$WORK/cases"
    echo
  done
} >"$WORK/batch"
want=$(for ((i = 0; i < 40; i++)); do cut -f2 "$WORK/cases"; done)

expect_rc 0 "$CK" mail spf "${R[@]}" --batch "$WORK/batch" --concurrency 16
expect_eq "$(wc -l <<<"$OUT")" 520 "one result line per query line"
expect_eq "$(cut -f1 <<<"$OUT")" "$want" "results in input order"
expect_contains "$ERR" "80 of 520 lines of the batch were not queries"
# The full line of a fail: result, query, deciding term, explanation.
expect_eq "$(sed -n 4p <<<"$OUT")" \
  "$(printf 'fail\t198.51.100.7\tdave@batch.test\t-\t-all\tbatch.test does not designate 198.51.100.7 as a permitted sender')"
expect_eq "$(sed -n 12p <<<"$OUT")" "$(printf "error\tline 13: '192.0.2.999' is not an IP address")"

# Each distinct query gives what one `mail spf` process gives.
while IFS=$'\t' read -r q w; do
  [ "$w" = error ] && continue
  read -r ip sender helo <<<"$q"
  args=(--ip "$ip")
  if [ "$sender" = "<>" ]; then
    args+=(--helo "$helo")
  else
    case $sender in *@*) args+=(--sender "$sender") ;; *) args+=(--domain "$sender") ;; esac
    [ -n "$helo" ] && args+=(--helo "$helo")
  fi
  single=$("$CK" --json mail spf "${R[@]}" --no-lint "${args[@]}" 2>/dev/null | json_get "d['result']") || true
  expect_eq "$single" "$w" "mail spf ${args[*]}"
done <"$WORK/cases"

# stdin and JSON Lines: one object per line, errors included.
expect_rc 0 "$CK" --json mail spf "${R[@]}" --batch - <"$WORK/batch"
expect_eq "$(wc -l <<<"$OUT")" 520 "one JSON object per line"
got=$(/usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["result"])' <<<"$OUT")
expect_eq "$got" "$want" "JSON results in input order"
first=$(head -1 <<<"$OUT")
expect_eq "$(json_get "d['line']" <<<"$first")" 2
expect_eq "$(json_get "d['mechanism']" <<<"$first")" "ip4:192.0.2.0/25"
bad=$(sed -n 12p <<<"$OUT")
expect_eq "$(json_get "d['error']" <<<"$bad")" "'192.0.2.999' is not an IP address"
expect_eq "$(json_get "d['input']" <<<"$bad")" "192.0.2.999 alice@batch.test"

# An empty batch is no output and exit 0.
expect_rc 0 "$CK" mail spf "${R[@]}" --batch - </dev/null
expect_eq "$OUT" ""

# Usage errors: exit 2, naming the bad value.
expect_rc 2 "$CK" mail spf "${R[@]}" --batch "$WORK/missing"
expect_contains "$ERR" "--batch '$WORK/missing': cannot open"
expect_rc 2 "$CK" mail spf "${R[@]}" --batch "$WORK/batch" --ip 192.0.2.1
expect_contains "$ERR" "no --ip, --sender, --domain or --helo with it"
expect_rc 2 "$CK" mail spf "${R[@]}" --batch "$WORK/batch" --concurrency 0
expect_rc 2 "$CK" mail spf "${R[@]}" --sender a@batch.test
expect_contains "$ERR" "give --ip ADDRESS"
