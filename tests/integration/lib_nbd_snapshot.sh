# Helpers for the test_nbd_snapshot_* tests (bash; source after lib.sh).
#
# make_volume FILE SIZE_MB: an image with random data, compressible text and
#   holes (every 8th MiB random, every 8th+4 text, the rest holes).
# make_snapshot FILE: snapshots it into $STORE; sets SNAP.
# serve_snapshot NAME ARGS...: `cloudkeep --json snapshot serve ARGS` as a
#   daemon on a Unix socket $WORK/NAME.sock and 127.0.0.1:0; waits for its
#   JSON document; sets SERVE_PID, URI (Unix socket, export named by the
#   snapshot id) and TURI (TCP).
# chunk_of FILE OFFSET: the store path of the chunk holding OFFSET of FILE.
STORE="$WORK/store"
CHUNK=$((512 * 1024))

make_volume() {
  local img=$1 mb=$2 i
  truncate -s "${mb}M" "$img"
  for ((i = 0; i < mb; i += 8)); do
    dd if=/dev/urandom of="$img" bs=1M seek="$i" count=1 conv=notrunc status=none
    if ((i + 4 < mb)); then
      (set +o pipefail; yes "cloudkeep nbd line $i" | head -c 1M) |
        dd of="$img" bs=1M seek=$((i + 4)) conv=notrunc status=none
    fi
  done
}

make_snapshot() {
  expect_rc 0 "$CK" --store "$STORE" --json snapshot create "$1"
  SNAP="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
}

serve_snapshot() {
  local name=$1
  shift
  start_daemon "$name" '^}' "$CK" --store "$STORE" --json snapshot serve "$@" \
    --socket "$WORK/$name.sock" --listen 127.0.0.1:0
  SERVE_PID=$DAEMON_PID
  local doc
  doc="$(cat "$WORK/$name.out")"
  URI="$(json_get '[u for u in d["uris"] if u.startswith("nbd+unix")][0]' <<<"$doc")"
  TURI="$(json_get '[u for u in d["uris"] if u.startswith("nbd://")][0]' <<<"$doc")"
}

# stop_server PID: SIGTERM, and it must exit 0 within 20 s.
stop_server() {
  local pid=$1 i rc=0
  kill -TERM "$pid"
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "server $pid did not stop on SIGTERM"
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "server $pid exited $rc after SIGTERM"
}

chunk_of() {
  local img=$1 off=$2 h
  h=$(dd if="$img" bs=$CHUNK skip=$((off / CHUNK)) count=1 status=none | sha256sum | cut -c1-64)
  echo "$STORE/chunks/${h:0:2}/$h"
}

# make_gpt IMG START_MIB:SIZE_MIB...: writes a GPT (protective MBR, primary
# and backup header, Linux file system partitions) into IMG, with no
# partitioning tool (util-linux's fdisk package is not always installed).
make_gpt() {
  /usr/bin/python3 - "$@" <<'PY'
import os, struct, sys, uuid, zlib
path, parts = sys.argv[1], [tuple(int(x) for x in p.split(":")) for p in sys.argv[2:]]
size = os.path.getsize(path)
S = 512
last = size // S - 1
linux = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4").bytes_le
entries = bytearray(128 * 128)
for i, (start, length) in enumerate(parts):
    first = start * 1048576 // S
    end = first + length * 1048576 // S - 1
    name = f"part{i + 1}".encode("utf-16-le")
    entries[i * 128:(i + 1) * 128] = struct.pack("<16s16sQQQ72s", linux, uuid.uuid4().bytes_le,
                                                 first, end, 0, name)
ecrc = zlib.crc32(entries)
def header(current, backup, entries_lba):
    h = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, current, backup, 34,
                    last - 33, uuid.uuid4().bytes_le, entries_lba, 128, 128, ecrc)
    h = h[:16] + struct.pack("<I", zlib.crc32(h)) + h[20:]
    return h + bytes(S - len(h))
mbr = bytearray(S)
mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\2\0", 0xEE, b"\xff\xff\xff", 1, min(last, 0xFFFFFFFF))
mbr[510:512] = b"\x55\xaa"
with open(path, "r+b") as f:
    f.write(mbr)
    f.write(header(1, last, 2))
    f.write(entries)
    f.seek((last - 32) * S)
    f.write(entries)
    f.write(header(last, 1, last - 32))
PY
}
