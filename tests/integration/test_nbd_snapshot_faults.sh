#!/usr/bin/env bash
# Faults under `snapshot serve`: a chunk damaged in the store is an I/O
# error for the reads that touch it — never other bytes — with one log
# line naming it, while every other read, and the server, carry on; a
# client killed in the middle of its requests hurts nobody else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nbd_snapshot.sh"
need nbdinfo nbdcopy qemu-io fio cmp

make_volume "$WORK/vol.img" 32
make_snapshot "$WORK/vol.img"
# 8 MiB..9 MiB is random data: two chunks. Damage the first, in the middle of its payload.
bad=$(chunk_of "$WORK/vol.img" $((8 << 20)))
[ -f "$bad" ] || fail "no chunk file $bad"
hash=$(basename "$bad")
/usr/bin/python3 - "$bad" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
d[len(d) // 2] ^= 0x20
open(p, "r+b").write(d)
PY

serve_snapshot srv "$SNAP"

echo "== reads of the damaged chunk fail with EIO; the neighbours do not"
expect_rc 1 qemu-io -r -f raw -c "read 8M 4k" "$URI"
expect_contains "$OUT$ERR" "Input/output error"
expect_rc 1 qemu-io -r -f raw -c "read 7M 2M" "$TURI"  # spans it
expect_rc 0 qemu-io -r -f raw -c "read 8704k 4k" -c "read 7M 1M" -c "read 4M 64k" "$URI"
# The bytes around it are the snapshot's: copy everything but the damaged chunk.
/usr/bin/python3 - "$URI" "$WORK/vol.img" <<'PY' || fail "a read next to the damaged chunk returned wrong bytes"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
img = open(sys.argv[2], "rb").read()
C = 512 * 1024
for i in range(len(img) // C):
    if i == 16:
        try:
            h.pread(C, i * C)
        except nbd.Error as e:
            assert e.errno in (5, "EIO"), e
            continue
        raise SystemExit("the damaged chunk was read without an error")
    assert h.pread(C, i * C) == img[i * C:(i + 1) * C], i
PY
expect_rc 1 nbdcopy "$URI" "$WORK/copy.img"
n=$(grep -c "chunk $hash" "$WORK/srv.err" || true)
expect_eq "$n" 1 "one log line naming the damaged chunk"
expect_contains "$(cat "$WORK/srv.err")" "fails verification"
expect_rc 0 nbdinfo --size "$URI"

echo "== a client killed mid-request"
fio --name=k --ioengine=nbd --uri="$TURI" --rw=randread --bs=64k --iodepth=16 --size=8M \
  --offset=16M --time_based --runtime=30 >/dev/null 2>&1 &
victim=$!
sleep 1
kill -9 "$victim"
{ wait "$victim"; } 2>/dev/null || true
expect_rc 0 fio --name=after --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=8 \
  --size=8M --offset=16M --output-format=json --output="$WORK/fio.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio.json")" 0 "fio after the kill"
expect_rc 0 qemu-io -r -f raw -c "read 20M 1M" "$URI"
kill -0 "$SERVE_PID" || fail "the server died"
stop_server "$SERVE_PID"
expect_not_contains "$(cat "$WORK/srv.err")" "internal error"
