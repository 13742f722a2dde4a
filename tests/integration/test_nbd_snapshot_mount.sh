#!/usr/bin/env bash
# `snapshot mount` / `snapshot umount`: the file system inside a snapshot,
# mounted read-only through FUSE and a loop device, for ext4, XFS and btrfs
# (XFS and btrfs while the original, same UUID/fsid, is still mounted),
# and partition N of a GPT image. umount, and the death of the serving
# process (SIGKILL), leave no mount, loop device, FUSE mount or process.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nbd_snapshot.sh"
need_root
need mkfs.ext4 mkfs.xfs mkfs.btrfs losetup findmnt
[ -e /dev/fuse ] || skip_or_fail /dev/fuse

# alive PID: a process that has not exited. An exited one may stay a zombie
# here: the daemon's parent is PID 1 once `mount` returns, and this VM's PID 1
# does not reap orphans.
alive() { [ -e "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat"; }

# gone FILE: true when nothing of the mount described by the JSON in FILE is left.
gone() {
  local j=$1 mp dev fuse pid wpid state
  mp=$(json_get 'd["mountpoint"]' <"$j")
  dev=$(json_get 'd["device"]' <"$j")
  fuse=$(json_get 'd["fuse_file"]' <"$j")
  pid=$(json_get 'd["pid"]' <"$j")
  wpid=$(json_get 'd["watchdog_pid"]' <"$j")
  state=$(json_get 'd["state_file"]' <"$j")
  ! findmnt -rn "$mp" >/dev/null &&
    ! (losetup -n -O BACK-FILE "$dev" 2>/dev/null | grep -qF "$(dirname "$fuse")") &&
    ! findmnt -rn "$(dirname "$fuse")" >/dev/null &&
    ! alive "$pid" && ! alive "$wpid" &&
    [ ! -e "$state" ] && [ ! -d "$(dirname "$fuse")" ]
}

# mount_snap NAME SNAP ARGS...: mounts at $WORK/NAME, JSON in $WORK/NAME.json.
mount_snap() {
  local name=$1 snap=$2
  shift 2
  mkdir -p "$WORK/$name"
  defer "'$CK' snapshot umount --lazy '$WORK/$name'; umount -l '$WORK/$name'"
  expect_rc 0 "$CK" --store "$STORE" --json snapshot mount "$snap" "$WORK/$name" "$@"
  echo "$OUT" >"$WORK/$name.json"
  local pid wpid
  pid=$(json_get 'd["pid"]' <<<"$OUT")
  wpid=$(json_get 'd["watchdog_pid"]' <<<"$OUT")
  defer "kill_cloudkeep $pid $wpid"
}

# kill_cloudkeep PID...: SIGKILL, but only processes that are still cloudkeep.
kill_cloudkeep() {
  local p
  for p in "$@"; do
    grep -qa cloudkeep "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
  done
  return 0
}

# fs_volume FS DIR: a mounted FS on a loop device (lib.sh mkfs_loop) with
# known files, snapshotted frozen (so the copy needs no journal or log
# replay); sets SNAP and FILES_SUM.
fs_volume() {
  local fs=$1 dir=$2
  mkfs_loop 320M "$fs" "$dir"
  mkdir -p "$dir/etc/app"
  echo "config of $fs" >"$dir/etc/app/app.conf"
  head -c 3M /dev/urandom >"$dir/blob.bin"
  FILES_SUM=$(cd "$dir" && sha256sum etc/app/app.conf blob.bin)
  expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$LOOP_IMG" --freeze "$dir"
  SNAP="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
  # The original changes afterwards; the snapshot must not.
  echo "changed after the snapshot" >"$dir/etc/app/app.conf"
}

check_files() {
  local mnt=$1
  expect_eq "$(cd "$mnt" && sha256sum etc/app/app.conf blob.bin)" "$FILES_SUM" "files in $mnt"
  expect_contains "$(findmnt -rn -o OPTIONS "$mnt")" "ro"
  touch "$mnt/x" 2>/dev/null && fail "$mnt is writable"
  return 0
}

echo "== ext4: mount, read, umount"
fs_volume ext4 "$WORK/ext4"
mount_snap m-ext4 "$SNAP"
expect_eq "$(json_get 'd["filesystem"]' <"$WORK/m-ext4.json")" ext4
expect_contains "$(json_get 'd["options"]' <"$WORK/m-ext4.json")" noload
check_files "$WORK/m-ext4"
expect_rc 0 "$CK" snapshot umount "$WORK/m-ext4"
expect_contains "$OUT" "unmounted"
gone "$WORK/m-ext4.json" || fail "ext4 mount left something behind"
expect_rc 2 "$CK" snapshot umount "$WORK/m-ext4"
expect_contains "$ERR" "not a file system mounted by"

echo "== XFS while the original (same UUID) is mounted; then SIGKILL of the server"
fs_volume xfs "$WORK/xfs"
mount_snap m-xfs "$SNAP"
expect_contains "$(json_get 'd["options"]' <"$WORK/m-xfs.json")" "norecovery,nouuid"
check_files "$WORK/m-xfs"
findmnt -rn "$WORK/xfs" >/dev/null || fail "the original XFS is no longer mounted"
kill -9 "$(json_get 'd["pid"]' <"$WORK/m-xfs.json")"
wait_for gone "$WORK/m-xfs.json"
log="$(json_get 'd["log_file"]' <"$WORK/m-xfs.json")"
expect_contains "$(cat "$log")" "watchdog"
rm -f "$log"

echo "== btrfs while the original (same fsid) is mounted; busy umount; --foreground"
fs_volume btrfs "$WORK/btrfs"
mount_snap m-btrfs "$SNAP"
expect_contains "$(json_get 'd["options"]' <"$WORK/m-btrfs.json")" "nologreplay"
check_files "$WORK/m-btrfs"
(cd "$WORK/m-btrfs" && exec sleep 30) &
holder=$!
defer "kill $holder"
sleep 0.3
expect_rc 1 "$CK" snapshot umount "$WORK/m-btrfs"
expect_contains "$ERR" "busy"
findmnt -rn "$WORK/m-btrfs" >/dev/null || fail "a busy umount must leave it mounted"
kill "$holder"
wait "$holder" 2>/dev/null || true
expect_rc 0 "$CK" snapshot umount "$WORK/m-btrfs"
gone "$WORK/m-btrfs.json" || fail "btrfs mount left something behind"
mkdir -p "$WORK/fg"
start_daemon fg '^}' "$CK" --store "$STORE" --json snapshot mount "$SNAP" "$WORK/fg" --foreground
check_files "$WORK/fg"
cp "$WORK/fg.out" "$WORK/fg.json"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "snapshot mount --foreground exited $? after SIGTERM"
wait_for gone "$WORK/fg.json"

echo "== partition N of a GPT image"
img="$WORK/parts.img"
truncate -s 400M "$img"
make_gpt "$img" 1:40 41:320
for spec in 1:1:40:ext4 2:41:320:xfs; do  # XFS needs 300 MB
  IFS=: read -r p start len fs <<<"$spec"
  dev=$(losetup --find --show -o $((start << 20)) --sizelimit $((len << 20)) "$img")
  defer "detach_loop $dev '$img'"
  "mkfs.$fs" -q "$dev" >/dev/null
  mkdir -p "$WORK/p$p"
  mount "$dev" "$WORK/p$p"
  echo "partition $p" >"$WORK/p$p/which"
  umount "$WORK/p$p"
  losetup -d "$dev"
done
expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$img"
psnap="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
mkdir -p "$WORK/m-part"
expect_rc 2 "$CK" --store "$STORE" snapshot mount "$psnap" "$WORK/m-part"
expect_contains "$ERR" "--partition"
expect_contains "$ERR" "2 (xfs"
expect_rc 2 "$CK" --store "$STORE" snapshot mount "$psnap" "$WORK/m-part" --partition 9
expect_contains "$ERR" "no partition 9"
mount_snap m-part "$psnap" --partition 2
expect_eq "$(cat "$WORK/m-part/which")" "partition 2"
expect_eq "$(json_get 'd["filesystem"]' <"$WORK/m-part.json")" xfs
expect_rc 0 "$CK" snapshot umount "$WORK/m-part"
gone "$WORK/m-part.json" || fail "partition mount left something behind"
