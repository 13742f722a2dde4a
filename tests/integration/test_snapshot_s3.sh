#!/usr/bin/env bash
# The snapshot store in S3 (--store s3://BUCKET/PREFIX) against a real
# radosgw (lib_radosgw.sh): round trip byte-exact, incremental growth counted
# in objects and bytes, show/list/verify/delete/prune, a kill -9 during create
# (no half snapshot listed, verify passes, the next run cleans up), and bad
# input: a bucket that does not exist, wrong keys, a wrong endpoint, a bad URL
# — each a one-line error naming the value, with nothing lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_radosgw.sh"
need /usr/bin/python3
radosgw_start
rgw_env
rgw_s3 mb ck-store
BUCKET=ck-store
PREFIX=hosts/db1
S="s3://$BUCKET/$PREFIX"
ck() { "$CK" --store "$S" --endpoint-url "$RGW_ENDPOINT" "$@"; }
chunk_count() { rgw_s3 count "$BUCKET" "$PREFIX/chunks/"; }
md5() { md5sum "$1" | cut -d' ' -f1; }
# bad_input RC TEXT CMD...: exits RC with one line on stderr that contains TEXT.
bad_input() {
  local rc=$1 text=$2
  shift 2
  expect_rc "$rc" "$@"
  [ "$(printf '%s' "$ERR" | grep -c .)" -eq 1 ] || fail "expected one line on stderr, got: $ERR"
  expect_contains "$ERR" "$text" "the error names the value"
}

# --- round trip: 64 MiB, partly zero, partly compressible, partly random ----
img="$WORK/vol.img"
head -c $((24 * 1024 * 1024)) /dev/urandom >"$img"
head -c $((16 * 1024 * 1024)) /dev/zero >>"$img"
(yes "cloudkeep s3 st" || true) | head -c $((24 * 1024 * 1024)) >>"$img"
expect_rc 0 ck --json snapshot create "$img"
first=$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")
read -r n1 b1 <<<"$(chunk_count)"
echo "first snapshot: $n1 chunk objects, $b1 bytes"
# 24 MiB random = 48 chunks; the 16-byte line repeated makes one distinct chunk
# (stored once), zeros are not stored.
[ "$n1" -eq 49 ] || fail "first snapshot stored $n1 chunk objects"
# The layout is docs/store-format.md's, under the prefix.
rgw_s3 keys "$BUCKET" "$PREFIX/" >"$WORK/keys"
grep -qx "$PREFIX/config" "$WORK/keys" || fail "no config object: $(head "$WORK/keys")"
grep -qx "$PREFIX/snapshots/$first.json" "$WORK/keys" || fail "no manifest object for $first"
grep -q "^$PREFIX/locks/" "$WORK/keys" && fail "a lock object is left after create"
grep -q "^$PREFIX/tmp/" "$WORK/keys" && fail "a run marker is left after create"

expect_rc 0 ck snapshot restore "$first" --to "$WORK/r1.img"
expect_eq "$(md5 "$WORK/r1.img")" "$(md5 "$img")" "restored bytes"

# --- incremental: change 1 MiB in two places ---------------------------------
dd if=/dev/urandom of="$img" bs=512K count=1 seek=3 conv=notrunc status=none
dd if=/dev/urandom of="$img" bs=512K count=1 seek=100 conv=notrunc status=none
expect_rc 0 ck --json snapshot create "$img"
second=$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")
read -r n2 b2 <<<"$(chunk_count)"
echo "second snapshot (1 MiB changed): $((n2 - n1)) new chunk objects, $((b2 - b1)) new bytes"
expect_eq "$((n2 - n1))" 2 "chunk objects uploaded for two changed 512 KiB regions"
[ "$((b2 - b1))" -ge $((1024 * 1024)) ] && [ "$((b2 - b1))" -le $((1024 * 1024 + 4096)) ] ||
  fail "second snapshot added $((b2 - b1)) bytes for 1 MiB of random change"
expect_rc 0 ck snapshot restore "$second" --to "$WORK/r2.img"
expect_eq "$(md5 "$WORK/r2.img")" "$(md5 "$img")" "restored bytes of the second snapshot"

# --- list, show, verify ------------------------------------------------------
expect_rc 0 ck --json snapshot list
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 2 "listed snapshots"
expect_rc 0 ck --json snapshot show "$first"
expect_eq "$(json_get 'd["id"]' <<<"$OUT")" "$first" "show"
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["ok"]' <<<"$OUT")" True "verify"
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" 0 "unreferenced chunks"
# Virtual-hosted addressing (BUCKET.localhost:PORT; curl maps *.localhost to
# loopback itself, radosgw has rgw_dns_name = localhost) reads the same store.
CLOUDKEEP_S3_ADDRESSING=virtual expect_rc 0 "$CK" --store "$S" \
  --endpoint-url "http://localhost:${RGW_ENDPOINT##*:}" --json snapshot list
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 2 "snapshots listed with virtual-hosted addressing"
CLOUDKEEP_S3_ADDRESSING=sideways bad_input 2 sideways ck snapshot list

# verify re-reads from the object store: damage one chunk object behind its back.
# Whole listing to a file first: `| head -n1` would close the pipe on a
# writer that is still printing (BrokenPipeError under pipefail).
rgw_s3 keys "$BUCKET" "$PREFIX/chunks/" >"$WORK/chunk-keys"
victim=$(head -n1 "$WORK/chunk-keys")
rgw_s3 get "$BUCKET" "$victim" >"$WORK/victim"
printf 'not a chunk' >"$WORK/bad"
rgw_s3 put "$BUCKET" "$victim" "$WORK/bad"
expect_rc 1 ck snapshot verify
expect_contains "$OUT$ERR" "$(basename "$victim")" "verify names the damaged chunk"
rgw_s3 put "$BUCKET" "$victim" "$WORK/victim"
expect_rc 0 ck snapshot verify

# --- kill -9 during create -----------------------------------------------------
head -c $((192 * 1024 * 1024)) /dev/urandom >"$WORK/big.img"
read -r before_n _ <<<"$(chunk_count)"
(exec "$CK" --store "$S" --endpoint-url "$RGW_ENDPOINT" snapshot create "$WORK/big.img" >/dev/null 2>&1) &
pid=$!
# Kill once a part of its chunks is up, well before its manifest.
for ((i = 0; i < 600; i++)); do
  read -r n _ <<<"$(chunk_count)"
  [ "$n" -ge $((before_n + 20)) ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null || fail "create finished before it could be killed"
wait "$pid" 2>/dev/null || true
read -r killed_n _ <<<"$(chunk_count)"
echo "killed create after $((killed_n - before_n)) of 384 chunk uploads"
[ "$killed_n" -gt "$before_n" ] || fail "no chunk was uploaded before the kill"
[ -n "$(rgw_s3 keys "$BUCKET" "$PREFIX/locks/")" ] || fail "the killed run left no lock object (test assumption)"
[ -n "$(rgw_s3 keys "$BUCKET" "$PREFIX/tmp/")" ] || fail "the killed run left no run marker (test assumption)"
expect_rc 0 ck --json snapshot list
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 2 "snapshots listed after the kill"
# verify takes the lock shared: the dead run's lock (this host, pid gone) is stale at once.
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["ok"]' <<<"$OUT")" True "verify after the kill"
expect_contains "$ERR" "stale lock" "the dead run's lock is removed"
# The next writer finds the dead run's marker and removes its chunks.
expect_rc 0 ck snapshot create "$img"
expect_contains "$ERR" "interrupted" "the dead run is cleaned up"
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" 0 "unreferenced chunks after recovery"
rgw_s3 keys "$BUCKET" "$PREFIX/" >"$WORK/keys"
grep -q "^$PREFIX/locks/\|^$PREFIX/tmp/" "$WORK/keys" && fail "lock or marker left: $(grep 'locks/\|tmp/' "$WORK/keys")"

# --- delete and prune ------------------------------------------------------------
expect_rc 0 ck --json snapshot list
third=$(json_get 'd["snapshots"][-1]["id"]' <<<"$OUT")
expect_rc 0 ck snapshot delete "$first"
expect_rc 2 ck snapshot show "$first"
expect_rc 0 ck snapshot restore "$second" --to "$WORK/r2b.img" --force
expect_eq "$(md5 "$WORK/r2b.img")" "$(md5 "$WORK/r2.img")" "second snapshot intact after deleting the first"
expect_rc 0 ck snapshot prune -v "$img" --keep-last 1
expect_rc 0 ck --json snapshot list
expect_eq "$(json_get '[s["id"] for s in d["snapshots"]]' <<<"$OUT")" "['$third']" "left after prune"
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" 0 "unreferenced chunks after prune"
expect_rc 0 ck snapshot restore "$third" --to "$WORK/r3.img"
expect_eq "$(md5 "$WORK/r3.img")" "$(md5 "$img")" "restored bytes after prune"
read -r n3 _ <<<"$(chunk_count)"
echo "after prune to one snapshot: $n3 chunk objects"

# --- bad input: one line naming the value, exit 2, nothing lost --------------------
bad_input 2 ck-nosuch "$CK" --store "s3://ck-nosuch/x" --endpoint-url "$RGW_ENDPOINT" snapshot list
bad_input 2 Bad_Bucket "$CK" --store "s3://Bad_Bucket/x" --endpoint-url "$RGW_ENDPOINT" snapshot list
AWS_SECRET_ACCESS_KEY=wrong bad_input 2 SignatureDoesNotMatch ck snapshot list
AWS_ACCESS_KEY_ID=CKNOSUCHKEY bad_input 2 InvalidAccessKeyId ck snapshot list
dead_port=$(free_port)
bad_input 1 "127.0.0.1:$dead_port" "$CK" --store "$S" --endpoint-url "http://127.0.0.1:$dead_port" snapshot list
bad_input 2 ftp://127.0.0.1 "$CK" --store "$S" --endpoint-url "ftp://127.0.0.1" snapshot list
expect_rc 2 ck snapshot serve "$third"
expect_contains "$ERR" "$S" "serve names the S3 store"
# Nothing lost.
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["ok"]' <<<"$OUT")" True "verify after the bad input"
expect_eq "$(rgw_s3 count "$BUCKET" "$PREFIX/chunks/" | cut -d' ' -f1)" "$n3" "chunk objects after the bad input"
echo "radosgw answered after ${RGW_START_SECONDS} s"
