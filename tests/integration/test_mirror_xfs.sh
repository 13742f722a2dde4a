#!/usr/bin/env bash
# A real file system on the mirror's export. Two hosts are network
# namespaces; the client is qemu's NBD client (qemu-storage-daemon) on the
# primary's export, its FUSE export is a loop device, and XFS lives on that:
# mkfs (which discards the whole device), files written and fsynced, files
# removed and fstrim'd (TRIM through the export), unmounted. Then the two
# backing files are byte-identical, the standby's copy has given back the
# trimmed space too, and mounted on its own it holds every file with the
# same checksums and passes xfs_repair -n.
. "$(dirname "$0")/lib.sh"
need_root
need qemu-storage-daemon mkfs.xfs xfs_repair xfs_freeze losetup fstrim mount umount md5sum sha256sum
. "$(dirname "$0")/lib_mirror.sh"

SIZE=$((320 * 1024 * 1024)) # mkfs.xfs refuses file systems under 300 MB
mirror_hosts
truncate -s "$SIZE" "$WORK/a.img" "$WORK/b.img"
mirror_config "$WORK/m.toml"
ck_mirror init web --node a --uptodate >/dev/null
ck_mirror init web --node b >/dev/null
start_node a --export-socket "$WORK/export.sock"
start_node b
in_sync
expect_rc 0 ck_mirror promote web --node a

# qemu's NBD client, discards passed through, exported as a file over FUSE.
touch "$WORK/disk"
qemu-storage-daemon \
  --blockdev "driver=nbd,node-name=nbd0,server.type=unix,server.path=$WORK/export.sock,export=web,discard=unmap" \
  --export "type=fuse,id=exp0,node-name=nbd0,mountpoint=$WORK/disk,writable=on" \
  >"$WORK/qsd.log" 2>&1 &
QSD=$!
defer "kill $QSD 2>/dev/null; sleep 0.5; kill -9 $QSD 2>/dev/null; umount -l '$WORK/disk' 2>/dev/null"
wait_for grep -q " $WORK/disk fuse" /proc/mounts
LOOP=$(losetup --find --show "$WORK/disk")
defer "detach_loop $LOOP '$WORK/disk'"
mkdir -p "$WORK/mnt" "$WORK/check"

mkfs.xfs -q -f "$LOOP"
mount "$LOOP" "$WORK/mnt"
defer "umount '$WORK/mnt' 2>/dev/null"
# 40 files of 1 MiB and 400 small ones, each fsynced; one 64 MiB file.
for i in $(seq 1 40); do head -c 1048576 /dev/urandom >"$WORK/mnt/big-$i"; done
mkdir "$WORK/mnt/small"
for i in $(seq 1 400); do head -c $((RANDOM + 1)) /dev/urandom >"$WORK/mnt/small/f-$i"; done
dd if=/dev/urandom of="$WORK/mnt/huge" bs=1M count=64 conv=fsync status=none
sync -f "$WORK/mnt"
blocks_before=$(stat -c %b "$WORK/b.img")
rm "$WORK/mnt/huge" "$WORK/mnt"/big-1*
# XFS does not trim extents freed by a transaction still in the log: commit it first.
sync -f "$WORK/mnt"
xfs_freeze -f "$WORK/mnt" && xfs_freeze -u "$WORK/mnt"
trimmed=$(fstrim -v "$WORK/mnt" | grep -oE '[0-9]+ bytes' | cut -d' ' -f1)
[ "${trimmed:-0}" -gt $((48 * 1024 * 1024)) ] || fail "fstrim trimmed only ${trimmed:-0} bytes"
(cd "$WORK/mnt" && find . -type f | sort | xargs sha256sum) >"$WORK/sums"
expect_eq "$(wc -l <"$WORK/sums")" 429 "files written"
umount "$WORK/mnt"
# Tear the client chain down in order, or its last writes can be lost in it
# (seen with nbdkit in the mirror's place too): the loop device detaches
# asynchronously, and the FUSE file's page cache must be written back and
# the FUSE mount ended before qemu exits.
losetup -d "$LOOP"
# (Another test may be given the same loop device once it is free: check the backing file.)
for ((i = 0; i < 600; i++)); do losetup -n -O BACK-FILE "$LOOP" 2>/dev/null | grep -qF "$WORK/disk" || break; sleep 0.1; done
sync "$WORK/disk"
# Busy while the detached loop device still holds the file (later under load).
wait_for umount "$WORK/disk"
kill "$QSD"
wait "$QSD" 2>/dev/null || true

# Both copies byte-identical; the standby applied the TRIMs as deallocation.
wait_st a 'd["in_flight_writes"] == 0 and d["out_of_sync_bytes"] == 0'
same_md5 "XFS through the export: backing files identical"
blocks_after=$(stat -c %b "$WORK/b.img")
# 75 MiB were removed and trimmed: most of it must be deallocated here too (512-byte blocks;
# without replicated TRIMs the standby could not shrink at all).
[ "$blocks_after" -lt $((blocks_before - 48 * 2048)) ] ||
  fail "the standby's copy did not give back trimmed space ($blocks_before -> $blocks_after blocks)"
expect_eq "$(st a 'd["write_latency"]["writes"] > 0')" True "writes counted on the primary"

# The standby's copy on its own: a clean XFS with every file.
stop_node a
stop_node b
xfs_repair -n "$WORK/b.img" >"$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log" >&2; fail "xfs_repair -n on the standby's copy"; }
BLOOP=$(losetup --find --show -r "$WORK/b.img")
defer "detach_loop $BLOOP '$WORK/b.img'"
mount -o ro,norecovery "$BLOOP" "$WORK/check"
defer "umount '$WORK/check' 2>/dev/null"
(cd "$WORK/check" && sha256sum --quiet -c "$WORK/sums") || fail "files on the standby's copy differ"
umount "$WORK/check"
echo "XFS on the mirror: 429 files, TRIM replicated, standby copy identical and clean"
