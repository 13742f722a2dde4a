#!/usr/bin/env bash
# One bad file never stops the store: a manifest damaged in every way we
# can make it (truncated, trailing bytes, a wrong checksum, not JSON, the
# wrong id, a directory in its place) leaves every good snapshot listed,
# restorable and prunable; the damaged one is marked, can be shown and
# deleted, and garbage collection frees nothing it may still reference.
# Also: restore --force refuses an image file that backs a loop device or
# that another process has open for writing.
. "$(dirname "$0")/lib.sh"
need cmp losetup /usr/bin/python3

S="$WORK/store"
ck() { "$CK" --store "$S" "$@"; }
a="$WORK/a.img"
b="$WORK/b.img"
head -c $((8 << 20)) /dev/urandom >"$a"
head -c $((8 << 20)) /dev/urandom >"$b"
expect_rc 0 ck --json snapshot create "$a"
a1="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 0 ck --json snapshot create "$b"
b1="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
# b2 shares nothing with b1: its chunks are referenced only by its manifest.
head -c $((8 << 20)) /dev/urandom >"$b"
expect_rc 0 ck --json snapshot create "$b"
b2="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
cp "$b" "$WORK/b2.expected"
M="$S/snapshots/$b2.json"
cp "$M" "$WORK/good.json"
chunks_before=$(find "$S/chunks" -type f | wc -l)

damage() {
  cp "$WORK/good.json" "$M"
  case $1 in
    truncated) truncate -s $(($(stat -c %s "$M") / 2)) "$M" ;;
    trailing) printf 'garbage' >>"$M" ;;
    checksum) /usr/bin/python3 - "$M" <<'PY' ;;
import json, sys
d = json.load(open(sys.argv[1]))
h = d["chunk_table_sha256"]
d["chunk_table_sha256"] = ("0" if h[0] != "0" else "1") + h[1:]
json.dump(d, open(sys.argv[1], "w"))
PY
    notjson) printf '\x00\x01\x02' >"$M" ;;
    wrongid) /usr/bin/python3 - "$M" "$a1" <<'PY' ;;
import json, sys
d = json.load(open(sys.argv[1]))
d["id"] = sys.argv[2]  # another snapshot's id in this file
json.dump(d, open(sys.argv[1], "w"))
PY
    directory) rm -f "$M" && mkdir "$M" ;;
  esac
}

acur=$a1
for kind in truncated trailing checksum notjson wrongid directory; do
  echo "== damage: $kind"
  damage "$kind"
  # list: every good snapshot, the damaged one marked, exit 1 naming it.
  expect_rc 1 ck snapshot list
  expect_contains "$OUT" "$acur"
  expect_contains "$OUT" "$b1"
  expect_contains "$OUT" "DAMAGED"
  expect_contains "$ERR" "damaged manifest: $b2"
  expect_rc 1 ck --json snapshot list
  /usr/bin/python3 - "$OUT" "$b2" <<'PY' || fail "list --json ($kind)"
import json, sys
d = json.loads(sys.argv[1])
ids = {s["id"]: s for s in d["snapshots"]}
assert ids[sys.argv[2]]["state"] == "damaged" and ids[sys.argv[2]]["damaged"], ids
assert sum(1 for s in d["snapshots"] if s["state"] == "completed") == 2, d
PY
  expect_rc 1 ck snapshot show "$b2"
  expect_contains "$ERR" "damaged manifest"
  # The others keep working: create, restore, verify of a good one, prune of a volume.
  expect_rc 0 ck --json snapshot create "$a"
  acur="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
  expect_rc 0 ck snapshot restore "$acur" --to "$WORK/a.restored"
  cmp "$a" "$WORK/a.restored" || fail "restore of a good snapshot ($kind)"
  rm -f "$WORK/a.restored"
  expect_rc 0 ck snapshot verify "$acur"
  expect_rc 1 ck snapshot verify
  # prune removes the older snapshot of a, weighs nothing it cannot read.
  expect_rc 0 ck --json snapshot prune -v "$a" --keep-last 1
  expect_contains "$ERR" "damaged manifest"
  expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 1 "prune removed ($kind)"
  expect_eq "$(json_get 'd["damaged"]' <<<"$OUT")" "['$b2']" "prune reports the damaged one"
  # Listed under any volume filter: its volume is unknown.
  expect_rc 1 ck snapshot list -v "$a"
  expect_contains "$OUT" "$b2"
  # Garbage collection (run by delete) frees nothing while a manifest is damaged.
  expect_rc 1 ck snapshot restore "$b2" --to "$WORK/b2.restored"
  [ ! -e "$WORK/b2.restored" ] || fail "a damaged snapshot restored something ($kind)"
  [ "$(find "$S/chunks" -type f | wc -l)" -ge "$chunks_before" ] || fail "chunks freed while a manifest is damaged ($kind)"
  # Undo the damage: the snapshot is whole again.
  rm -rf "$M"
  cp "$WORK/good.json" "$M"
  expect_rc 0 ck snapshot restore "$b2" --to "$WORK/b2.restored"
  cmp "$WORK/b2.expected" "$WORK/b2.restored" || fail "b2 after repair ($kind)"
  rm -f "$WORK/b2.restored"
done

echo "== delete removes a damaged snapshot; its chunks are freed after"
damage truncated
expect_rc 0 ck snapshot delete "$b2"
expect_rc 0 ck snapshot list
expect_not_contains "$OUT" "$b2"
expect_rc 0 ck snapshot verify
expect_eq "$(ck --json snapshot verify | json_get 'd["unreferenced_chunks"]')" 0 "unreferenced chunks after delete"

echo "== restore --force refuses a file that backs a loop device or is open for writing"
target="$WORK/vm.img"
cp "$a" "$target"
a1=$acur
LOOP=$(losetup --find --show "$target")
defer "detach_loop '$LOOP' '$target'"
expect_rc 2 ck snapshot restore "$a1" --to "$target" --force
expect_contains "$ERR" "backs loop device $LOOP"
losetup -d "$LOOP"
/usr/bin/python3 -c 'import os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); time.sleep(60)' "$target" &
WRITER=$!
defer "kill $WRITER"
sleep 0.3
expect_rc 2 ck snapshot restore "$a1" --to "$target" --force
expect_contains "$ERR" "open for writing"
expect_contains "$ERR" "$WRITER"
kill "$WRITER"; wait "$WRITER" 2>/dev/null || true
# A reader does not block it, and nothing is in the way now.
expect_rc 0 ck snapshot restore "$a1" --to "$target" --force
