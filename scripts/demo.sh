#!/usr/bin/env bash
# The quick-start demo: snapshots of a real filesystem image, an incremental
# second snapshot, a byte-exact restore proven by checksums, and a prune.
# Everything lives in one scratch directory, removed at the end.
set -euo pipefail
CK=${1:-build/src/cli/cloudkeep}
CK=$(readlink -f "$CK")
DEMO=$(mktemp -d /tmp/cloudkeep-demo.XXXXXX)
STORE="$DEMO/store"
HOST_MNT=""
cleanup() {
  if [ -n "$HOST_MNT" ]; then umount "$HOST_MNT" 2>/dev/null || true; fi
  if [ -n "${HOST_LOOP:-}" ]; then losetup -d "$HOST_LOOP" 2>/dev/null || true; fi
  rm -rf "$DEMO"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }
ck() { run "$CK" --store "$STORE" "$@"; }

IMGDIR="$DEMO"
if [ "$(id -u)" -eq 0 ] && command -v mkfs.xfs >/dev/null && command -v losetup >/dev/null; then
  step "As root: the volume images live on an XFS filesystem, so snapshots are captured by reflink"
  truncate -s 1G "$DEMO/host.img"
  mkfs.xfs -q "$DEMO/host.img"
  HOST_LOOP=$(losetup --find --show "$DEMO/host.img")
  HOST_MNT="$DEMO/host"
  mkdir -p "$HOST_MNT"
  mount "$HOST_LOOP" "$HOST_MNT"
  IMGDIR="$HOST_MNT"
else
  step "Not root: the volume image lives in $DEMO (read in place; no reflink)"
fi

VOL="$IMGDIR/app-volume.img"
step "Make a 256 MiB ext4 volume image with real mkfs, holding some files"
mkdir -p "$DEMO/files/etc" "$DEMO/files/data"
printf 'listen 443\nworkers 4\n' >"$DEMO/files/etc/app.conf"
head -c 20M /dev/urandom >"$DEMO/files/data/blob.bin"
(set +o pipefail; seq 1 400000 | sed 's/^/order /' | head -c 6M) >"$DEMO/files/data/orders.log"
truncate -s 256M "$VOL"
run mkfs.ext4 -q -F -d "$DEMO/files" "$VOL"
sha_first=$(sha256sum "$VOL" | cut -d' ' -f1)
echo "volume sha256: $sha_first"

step "First snapshot"
ck snapshot create "$VOL" --tag app=demo --description "first"
first=$("$CK" --store "$STORE" --json snapshot list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["id"])')

step "Change some files (new config, 2 MiB of new data) and take a second snapshot"
printf 'listen 443\nworkers 8\n' >"$DEMO/files/etc/app.conf"
head -c 2M /dev/urandom >"$DEMO/files/data/new.bin"
run mkfs.ext4 -q -F -d "$DEMO/files" "$VOL"
ck snapshot create "$VOL" --tag app=demo --description "after the change"

step "Both snapshots; the second stored only what changed"
ck snapshot list
ck snapshot show "$first"

step "Restore the first snapshot to a new image and prove it equals the original"
ck snapshot restore "$first" --to "$DEMO/restored.img"
sha_restored=$(sha256sum "$DEMO/restored.img" | cut -d' ' -f1)
echo "original  sha256: $sha_first"
echo "restored  sha256: $sha_restored"
if [ "$sha_first" != "$sha_restored" ]; then
  echo "demo: restore does not match the original" >&2
  exit 1
fi
echo "identical: the first snapshot restores byte for byte"
if command -v debugfs >/dev/null; then
  printf 'etc/app.conf in the restored image: '
  debugfs -R "cat /etc/app.conf" "$DEMO/restored.img" 2>/dev/null | tr '\n' ' '
  echo
fi

step "Verify every chunk in the store"
ck snapshot verify

step "Prune: keep only the newest snapshot — first as a dry run, then for real"
ck snapshot prune -v "$VOL" --keep-last 1 --dry-run
ck snapshot prune -v "$VOL" --keep-last 1
ck snapshot list

step "Done. The demo store and images are removed now; your own store defaults to /var/lib/cloudkeep (root)."
