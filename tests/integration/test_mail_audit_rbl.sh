#!/usr/bin/env bash
# mail rbl against rbldnsd blocklists behind a local unbound: a listed
# address, a dirty /24 around a clean address, an IPv6 listing, a list that
# refuses with 127.255.255.254, a dead list; bad input.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rbldnsd.sh"
need rbldnsd unbound /usr/bin/python3
/usr/bin/python3 -c 'import dnslib' 2>/dev/null || skip_or_fail "python3-dnslib"

RBL="$WORK/rbl"
mkdir -p "$RBL"
# bl.test: 127.0.0.20 listed; in 127.0.1.0/24 everybody but .10 is listed.
cat >"$RBL/bl4" <<'Z'
:127.0.0.2:Listed by bl.test, see https://bl.test/lookup?$
127.0.0.20
127.0.1.0-127.0.1.9
127.0.1.11-127.0.1.255
Z
cat >"$RBL/bl6" <<'Z'
:127.0.0.2:IPv6 listing by bl.test
2001:db8::25
Z
# codes.test answers 127.0.0.4 for 127.0.0.20.
cat >"$RBL/codes" <<'Z'
:127.0.0.4:exploited host
127.0.0.20
Z
# refuse.test answers like Spamhaus does for queries through public resolvers.
cat >"$RBL/refuse" <<'Z'
:127.255.255.254:public resolver refused
127.0.0.0/8
Z
RBLPORT=$(free_port)
rbl_start "$RBL" "$RBLPORT" bl.test:ip4set:bl4 bl.test:ip6trie:bl6 codes.test:ip4set:codes refuse.test:ip4set:refuse
# No authoritative zones: its port is never asked.
resolver_start "$(free_port)" "$(free_port)" "" "$RBLPORT" "bl.test codes.test refuse.test"

# A listed address: exit 1, the code, the list's TXT.
expect_rc 1 "$CK" mail rbl 127.0.0.20 --rbl bl.test --rbl codes.test --resolver "$RESOLVER"
expect_contains "$OUT" "LISTED"
expect_contains "$ERR" "127.0.0.20 is listed on 2 blocklist(s)"
expect_rc 1 "$CK" --json mail rbl 127.0.0.20 --rbl bl.test --rbl codes.test --resolver "$RESOLVER"
expect_eq "$(json_get 'd["listed"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["zones"][0]["codes"][0]["code"]' <<<"$OUT")" "127.0.0.2"
expect_eq "$(json_get 'd["zones"][0]["txt"]' <<<"$OUT")" "Listed by bl.test, see https://bl.test/lookup?127.0.0.20"
expect_eq "$(json_get 'd["zones"][1]["codes"][0]["meaning"]' <<<"$OUT")" "listed (code 127.0.0.4)"

# A clean address in a dirty /24: exit 0, 255 listed neighbours.
expect_rc 0 "$CK" --json mail rbl 127.0.1.10 --rbl bl.test --block-prefix 24 --resolver "$RESOLVER"
expect_eq "$(json_get 'd["listed"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["block"]' <<<"$OUT")" "127.0.1.0/24"
expect_eq "$(json_get 'd["zones"][0]["block_listed"]' <<<"$OUT")" "255"
expect_eq "$(json_get 'd["zones"][0]["block_errors"]' <<<"$OUT")" "0"
expect_eq "$(json_get '"127.0.1.10" in d["zones"][0]["block_listed_addresses"]' <<<"$OUT")" "False"
expect_rc 0 "$CK" mail rbl 127.0.1.10 --rbl bl.test --block-prefix 24 --resolver "$RESOLVER"
expect_contains "$OUT" "255/256"
expect_contains "$OUT" "neighbours in 127.0.1.0/24 are listed"
# The /24 around the listed address has one listing: the address itself.
expect_rc 1 "$CK" --json mail rbl 127.0.0.20 --rbl bl.test --block-prefix 24 --resolver "$RESOLVER"
expect_eq "$(json_get 'd["zones"][0]["block_listed"]' <<<"$OUT")" "1"

# IPv6: the nibble name.
expect_rc 1 "$CK" --json mail rbl 2001:db8::25 --rbl bl.test --resolver "$RESOLVER"
expect_eq "$(json_get 'd["zones"][0]["query"]' <<<"$OUT")" \
  "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"
expect_eq "$(json_get 'd["zones"][0]["txt"]' <<<"$OUT")" "IPv6 listing by bl.test"
expect_rc 0 "$CK" mail rbl 2001:db8::26 --rbl bl.test --resolver "$RESOLVER"

# A refusing list is unusable, never a listing, and never "not listed":
# the address could not be checked there (exit 1, "1 of 2 answered").
expect_rc 1 "$CK" --json mail rbl 127.0.0.30 --rbl refuse.test --rbl bl.test --resolver "$RESOLVER"
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["answered_zones"]' <<<"$OUT")" "1"
expect_eq "$(json_get 'd["zones"][0]["unusable"]' <<<"$OUT")" "True"
expect_eq "$(json_get 'd["zones"][0]["listed"]' <<<"$OUT")" "False"
expect_contains "$(json_get 'd["zones"][0]["codes"][0]["meaning"]' <<<"$OUT")" "public"
expect_eq "$(json_get 'd["unusable_zones"]' <<<"$OUT")" "1"
expect_rc 1 "$CK" mail rbl 127.0.0.30 --rbl refuse.test --resolver "$RESOLVER"
expect_contains "$OUT" "UNUSABLE"
expect_contains "$OUT" "0 of 1 blocklists answered"

# A zone nobody serves (unbound refuses it): could not check, not a listing.
expect_rc 1 "$CK" --json mail rbl 127.0.0.30 --rbl dead.test --resolver "$RESOLVER" --timeout 2s
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "unknown"
expect_eq "$(json_get 'd["zones"][0]["listed"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["zones"][0]["status"]' <<<"$OUT")" "servfail"

# Bad input names the value.
expect_rc 2 "$CK" mail rbl 300.1.2.3 --rbl bl.test --resolver "$RESOLVER"
expect_contains "$ERR" "300.1.2.3"
expect_rc 2 "$CK" mail rbl 127.0.0.1 --rbl "bad zone" --resolver "$RESOLVER"
expect_contains "$ERR" "bad zone"
expect_rc 2 "$CK" mail rbl 127.0.0.1 --block-prefix 8 --rbl bl.test --resolver "$RESOLVER"
expect_contains "$ERR" "8"
