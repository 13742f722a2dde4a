#!/usr/bin/env bash
# The embedded store end to end: incremental growth, dedup, delete that frees
# only unshared chunks, corruption found by verify, bad input (exit 2, nothing
# changed), two concurrent creates, and a run with cron's environment.
. "$(dirname "$0")/lib.sh"
need cmp sha256sum /usr/bin/python3

S="$WORK/store"
ck() { "$CK" --store "$S" "$@"; }
store_kb() { du -sk "$S/chunks" | cut -f1; }

# --- incremental growth: change 1% of a 256 MiB volume -------------------
img="$WORK/vol.img"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$img"
expect_rc 0 ck --json snapshot create "$img"
first="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
before=$(store_kb)
# 1% = 2.56 MiB: five 512 KiB regions spread over the volume.
for off in 10 60 110 170 230; do
  dd if=/dev/urandom of="$img" bs=512K count=1 seek=$((off * 2)) conv=notrunc status=none
done
expect_rc 0 ck --json snapshot create "$img"
second="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
new_bytes="$(json_get 'd["snapshots"][0]["new_bytes"]' <<<"$OUT")"
after=$(store_kb)
grown=$((after - before))
echo "store grew by ${grown} KiB for a 2560 KiB change (new_bytes=$new_bytes)"
[ "$grown" -le $((256 * 1024 * 2 / 100)) ] || fail "store grew by ${grown} KiB, more than 2% of 256 MiB"
[ "$grown" -ge 2560 ] || fail "store grew by only ${grown} KiB: the change was not stored"

# An unchanged volume adds nothing.
expect_rc 0 ck --json snapshot create "$img"
third="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_eq "$(json_get 'd["snapshots"][0]["new_bytes"]' <<<"$OUT")" "0" "unchanged volume must add no bytes"

# An image file untouched since the last capture is not read again (its
# inode, size, mtime and ctime are recorded); one byte changed and it is.
# (A capture counts only if it came at least a second after the file's last
# change, so take one more after a pause, then the shortcut must apply.)
cp "$img" "$WORK/before-touch.img"
sleep 1.2
expect_rc 0 ck --json snapshot create "$img"
settled="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 0 ck --json snapshot create "$img"
expect_contains "$ERR" "unchanged since $settled"
fourth="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 0 ck snapshot restore "$fourth" --to "$WORK/r4.img"
cmp "$img" "$WORK/r4.img" || fail "a snapshot reusing the previous chunk table does not restore"
rm -f "$WORK/r4.img"
printf 'x' | dd of="$img" bs=1 seek=12345 conv=notrunc status=none
sleep 1.2
expect_rc 0 ck --json snapshot create "$img"
expect_not_contains "$ERR" "unchanged since"
fifth="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 0 ck snapshot restore "$fifth" --to "$WORK/r5.img"
cmp "$img" "$WORK/r5.img" || fail "a one-byte change was missed"
rm -f "$WORK/r5.img"
expect_rc 0 ck snapshot delete "$settled" "$fourth" "$fifth"
cp "$WORK/before-touch.img" "$img"

# Each snapshot restores on its own to the image it saw.
cp "$img" "$WORK/vol-now.img"
expect_rc 0 ck snapshot restore "$third" --to "$WORK/r3.img"
cmp "$WORK/vol-now.img" "$WORK/r3.img" || fail "third snapshot does not restore to the current image"

# --- delete frees only chunks no other snapshot uses ----------------------
expect_rc 0 ck snapshot delete "$first"
kb=$(store_kb)
[ "$kb" -le $((after + 64)) ] && [ "$kb" -ge $((after - 4096)) ] || fail "deleting the first snapshot freed ${after}->${kb} KiB"
expect_rc 0 ck snapshot verify
expect_rc 0 ck snapshot restore "$second" --to "$WORK/r2.img"
cmp "$WORK/vol-now.img" "$WORK/r2.img" || fail "second snapshot broken by deleting the first"
expect_rc 2 ck snapshot show "$first"
expect_contains "$ERR" "unknown snapshot '$first'"

# --- bad input: one line naming the value, exit 2, nothing changed --------
listing="$(ck --json snapshot list)"
expect_rc 2 ck snapshot create "$WORK/missing.img"
expect_contains "$ERR" "'$WORK/missing.img'"
[ "$(wc -l <<<"$ERR")" -eq 1 ] || fail "error must be one line: $ERR"
touch "$WORK/afile"
expect_rc 2 "$CK" --store "$WORK/afile" snapshot create "$img"
expect_contains "$ERR" "'$WORK/afile' is not a directory"
expect_rc 2 ck snapshot show snap-zzz
expect_contains "$ERR" "'snap-zzz'"
expect_rc 2 ck snapshot delete "$second" snap-00000000000000000
expect_contains "$ERR" "snap-00000000000000000"
expect_rc 2 ck snapshot list --older-than 7parsecs
expect_contains "$ERR" "'7parsecs'"
expect_rc 2 ck snapshot create "$img" --tag novalue
expect_contains "$ERR" "'novalue'"
expect_rc 2 ck snapshot prune -v "$img" -o soon
expect_contains "$ERR" "'soon'"
expect_rc 2 ck snapshot prune -v "$img"
expect_contains "$ERR" "no retention policy"
expect_rc 2 ck snapshot restore "$second" --to "$WORK/r2.img"
expect_contains "$ERR" "exists"
chmod 000 "$WORK/afile"
if [ "$(id -u)" -ne 0 ]; then expect_rc 2 ck snapshot create "$WORK/afile"; fi
expect_eq "$(ck --json snapshot list)" "$listing" "bad input changed the store"
expect_rc 0 ck snapshot verify

# --- corruption: a flipped byte is found, with snapshots and offsets ------
chunk="$(find "$S/chunks" -type f | sort | sed -n 1p)"
cp "$chunk" "$WORK/chunk.bak"
/usr/bin/python3 - "$chunk" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(bytes(b))
PY
expect_rc 1 ck --json snapshot verify
expect_eq "$(json_get 'd["ok"]' <<<"$OUT")" "False"
expect_eq "$(json_get 'd["problems"][0]["chunk"]' <<<"$OUT")" "$(basename "$chunk")"
expect_contains "$(json_get 'd["problems"][0]["snapshots"]' <<<"$OUT")" "$second"
expect_rc 1 ck snapshot verify
expect_contains "$OUT" "DAMAGED $(basename "$chunk")"
expect_contains "$OUT" "at offsets"
# Restore refuses to produce silently corrupt data.
expect_rc 1 ck snapshot restore "$second" --to "$WORK/bad.img"
[ ! -e "$WORK/bad.img" ] || fail "a failed restore left a target behind"
cp "$WORK/chunk.bak" "$chunk"
expect_rc 0 ck snapshot verify

# --- two concurrent creates: one waits, both succeed, nothing corrupt -----
head -c $((64 * 1024 * 1024)) /dev/urandom >"$WORK/c1.img"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$WORK/c2.img"
n_before="$(ck --json snapshot list | json_get 'len(d["snapshots"])')"
ck snapshot create "$WORK/c1.img" >"$WORK/c1.out" 2>"$WORK/c1.err" &
p1=$!
ck snapshot create "$WORK/c2.img" >"$WORK/c2.out" 2>"$WORK/c2.err" &
p2=$!
wait $p1 || fail "first concurrent create failed: $(cat "$WORK/c1.err")"
wait $p2 || fail "second concurrent create failed: $(cat "$WORK/c2.err")"
grep -q "is busy" "$WORK/c1.err" "$WORK/c2.err" || echo "note: the creates did not overlap"
expect_eq "$(ck --json snapshot list | json_get 'len(d["snapshots"])')" "$((n_before + 2))"
expect_rc 0 ck snapshot verify

# --- cron's environment: no terminal, minimal PATH, exit code tells -------
expect_rc 0 env -i PATH=/usr/bin:/bin HOME=/root "$CK" --store "$S" snapshot create "$img" --tag from=cron </dev/null
expect_not_contains "$ERR" $'\r' "progress drawn without a terminal"
expect_rc 0 env -i PATH=/usr/bin:/bin HOME=/root "$CK" --store "$S" snapshot prune -v "$img" --keep-last 2 </dev/null
expect_contains "$OUT" "removed"
expect_eq "$(ck --json snapshot list -v "$img" | json_get 'len(d["snapshots"])')" "2"
expect_rc 2 env -i PATH=/usr/bin:/bin "$CK" --store "$S" snapshot prune -v "$img" </dev/null
expect_rc 0 ck snapshot verify
