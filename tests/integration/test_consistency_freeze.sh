#!/bin/bash
# --freeze with real filesystems: the volume's own mountpoint by default,
# several named ones in a fixed order, no fsfreeze(8) needed (PATH without
# it, as under cron), refusals that exit 2 before anything is touched, and
# hooks in order (pre as given, post reversed) that alone do not raise the
# consistency level.
. "$(dirname "$0")/lib.sh"
need_root
need mkfs.xfs mkfs.ext4 losetup

mkfs_loop 512M xfs "$WORK/a"
IMG_A="$LOOP_IMG"
mkfs_loop 64M ext4 "$WORK/b"
IMG_B="$LOOP_IMG"
STORE="$WORK/store"
CKS=("$CK" --store "$STORE")
echo data >"$WORK/a/file"

# Bare --freeze: the mountpoint of the loop device backed by the image; no fsfreeze in PATH.
expect_rc 0 env PATH=/nonexistent "${CKS[@]}" --json snapshot create "$IMG_A" --freeze
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" filesystem
json_get 'd["snapshots"][0]["freeze_us"] > 0' <<<"$OUT" | grep -qx True || fail "no freeze_us: $OUT"
expect_contains "$ERR" "froze $WORK/a for"

# Named mountpoints, XFS and ext4, frozen in sorted order (b given first).
expect_rc 0 "${CKS[@]}" snapshot create "$IMG_A" --freeze "$WORK/b" "$WORK/a" --
expect_contains "$ERR" "froze $WORK/a, $WORK/b for"
expect_contains "$OUT" "filesystem"
SNAP="$("${CKS[@]}" --json snapshot list | json_get 'd["snapshots"][-1]["id"]')"
expect_rc 0 "${CKS[@]}" snapshot show "$SNAP"
expect_contains "$OUT" "frozen:"

# Refusals: exit 2, one line naming the value, nothing frozen.
expect_rc 2 "${CKS[@]}" snapshot create "$IMG_A" --freeze /
expect_contains "$ERR" "--freeze-root"
expect_rc 2 "${CKS[@]}" snapshot create "$IMG_A" --freeze "$WORK"
expect_contains "$ERR" "'$WORK' is not a mountpoint"
truncate -s 64M "$WORK/unmounted.img"
expect_rc 2 "${CKS[@]}" snapshot create "$WORK/unmounted.img" --freeze
expect_contains "$ERR" "is not mounted here"
truncate -s 64M "$WORK/a/inner.img"
expect_rc 2 "${CKS[@]}" snapshot create "$WORK/a/inner.img" --freeze "$WORK/a" --
expect_contains "$ERR" "which would be frozen"
expect_rc 2 "${CKS[@]}" snapshot create "$IMG_A" --freeze --freeze-timeout soon
expect_contains "$ERR" "soon"
expect_rc 2 "${CKS[@]}" snapshot create "$IMG_A" --mysql --mysql-lock global
expect_contains "$ERR" "global"
expect_rc 2 "${CKS[@]}" snapshot create "$IMG_A" --freeze-root
expect_contains "$ERR" "--freeze-root needs --freeze"
# Nothing was left frozen by the refusals.
timeout 20 touch "$WORK/a/still-writable" || fail "$WORK/a is frozen"

# Hooks: pre in order, post reversed; alone they leave the snapshot crash-consistent.
expect_rc 0 "${CKS[@]}" --json snapshot create "$IMG_B" --pre "echo pre1 >> '$WORK/hooks'" \
  --pre "echo pre2 >> '$WORK/hooks'" --post "echo post1 >> '$WORK/hooks'" --post "echo \$CLOUDKEEP_HOOK-2 >> '$WORK/hooks'"
expect_eq "$(tr '\n' ' ' <"$WORK/hooks")" "pre1 pre2 post-2 post1 "
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" crash

# A failing post hook (a service that did not come back) exits 1, after the
# snapshot is complete and listed: the snapshot is kept and verifies.
expect_rc 1 "${CKS[@]}" --json snapshot create "$IMG_B" --freeze --post "echo cannot restart >&2; exit 4"
HOOKED=$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" filesystem
expect_contains "$(json_get 'd["post_hook_error"]' <<<"$OUT")" "cannot restart"
expect_eq "$(grep -c '^cloudkeep: error:' <<<"$ERR")" 1 "one error line"
expect_contains "$ERR" "snapshot $HOOKED complete, but"
expect_rc 0 "${CKS[@]}" snapshot verify "$HOOKED"
timeout 20 touch "$WORK/b/still-writable-after-post" || fail "$WORK/b is frozen"

# A hook that hangs is killed after --hook-timeout and fails the run.
expect_rc 1 "${CKS[@]}" snapshot create "$IMG_B" --freeze --pre "sleep 600" --hook-timeout 1s
expect_contains "$ERR" "timed out"
timeout 20 touch "$WORK/b/still-writable" || fail "$WORK/b is frozen"
