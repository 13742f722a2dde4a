#!/usr/bin/env bash
# A store on a full filesystem: create fails with a clear error, exit 1, and
# the store keeps every snapshot it had, verifying.
. "$(dirname "$0")/lib.sh"
need_root
mnt="$WORK/small"
mkdir -p "$mnt"
mount -t tmpfs -o size=24m tmpfs "$mnt"
defer "umount -l '$mnt'"
S="$mnt/store"
ck() { "$CK" --store "$S" "$@"; }

head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/small.img"
expect_rc 0 ck snapshot create "$WORK/small.img"
listing="$(ck --json snapshot list)"

head -c $((64 * 1024 * 1024)) /dev/urandom >"$WORK/big.img"
expect_rc 1 ck snapshot create "$WORK/big.img"
expect_contains "$ERR" "is full"
expect_contains "$ERR" "store is unchanged"
expect_eq "$(ck --json snapshot list)" "$listing" "a failed create changed the listing"
[ -z "$(ls -A "$S/tmp")" ] || fail "staged chunks left in tmp/: $(ls "$S/tmp" | head)"
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" "0"
# And the old snapshot still restores.
id="$(json_get 'd["snapshots"][0]["id"]' <<<"$listing")"
expect_rc 0 ck snapshot restore "$id" --to "$WORK/back.img"
cmp "$WORK/small.img" "$WORK/back.img" || fail "old snapshot damaged by the failed create"
