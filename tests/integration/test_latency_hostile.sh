#!/usr/bin/env bash
# Hostile peers cannot rewrite the operator's terminal (issue 16): a peer
# speaking the latency wire format announces a name and zone full of escape
# sequences and invalid UTF-8, and answers mesh control requests with an
# error holding escape sequences. Tables, logs and errors print them escaped
# (no raw ESC, no 8-bit CSI, nothing that is not UTF-8), --json stays valid
# JSON, and a mesh with an agent down prints its tables and exits 1.
# Names and zones that do not fit the wire format are refused at input.
. "$(dirname "$0")/lib.sh"
need /usr/bin/python3
HERE="$(cd "$(dirname "$0")" && pwd)"

# raw_clean TEXT: no ESC, no BEL, no C1 (as UTF-8 or as a raw byte), and
# every byte well-formed UTF-8.
raw_clean() {
  printf '%s' "$1" | /usr/bin/python3 -c '
import sys
b = sys.stdin.buffer.read()
bad = [c for c in (0x1b, 0x07, 0x9b) if c in b]
t = b.decode("utf-8")  # raises on invalid UTF-8
bad += [hex(ord(c)) for c in t if 0x80 <= ord(c) <= 0x9f or 0x202a <= ord(c) <= 0x202e]
sys.exit(1 if bad else 0)'
}

# json_clean TEXT: one valid JSON document, UTF-8, with controls as \u00XX
# escapes (JSON keeps C1 and bidi characters as text: its readers see them
# as strings, and nothing in it is an ESC sequence).
json_clean() {
  printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
b = sys.stdin.buffer.read()
json.loads(b.decode("utf-8"))
sys.exit(1 if 0x1b in b or 0x07 in b else 0)'
}

# --- names and zones that do not fit the wire format: exit 2 -------------
long=$(printf 'n%.0s' $(seq 1 120))
expect_rc 2 "$CK" latency serve --listen 127.0.0.1:0 --name "$long" --zone use1-az1
expect_contains "$ERR" "--name '$long'"
expect_contains "$ERR" "126"
expect_rc 2 "$CK" latency serve --listen 127.0.0.1:0 --name "$(printf 'a\033[2Jb')" --zone z
expect_contains "$ERR" "--name 'a\\x1b[2Jb'"
raw_clean "$ERR" || fail "usage error printed a raw control character: $ERR"
expect_rc 2 "$CK" latency serve --listen 127.0.0.1:0 --name n --zone "$(printf 'z\377')"
expect_contains "$ERR" "--zone 'z\\xff'"
printf 'name,address,zone\na,127.0.0.1:1,z\nb,127.0.0.1:2,%s\n' "$(printf 'z\302\233')" >"$WORK/bad.csv"
expect_rc 2 "$CK" latency mesh --peers "$WORK/bad.csv" --token-file /dev/null
expect_contains "$ERR" "bad.csv:3"
expect_contains "$ERR" "z\\u009b"

# --- a hostile peer: probe prints its name and zone escaped -----------------
echo t-hostile >"$WORK/token"
start_daemon evil '^listening on' /usr/bin/python3 "$HERE/hostile_latency_peer.py" 0 t-hostile
EVIL=127.0.0.1:$DAEMON_PORT
CLOUDKEEP_MESH_TOKEN=t-hostile start_daemon serve '^cloudkeep: serving' \
  "$CK" latency serve --listen "127.0.0.1:$(free_port)" --zone z1 --name good
GOOD=127.0.0.1:$DAEMON_PORT
wait_for "$CK" latency probe "$EVIL" --count 1 --warmup 0 --timeout 100ms
wait_for "$CK" latency probe "$GOOD" --count 1 --warmup 0 --timeout 100ms

expect_rc 0 "$CK" latency probe "$EVIL" --count 3 --interval 1ms
raw_clean "$OUT" || fail "probe table holds raw control characters: $OUT"
expect_contains "$OUT" 'evil\x1b[2J\x1b]0;pwned\x07\xff'
expect_contains "$OUT" 'z\u009b31m\u202eone'
# The columns line up: the SENT header ends where the row's SENT value ends.
expect_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c '
import sys
hdr, row = sys.stdin.read().splitlines()[:2]
print(hdr.index("SENT") + 3 == row.index(" 3 ") + 1)')" True "columns aligned after escaping"

expect_rc 0 "$CK" --json latency probe "$EVIL" --count 3 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["name"].startswith("evil\x1b[2J")' <<<"$OUT")" True "json keeps the name"
expect_eq "$(json_get 'd["targets"][0]["zone"]' <<<"$OUT" | cut -c1)" z "json zone"
json_clean "$OUT" || fail "--json output is not clean JSON: $OUT"

# --- a mesh with a hostile agent: exit 1, tables printed, text escaped -------
printf 'name,address,zone\ngood,%s,z1\nevil,%s,z2\n' "$GOOD" "$EVIL" >"$WORK/mesh.csv"
expect_rc 1 "$CK" latency mesh --peers "$WORK/mesh.csv" --token-file "$WORK/token" --count 3 --interval 1ms
raw_clean "$OUT" || fail "mesh text holds raw control characters: $OUT"
raw_clean "$ERR" || fail "mesh log holds raw control characters: $ERR"
expect_contains "$OUT" "Round trip by pair"
expect_contains "$OUT" 'no\x1b[31m red'
expect_contains "$ERR" "mesh incomplete: 1 of 2 agents did not answer; 1 of 2 pairs got no sample back"

# The good agent probed the hostile peer (whose hello holds invalid UTF-8)
# and still answered: its pair is measured.
expect_rc 1 "$CK" --json latency mesh --peers "$WORK/mesh.csv" --token-file "$WORK/token" --count 3 --interval 1ms
json_clean "$OUT" || fail "mesh --json is not clean JSON: $OUT"
expect_eq "$(json_get 'd["complete"], d["agents_down"], d["pairs_unmeasured"]' <<<"$OUT")" "(False, 1, 1)" "mesh gaps"
expect_eq "$(json_get '[p["received"] for p in d["pairs"] if p["from"] == "good"]' <<<"$OUT")" "[3]" \
  "good agent measured the hostile peer"
expect_eq "$(json_get '[p["agent_ok"] for p in d["peers"]]' <<<"$OUT")" "[True, False]" "agent_ok"
expect_contains "$(json_get '[p.get("error", "") for p in d["peers"]][1]' <<<"$OUT")" $'\x1b[31m' "json keeps the error as sent"
