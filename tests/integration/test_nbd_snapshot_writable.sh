#!/usr/bin/env bash
# `snapshot serve --writable`: qemu-io (read -P, write -P, write -z,
# discard, flush) and fio's nbd engine with verify=crc32c write into the
# copy-on-write overlay; the store never changes and the snapshot still
# restores to the original; with --overlay FILE the writes survive a
# restart, and an overlay of another snapshot is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nbd_snapshot.sh"
need nbdinfo nbdcopy qemu-io qemu-img fio cmp

make_volume "$WORK/vol.img" 32
make_snapshot "$WORK/vol.img"
store_sum() { (cd "$STORE" && find chunks snapshots -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
before=$(store_sum)

echo "== temporary overlay: capabilities"
serve_snapshot srv "$SNAP" --writable
expect_eq "$(json_get 'd["writable"]' <"$WORK/srv.out")" True
expect_eq "$(json_get 'd["overlay"]["temporary"]' <"$WORK/srv.out")" True
expect_rc 0 nbdinfo --json "$URI"
for cap in can_flush can_fua can_trim can_zero can_fast_zero can_multi_conn; do
  expect_eq "$(json_get "d['exports'][0]['$cap']" <<<"$OUT")" True "$cap"
done
expect_eq "$(json_get 'd["exports"][0]["is_read_only"]' <<<"$OUT")" False

echo "== qemu-io: write -P, read -P, write -z, discard, flush; partial blocks merge with the snapshot"
expect_rc 0 qemu-io -f raw \
  -c 'write -P 0xab 1M 1M' -c 'read -P 0xab 1M 1M' \
  -c 'write -z 1M 64k' -c 'read -P 0 1M 64k' -c 'read -P 0xab 1088k 960k' \
  -c 'discard 12M 1M' -c 'read -P 0 12M 1M' \
  -c 'write -P 0x5a -f 20M 100' -c 'flush' -c 'read -P 0x5a 20M 100' "$URI"
expect_not_contains "$OUT$ERR" "verification failed"
expect_not_contains "$OUT$ERR" "failed"
# The rest of the block around the 100-byte write is still the snapshot's.
expect_rc 0 nbdcopy "$URI" "$WORK/now.img"
cmp -i $((20 * 1048576 + 100)) -n 3996 "$WORK/now.img" "$WORK/vol.img" ||
  fail "a partial-block write did not keep the rest of the block"
cmp -n $((1 << 20)) "$WORK/now.img" "$WORK/vol.img" || fail "the first MiB changed"

echo "== fio nbd engine: random writes at depth 16, verify=crc32c"
expect_rc 0 fio --name=v --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
  --size=8M --offset=24M --verify=crc32c --verify_state_save=0 --verify_backlog=256 --do_verify=1 \
  --output-format=json --output="$WORK/fio.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio.json")" 0 "fio error"
expect_eq "$(json_get 'd["jobs"][0]["write"]["io_bytes"]' <"$WORK/fio.json")" $((8 << 20)) "fio wrote"
# Unaligned writes too (512-byte blocks at depth 8).
expect_rc 0 fio --name=u --ioengine=nbd --uri="$TURI" --rw=randwrite --bs=512 --iodepth=8 \
  --size=1M --offset=5M --verify=crc32c --verify_state_save=0 --do_verify=1 --output-format=json --output="$WORK/fio2.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio2.json")" 0 "fio 512-byte error"
stop_server "$SERVE_PID"
expect_eq "$(store_sum)" "$before" "the store was written"

echo "== the snapshot itself is unchanged"
expect_rc 0 "$CK" --store "$STORE" snapshot restore "$SNAP" --to "$WORK/restored.img"
cmp "$WORK/vol.img" "$WORK/restored.img" || fail "the snapshot changed"

echo "== --overlay FILE keeps flushed writes across a restart"
OV="$WORK/overlay.img"
serve_snapshot p1 "$SNAP" --writable --overlay "$OV"
expect_eq "$(json_get 'd["overlay"]["resumed"]' <"$WORK/p1.out")" False
expect_rc 0 qemu-io -f raw -c 'write -P 0xcd 3M 5000' -c 'write -z 9M 8k' -c flush "$URI"
stop_server "$SERVE_PID"
[ -f "$OV.cloudkeep-overlay" ] || fail "no overlay map beside $OV"
serve_snapshot p2 "$SNAP" --writable --overlay "$OV"
expect_eq "$(json_get 'd["overlay"]["resumed"]' <"$WORK/p2.out")" True
expect_rc 0 qemu-io -f raw -r -c 'read -P 0xcd 3M 5000' -c 'read -P 0 9M 8k' "$URI"
expect_not_contains "$OUT$ERR" "failed"
stop_server "$SERVE_PID"

echo "== an overlay of another snapshot, or a file that is not an overlay, is refused"
make_volume "$WORK/vol2.img" 8
expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$WORK/vol2.img"
other="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$other" --writable --overlay "$OV" --socket "$WORK/x.sock"
expect_contains "$ERR" "$SNAP"
echo precious >"$WORK/precious"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --writable --overlay "$WORK/precious" --socket "$WORK/x.sock"
expect_contains "$ERR" "not a cloudkeep overlay"
expect_eq "$(cat "$WORK/precious")" precious
