#!/usr/bin/env bash
# mail spf / mail dmarc end to end against a real authoritative server (NSD
# on loopback) serving good and broken SPF and DMARC records. The zones are
# under test. and 2.0.192.in-addr.arpa, names libunbound would answer from
# its built-in empty zones: with --resolver the named server must decide.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"

PORT=$(free_port)
R=(--resolver "127.0.0.1:$PORT")
Z="$WORK/zones"

dns_zone "$Z" mailauth.test <<'ZONE'
@         TXT "v=spf1 ip4:192.0.2.0/25 mx include:_spf.mailauth.test exp=explain.mailauth.test -all"
@         MX  10 mx.mailauth.test.
mx        A   192.0.2.200
_spf      TXT "v=spf1 ip6:2001:db8:25::/48 -all"
explain   TXT "%{i} is not one of %{d}'s mail servers"
_dmarc    TXT "v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:agg@mailauth.test; aspf=s"
two       TXT "v=spf1 ip4:192.0.2.1 -all"
two       TXT "v=spf1 +all"
plusall   TXT "v=spf1 +all"
syntax    TXT "v=spf1 ip4:192.0.2.300 -all"
ptr       TXT "v=spf1 ptr:mailauth.test -all"
noall     TXT "v=spf1 ip4:192.0.2.1"
broken    TXT "v=spf1 include:elsewhere.invalid -all"
toomany   TXT "v=spf1 a:a1.mailauth.test a:a2.mailauth.test a:a3.mailauth.test a:a4.mailauth.test a:a5.mailauth.test a:a6.mailauth.test a:a7.mailauth.test a:a8.mailauth.test a:a9.mailauth.test a:a10.mailauth.test a:a11.mailauth.test -all"
a1 A 198.51.100.1
a2 A 198.51.100.2
a3 A 198.51.100.3
a4 A 198.51.100.4
a5 A 198.51.100.5
a6 A 198.51.100.6
a7 A 198.51.100.7
a8 A 198.51.100.8
a9 A 198.51.100.9
a10 A 198.51.100.10
a11 A 198.51.100.11
voids     TXT "v=spf1 a:v1.mailauth.test a:v2.mailauth.test a:v3.mailauth.test -all"
split     TXT "v=spf1 ip4:203.0.113.0/24 " "-all"
ZONE

dns_zone "$Z" nodmarc.test <<'ZONE'
@         TXT "v=spf1 -all"
ZONE

dns_zone "$Z" baddmarc.test <<'ZONE'
_dmarc    TXT "v=DMARC1; p=bogus"
ZONE

dns_zone "$Z" 2.0.192.in-addr.arpa <<'ZONE'
200       PTR mx.mailauth.test.
ZONE

dns_start "$Z" "$PORT"

spf() { expect_rc "$1" "$CK" --json mail spf "${R[@]}" "${@:2}"; }
field() { json_get "d$1" <<<"$OUT"; }

# Pass through ip4, mx (A record of the MX host) and include (ip6).
spf 0 --ip 192.0.2.10 --sender alice@mailauth.test
expect_eq "$(field "['result']")" pass
expect_eq "$(field "['mechanism']")" "ip4:192.0.2.0/25"
expect_eq "$(field "['dns_lookups']")" 0
expect_eq "$(field "['lint']['dns_lookups']")" 2 "lint lookup count (mx, include)"

spf 0 --ip 192.0.2.200 --domain mailauth.test
expect_eq "$(field "['mechanism']")" mx
expect_eq "$(field "['dns_lookups']")" 1

spf 0 --ip 2001:db8:25::7 --sender bob@mailauth.test --helo mx.mailauth.test
expect_eq "$(field "['mechanism']")" include:_spf.mailauth.test
expect_eq "$(field "['dns_lookups']")" 2

# Fail with the domain's own explanation (exp=, macros expanded).
spf 1 --ip 198.51.100.7 --sender carol@mailauth.test
expect_eq "$(field "['result']")" fail
expect_eq "$(field "['mechanism']")" -all
expect_eq "$(field "['explanation']")" "198.51.100.7 is not one of mailauth.test's mail servers"
expect_contains "$ERR" "SPF fail"

# Character-strings of one TXT record are joined (RFC 7208 §3.3).
spf 0 --ip 203.0.113.9 --domain split.mailauth.test

# Broken records.
spf 1 --ip 192.0.2.1 --domain two.mailauth.test
expect_eq "$(field "['result']")" permerror
expect_contains "$(field "['lint']['findings'][0]['message']")" "2 SPF records"

spf 0 --ip 198.51.100.99 --domain plusall.mailauth.test
expect_contains "$OUT" "'+all' lets every host"

spf 1 --ip 192.0.2.1 --domain syntax.mailauth.test
expect_eq "$(field "['result']")" permerror
expect_contains "$(field "['problem']")" "ip4:192.0.2.300"

spf 1 --ip 192.0.2.1 --domain toomany.mailauth.test
expect_eq "$(field "['result']")" permerror
expect_contains "$(field "['problem']")" "more than 10"
expect_contains "$OUT" "11 DNS-querying terms"

spf 1 --ip 192.0.2.1 --domain voids.mailauth.test
expect_eq "$(field "['result']")" permerror
expect_contains "$(field "['problem']")" "void"

spf 1 --ip 192.0.2.9 --domain noall.mailauth.test
expect_eq "$(field "['result']")" neutral
expect_contains "$OUT" "no 'all' mechanism"

# ptr: the PTR of 192.0.2.200 is mx.mailauth.test, whose A record is 192.0.2.200.
spf 0 --ip 192.0.2.200 --domain ptr.mailauth.test
expect_eq "$(field "['mechanism']")" ptr:mailauth.test
expect_contains "$OUT" "ptr mechanism"
spf 1 --ip 192.0.2.201 --domain ptr.mailauth.test
expect_eq "$(field "['result']")" fail

# A name the server refuses to answer for: a DNS error, so temperror.
spf 1 --ip 192.0.2.1 --domain broken.mailauth.test
expect_eq "$(field "['result']")" temperror

# No record at all.
spf 1 --ip 192.0.2.1 --domain nx.mailauth.test
expect_eq "$(field "['result']")" none

# A resolver that does not answer: temperror, not a hang.
expect_rc 1 "$CK" --json mail spf --resolver "127.0.0.1:$(free_port)" --timeout 1s --ip 192.0.2.1 --domain mailauth.test
expect_eq "$(json_get "d['result']" <<<"$OUT")" temperror

# Text output.
expect_rc 0 "$CK" mail spf "${R[@]}" --ip 192.0.2.10 --domain mailauth.test
expect_contains "$OUT" "Result"
expect_contains "$OUT" "pass"
expect_contains "$OUT" "Lint of the SPF record of mailauth.test"

# Bad input: exit 2, one line naming the value.
expect_rc 2 "$CK" mail spf "${R[@]}" --ip 192.0.2.999 --domain mailauth.test
expect_contains "$ERR" "192.0.2.999"
expect_rc 2 "$CK" mail spf --resolver 127.0.0.1:99999 --ip 192.0.2.1 --domain mailauth.test
expect_contains "$ERR" "127.0.0.1:99999"
expect_rc 2 "$CK" mail spf "${R[@]}" --ip 192.0.2.1 --sender nobody
expect_contains "$ERR" "nobody"
expect_rc 2 "$CK" mail spf "${R[@]}" --ip 192.0.2.1 --sender a@b.test --domain b.test
expect_rc 2 "$CK" mail dmarc "${R[@]}" "not a domain"

# DMARC at the domain, and at the organizational domain for a subdomain.
expect_rc 0 "$CK" --json mail dmarc "${R[@]}" mailauth.test
expect_eq "$(field "['policy']")" reject
expect_eq "$(field "['pct']")" 50
expect_eq "$(field "['aspf']")" strict
expect_eq "$(field "['rua'][0]")" mailto:agg@mailauth.test
expect_contains "$OUT" "applies to 50%"

expect_rc 0 "$CK" --json mail dmarc "${R[@]}" news.mailauth.test
expect_eq "$(field "['record_domain']")" _dmarc.mailauth.test
expect_eq "$(field "['policy']")" quarantine

expect_rc 0 "$CK" mail dmarc "${R[@]}" mailauth.test
expect_contains "$OUT" "Policy (applies here)"

expect_rc 1 "$CK" --json mail dmarc "${R[@]}" nodmarc.test
expect_eq "$(field "['valid']")" False
expect_contains "$ERR" "no DMARC record"

expect_rc 1 "$CK" --json mail dmarc "${R[@]}" baddmarc.test
expect_contains "$(field "['findings'][0]['message']")" "invalid"
