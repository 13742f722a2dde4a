#!/usr/bin/env bash
# `snapshot serve --hydrate-to PATH`: usable at once; fio writes with
# verify=crc32c while the background copy runs; when complete PATH is the
# snapshot plus exactly fio's writes, and the map that marked it incomplete
# is gone. Killed (-9) in the middle, PATH is marked incomplete, and the
# same command resumes from where it was instead of starting over.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nbd_snapshot.sh"
need nbdinfo nbdcopy qemu-io fio cmp

# A denser volume than make_volume's: random data with a few holes.
img="$WORK/vol.img"
truncate -s 384M "$img"
for i in $(seq 0 8 376); do
  dd if=/dev/urandom of="$img" bs=1M seek="$i" count=6 conv=notrunc status=none
done
make_snapshot "$img"
expect_rc 0 "$CK" --store "$STORE" snapshot restore "$SNAP" --to "$WORK/restored.img"

# done_regions MAP: "DONE TOTAL" from the map file (docs/nbd-map-format.md).
done_regions() {
  /usr/bin/python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
bits, = struct.unpack_from("<Q", d, 32)
print(sum(bin(b).count("1") for b in d[4096:4096 + (bits + 7) // 8]), bits)
PY
}

echo "== hydrate under a concurrent fio write load"
T="$WORK/hydrated.img"
serve_snapshot h1 "$SNAP" --hydrate-to "$T" --progress-interval 200ms
doc="$(cat "$WORK/h1.out")"
expect_eq "$(json_get 'd["writable"]' <<<"$doc")" True
expect_eq "$(json_get 'd["hydrate"]["resumed"]' <<<"$doc")" False
expect_eq "$(json_get 'd["hydrate"]["total_bytes"]' <<<"$doc")" $((384 << 20))
expect_eq "$(json_get 'd["hydrate"]["map"]' <<<"$doc")" "$T.cloudkeep-hydrate"
fio_job=(--name=w --rw=randwrite --bs=4k --size=16M --offset=200M --verify=crc32c --verify_state_save=0
  --randseed=7 --verify_backlog=512)
[ -e "$T.cloudkeep-hydrate" ] || fail "PATH is not marked incomplete while hydrating"
expect_rc 0 fio "${fio_job[@]}" --ioengine=nbd --uri="$URI" --iodepth=16 --do_verify=1 \
  --output-format=json --output="$WORK/fio.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio.json")" 0 "fio error"
# Reads while hydrating equal the snapshot (outside fio's range).
expect_rc 0 qemu-io -r -f raw -c "read -v 0 16" "$TURI"
wait_for test ! -e "$T.cloudkeep-hydrate"
expect_contains "$(cat "$WORK/h1.err")" "hydrate complete"
expect_rc 0 nbdcopy "$URI" "$WORK/served.img"
stop_server "$SERVE_PID"
cmp "$T" "$WORK/served.img" || fail "the export and PATH differ after the hydrate"
cmp -n $((200 << 20)) "$T" "$WORK/restored.img" || fail "PATH differs before fio's range"
cmp -i $((216 << 20)) "$T" "$WORK/restored.img" || fail "PATH differs after fio's range"
# fio's own patterns, read straight from PATH: the copy overwrote none of them.
expect_rc 0 fio "${fio_job[@]}" --ioengine=psync --filename="$T" --verify_only \
  --output-format=json --output="$WORK/fio-verify.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio-verify.json")" 0 "fio verify of PATH"
# Complete: a second hydrate to PATH refuses to overwrite it.
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --hydrate-to "$T" --socket "$WORK/x.sock"
expect_contains "$ERR" "not an unfinished hydrate"

echo "== killed (-9) mid-hydrate, then resumed by the same command"
T2="$WORK/resume.img"
serve_snapshot h2 "$SNAP" --hydrate-to "$T2"
killed=""
for ((i = 0; i < 2000; i++)); do
  read -r d total < <(done_regions "$T2.cloudkeep-hydrate" 2>/dev/null || echo "0 0")
  if [ "$d" -gt 0 ] && [ "$d" -lt "$total" ]; then
    kill -9 "$SERVE_PID"
    killed="$d/$total"
    break
  fi
  sleep 0.01
done
wait "$SERVE_PID" 2>/dev/null || true
[ -n "$killed" ] || fail "could not catch the hydrate between 0 and 100%"
echo "killed with $killed regions recorded"
[ -e "$T2.cloudkeep-hydrate" ] || fail "a killed hydrate must leave PATH marked incomplete"
serve_snapshot h3 "$SNAP" --hydrate-to "$T2"
doc="$(cat "$WORK/h3.out")"
expect_eq "$(json_get 'd["hydrate"]["resumed"]' <<<"$doc")" True
[ "$(json_get 'd["hydrate"]["resumed_from_bytes"]' <<<"$doc")" -ge $((${killed%/*} * CHUNK)) ] ||
  fail "it did not resume from the map: $doc"
expect_contains "$(cat "$WORK/h3.err")" "resuming"
wait_for test ! -e "$T2.cloudkeep-hydrate"
stop_server "$SERVE_PID"
cmp "$T2" "$WORK/restored.img" || fail "the resumed hydrate differs from snapshot restore"

echo "== a block device as PATH: needs --hydrate-map, old contents are replaced"
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null; then
  make_volume "$WORK/small.img" 24
  make_snapshot "$WORK/small.img"
  head -c 32M /dev/urandom >"$WORK/dev.img"  # old contents, zeroes included nowhere
  dev=$(losetup --find --show "$WORK/dev.img")
  defer "detach_loop $dev '$WORK/dev.img'"
  expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --hydrate-to "$dev" --socket "$WORK/x.sock"
  expect_contains "$ERR" "--hydrate-map"
  serve_snapshot hb "$SNAP" --hydrate-to "$dev" --hydrate-map "$WORK/dev.map"
  wait_for test ! -e "$WORK/dev.map"
  stop_server "$SERVE_PID"
  cmp -n $((24 << 20)) "$dev" "$WORK/small.img" || fail "the hydrated device differs from the snapshot"
else
  echo "(not root: block device case skipped)"
fi
