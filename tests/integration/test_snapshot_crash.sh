#!/usr/bin/env bash
# kill -9 of the real binary at many points of create, delete and prune:
# afterwards the store verifies, list shows no partial snapshot, and the next
# run cleans up what the dead one left (staged chunks, reflink clones).
. "$(dirname "$0")/lib.sh"
need_root
need mkfs.xfs /usr/bin/python3

mnt="$WORK/xfs"
mkfs_loop 2G xfs "$mnt"
S="$mnt/store"
img="$mnt/vol.img"
ck() { "$CK" --store "$S" "$@"; }
head -c $((128 * 1024 * 1024)) /dev/urandom >"$img"
expect_rc 0 ck snapshot create "$img"

check_store() {
  local what=$1
  expect_rc 0 ck --json snapshot verify
  [ "$(json_get 'd["ok"]' <<<"$OUT")" = "True" ] || fail "store does not verify after killing $what"
  # Nothing half-written is listed. A manifest killed between write and rename
  # stays as ID.json.tmp-PID, which list and verify ignore and the next writer
  # removes (checked after the loop); anything else is a stray file.
  if ls "$S/snapshots" | grep -v '\.json$' | grep -v '\.json\.tmp-[0-9]*$'; then
    fail "stray file in snapshots/ after killing $what"
  fi
  local listed
  listed=$(ck --json snapshot list | json_get 'len(d["snapshots"])')
  expect_eq "$listed" "$(ls "$S/snapshots" | grep -c '\.json$')" "listed snapshots = complete manifests"
}

staged() { find "$S/tmp" -name 'chunk-*' 2>/dev/null | wc -l; }

# Kill points are chosen by progress, not by time: after N chunks were staged
# (N = 0 … 110), and — for the last iterations — once staged chunks start
# moving into the store, between publishing and the manifest.
kills=0
for i in $(seq 0 11); do
  # 64 MiB of new data: 128 new chunks for every create to stage.
  dd if=/dev/urandom of="$img" bs=1M count=64 seek=$(((i % 2) * 64)) conv=notrunc status=none
  (exec "$CK" --store "$S" snapshot create "$img" >/dev/null 2>&1) &
  pid=$!
  if [ "$i" -lt 10 ]; then
    target=$((i * 12))
    while kill -0 "$pid" 2>/dev/null && [ "$(staged)" -lt "$target" ]; do sleep 0.005; done
    [ "$target" -gt 0 ] || while kill -0 "$pid" 2>/dev/null && [ -z "$(ls "$S/tmp" 2>/dev/null)" ]; do sleep 0.002; done
  else
    peak=0
    while kill -0 "$pid" 2>/dev/null; do
      n=$(staged)
      if [ "$n" -gt "$peak" ]; then peak=$n; elif [ "$peak" -gt 100 ] && [ "$n" -lt "$peak" ]; then break; fi
      sleep 0.002
    done
  fi
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  check_store "create #$i"
done
echo "killed $kills of 12 creates in flight"
[ "$kills" -ge 8 ] || fail "too few creates were still running when killed ($kills)"

# The next run cleans up: no clone beside the image, tmp/ empty, no unreferenced chunks.
expect_rc 0 ck snapshot create "$img"
[ -z "$(ls -A "$mnt" | grep cloudkeep-snap || true)" ] || fail "reflink clone left behind: $(ls -A "$mnt")"
[ -z "$(ls -A "$S/tmp")" ] || fail "tmp/ not cleaned: $(ls -A "$S/tmp")"
[ -z "$(ls "$S/snapshots" | grep '\.tmp-' || true)" ] || fail "half-written manifest left: $(ls "$S/snapshots")"
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" "0" "garbage left after recovery"

# Kill deletes and prunes in flight.
for i in $(seq 1 6); do
  ids=($(ck --json snapshot list | json_get '" ".join(s["id"] for s in d["snapshots"])'))
  [ "${#ids[@]}" -ge 2 ] || expect_rc 0 ck snapshot create "$img"
  ids=($(ck --json snapshot list | json_get '" ".join(s["id"] for s in d["snapshots"])'))
  if [ $((i % 2)) -eq 0 ]; then
    (exec "$CK" --store "$S" snapshot delete "${ids[0]}" >/dev/null 2>&1) &
  else
    (exec "$CK" --store "$S" snapshot prune -v "$img" --keep-last 1 >/dev/null 2>&1) &
  fi
  pid=$!
  sleep "0.0$i"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  check_store "delete/prune #$i"
  dd if=/dev/urandom of="$img" bs=1M count=2 seek=$((i * 9)) conv=notrunc status=none
  expect_rc 0 ck snapshot create "$img"
done

# What is listed restores to what was snapshotted.
last="$(ck --json snapshot list | json_get 'd["snapshots"][-1]["id"]')"
expect_rc 0 ck snapshot restore "$last" --to "$WORK/last.img"
cmp "$img" "$WORK/last.img" || fail "newest snapshot does not restore to the image"
