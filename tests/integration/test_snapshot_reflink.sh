#!/usr/bin/env bash
# Image files on real XFS and btrfs (loop devices) are captured by FICLONE,
# restore byte for byte, and the clone is gone afterwards; a loop block
# device is read in place and says it is only crash-consistent.
. "$(dirname "$0")/lib.sh"
need_root
need mkfs.xfs mkfs.btrfs losetup cmp

STORE="$WORK/store"
for fs in xfs btrfs; do
  mnt="$WORK/$fs"
  mkfs_loop 400M "$fs" "$mnt"
  img="$mnt/vm.img"
  # A volume image with data, text and holes.
  truncate -s 96M "$img"
  dd if=/dev/urandom of="$img" bs=1M count=8 seek=4 conv=notrunc status=none
  (set +o pipefail; yes "cloudkeep $fs line" | head -c 8M) | dd of="$img" bs=1M seek=40 conv=notrunc status=none

  expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$img" --tag fs="$fs" --description "on $fs"
  id="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
  expect_contains "$ERR" "captured by reflink (FICLONE)" "$fs image must be reflinked"
  expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" "crash"
  # No clone left beside the image.
  [ -z "$(ls -A "$mnt" | grep cloudkeep || true)" ] || fail "clone left in $mnt: $(ls -A "$mnt")"

  # Change the image after the snapshot: the snapshot must not see it.
  cp --sparse=always "$img" "$WORK/orig-$fs.img"
  dd if=/dev/urandom of="$img" bs=1M count=2 seek=50 conv=notrunc status=none

  expect_rc 0 "$CK" --store "$STORE" snapshot restore "$id" --to "$WORK/restored-$fs.img"
  cmp "$WORK/orig-$fs.img" "$WORK/restored-$fs.img" || fail "$fs restore differs from the image at snapshot time"
  # Holes stay holes: 96 MiB apparent, about 16 MiB allocated.
  used_kb=$(du -k "$WORK/restored-$fs.img" | cut -f1)
  [ "$used_kb" -lt 20000 ] || fail "restore of $fs image is not sparse: ${used_kb} KiB allocated"

  expect_rc 0 "$CK" --store "$STORE" --json snapshot show "$id"
  expect_eq "$(json_get 'd["tags"]["fs"]' <<<"$OUT")" "$fs"
  expect_eq "$(json_get 'd["description"]' <<<"$OUT")" "on $fs"
  expect_eq "$(json_get 'd["size_bytes"]' <<<"$OUT")" "$((96 * 1024 * 1024))"
done

# A loop block device: read in place, crash-consistent unless frozen.
truncate -s 64M "$WORK/blk.img"
dd if=/dev/urandom of="$WORK/blk.img" bs=1M count=3 seek=10 conv=notrunc status=none
dev="$(losetup --find --show "$WORK/blk.img")"
defer "detach_loop '$dev' '$WORK/blk.img'"
expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$dev"
expect_contains "$ERR" "crash-consistent only if the volume was being written"
bid="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
# Restore onto another loop device, byte-exact.
truncate -s 64M "$WORK/blk2.img"
dev2="$(losetup --find --show "$WORK/blk2.img")"
defer "detach_loop '$dev2' '$WORK/blk2.img'"
dd if=/dev/urandom of="$dev2" bs=1M count=64 status=none  # old contents must be overwritten, zeros included
expect_rc 0 "$CK" --store "$STORE" snapshot restore "$bid" --to "$dev2"
cmp "$dev" "$dev2" || fail "block device restore differs"

# A mounted device is never overwritten.
expect_rc 2 "$CK" --store "$STORE" snapshot restore "$bid" --to "$LOOP_DEV"
expect_contains "$ERR" "mounted"

expect_rc 0 "$CK" --store "$STORE" snapshot verify
expect_contains "$OUT" "store OK"
expect_rc 0 "$CK" --store "$STORE" --json snapshot list -v "$dev"
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" "1"
