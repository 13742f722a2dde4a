#!/usr/bin/env bash
# The NBD server core (src/nbd) against the clients people use: nbdinfo,
# nbdsh (libnbd, strict checks off to send what a careful client would
# not), qemu-io, qemu-img, nbdcopy and fio's nbd engine — and against
# hostile clients: garbage handshakes, idle connection floods, a client
# that never reads its replies, one killed mid-request. The server is
# nbd_test_server, the core over one file (tests/unit/nbd).
. "$(dirname "$0")/lib.sh"
# nbdsh is "python3 -m nbd": run it with Debian's python3 (python3-libnbd), not the first on PATH.
need nbdinfo /usr/bin/nbdsh nbdcopy qemu-io qemu-img fio
SRV="${CK_BUILD_DIR:?}/tests/unit/nbd/nbd_test_server"
[ -x "$SRV" ] || fail "no $SRV (build the tests)"
PY=/usr/bin/python3

IMG="$WORK/disk.img"
truncate -s 64M "$IMG"
# Data at 1 MiB and 40 MiB, holes elsewhere.
printf 'hello, nbd' | dd of="$IMG" bs=1M seek=1 conv=notrunc status=none
dd if=/dev/urandom of="$IMG" bs=1M seek=40 count=2 conv=notrunc status=none
SOCK="$WORK/nbd.sock"
start_daemon srv '^listening' "$SRV" "$IMG" --name disk --description "test disk" \
  --socket "$SOCK" --listen 127.0.0.1:0 --max-connections 64 --reply-timeout-ms 2000 \
  --handshake-timeout-ms 2000
SRV_PID=$DAEMON_PID
TCP=$(sed -n 's/^listening .*\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/srv.out")
[ -n "$TCP" ] || fail "no TCP address in: $(cat "$WORK/srv.out")"
URI="nbd+unix:///disk?socket=$SOCK"
TURI="nbd://$TCP/disk"

echo "== nbdinfo: size, capabilities, block sizes, list"
expect_rc 0 nbdinfo --json "$URI"
expect_eq "$(json_get 'd["exports"][0]["export-size"]' <<<"$OUT")" 67108864 "export size"
expect_eq "$(json_get 'd["exports"][0]["is_read_only"]' <<<"$OUT")" False "read-only"
for cap in can_flush can_fua can_multi_conn can_trim can_zero can_fast_zero can_cache can_df; do
  expect_eq "$(json_get "d['exports'][0]['$cap']" <<<"$OUT")" True "$cap"
done
expect_eq "$(json_get 'd["exports"][0]["block_size_maximum"]' <<<"$OUT")" 33554432 "max payload"
expect_eq "$(json_get 'd["exports"][0]["description"]' <<<"$OUT")" "test disk" "description"
expect_eq "$(json_get '[c for c in d["exports"][0]["contexts"]]' <<<"$OUT")" "['base:allocation']" "contexts"
expect_rc 0 nbdinfo --can flush "$TURI"
expect_rc 0 nbdinfo --list "nbd+unix:///?socket=$SOCK"
expect_contains "$OUT" "disk"

echo "== nbdinfo --map: holes and data as on disk"
expect_rc 0 nbdinfo --map --json "$URI"
$PY - "$OUT" <<'PY' || fail "map does not match the file's layout"
import json, sys
m = json.loads(sys.argv[1])
data = [(e["offset"], e["length"]) for e in m if e["type"] & 1 == 0]
holes = sum(e["length"] for e in m if e["type"] == 3)
total = sum(e["length"] for e in m)
assert total == 64 << 20, total
assert any(o <= 1 << 20 < o + l for o, l in data), data
assert any(o <= 40 << 20 and o + l >= 42 << 20 for o, l in data), data
assert holes >= 60 << 20, holes
PY

echo "== qemu-io: write -P, read -P, write -z, discard, flush"
expect_rc 0 qemu-io -f raw -c 'write -P 0xab 4M 1M' -c 'read -P 0xab 4M 1M' \
  -c 'write -z 4M 64k' -c 'read -P 0 4M 64k' -c 'discard 8M 1M' -c 'read -P 0 8M 1M' \
  -c 'write -P 0x5a -f 12M 128k' -c 'flush' "$URI"
expect_not_contains "$OUT$ERR" "Pattern verification failed"
expect_not_contains "$OUT$ERR" "failed"
cmp <(dd if="$IMG" bs=64k skip=$((4 * 16 + 1)) count=15 status=none) \
  <(head -c $((15 * 65536)) /dev/zero | tr '\0' '\253') || fail "write -P did not reach the file"

echo "== qemu-img compare and nbdcopy (4 connections) byte-exact"
expect_rc 0 qemu-img compare -f raw -F raw "$IMG" "$TURI"
expect_rc 0 nbdcopy --connections=4 --requests=16 "$URI" "$WORK/copy.img"
cmp "$IMG" "$WORK/copy.img" || fail "nbdcopy copy differs"
expect_rc 0 nbdcopy "$WORK/copy.img" "$TURI"

echo "== fio nbd engine: random writes at depth 16 with crc32c verify"
expect_rc 0 fio --name=v --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
  --size=16M --offset=16M --verify=crc32c --verify_state_save=0 --verify_backlog=256 --do_verify=1 \
  --output-format=json --output="$WORK/fio.json"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio.json")" 0 "fio error"
expect_eq "$(json_get 'd["jobs"][0]["write"]["io_bytes"]' <"$WORK/fio.json")" 16777216 "fio wrote"

echo "== nbdsh without strict checks: what a careful client would never send"
expect_rc 0 /usr/bin/python3 -m nbd -u "$URI" -c '
import errno
h.set_strict_mode(0)
def expect_err(f, code):
    try:
        f()
    except nbd.Error as e:
        assert e.errnum == code, (e, code)
        return
    raise AssertionError("no error")
expect_err(lambda: h.pread(4096, h.get_size() - 512), errno.EINVAL)
expect_err(lambda: h.pwrite(b"x" * 512, h.get_size()), errno.EINVAL)
expect_err(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA), errno.EINVAL)
expect_err(lambda: h.trim(1 << 20, h.get_size() - 4096), errno.EINVAL)
h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)   # the file backend zeroes fast
assert h.pread(512, 1 << 20)[:10] == b"hello, nbd"
# No metadata context was negotiated: BLOCK_STATUS is refused.
expect_err(lambda: h.block_status(65536, 0, lambda *a: 0), errno.EINVAL)
h.cache(65536, 0)
h.flush()
'
expect_rc 0 /usr/bin/python3 -m nbd --base-allocation -u "$URI" -c '
h.set_strict_mode(0)
assert h.can_meta_context("base:allocation")
seen = []
def cb(ctx, off, ents, err):
    seen.append((ctx, off, list(ents)))
h.block_status(8 << 20, 32 << 20, cb, nbd.CMD_FLAG_REQ_ONE)
assert len(seen) == 1 and len(seen[0][2]) == 2, seen   # exactly one (length, flags) pair
assert seen[0][2][0] <= 8 << 20 and seen[0][2][1] == 3, seen  # a hole, reads as zeroes
seen.clear()
h.block_status(4 << 20, 40 << 20, cb)
assert seen[0][2][1] == 0, seen  # the random data at 40 MiB is allocated
'

echo "== hostile clients: garbage, a flood of idle connections, a client that never reads"
$PY - "$SOCK" <<'PY'
import os, socket, struct, sys, time
sock = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sock); return s
# Garbage after the greeting, and a truncated option.
for junk in [b"\xff" * 64, struct.pack(">I", 3) + b"IHAVEOPT" + b"\x00\x00", b""]:
    s = conn(); s.recv(18); s.sendall(junk); s.close()
# 80 idle connections against a limit of 64: the excess is closed at once.
idle = [conn() for _ in range(80)]
time.sleep(0.5)
closed = 0
for s in idle:
    s.setblocking(False)
    try:
        d = s.recv(18)
        if d == b"":
            closed += 1
    except BlockingIOError:
        pass
assert closed >= 16, closed
for s in idle: s.close()
# A client killed in the middle of a write payload.
go = struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0)
pid = os.fork()
if pid == 0:
    c = conn(); c.recv(18); c.sendall(struct.pack(">I", 3))
    c.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(go)) + go)
    c.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, 0, 1 << 20) + b"x" * 1000)
    os.kill(os.getpid(), 9)
os.waitpid(pid, 0)
PY
# A client that asks for 300 MiB of reads and never reads a reply: after
# the reply timeout (2 s here) the server gives up on it.
$PY - "$SOCK" >"$WORK/stuck.out" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(18)
s.sendall(struct.pack(">I", 3))
go = struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0)
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(go)) + go)
s.settimeout(10)
sent = 0
for i in range(300):
    try:
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, 0, 1 << 20)); sent += 1
    except OSError:
        break
time.sleep(4)
got = 0
t0 = time.time()
while time.time() - t0 < 10:
    try:
        d = s.recv(1 << 20)
    except (ConnectionResetError, socket.timeout):
        break
    if not d:
        break
    got += len(d)
assert got < 300 << 20, ("the server kept the stuck client", got)
print("stuck client: sent", sent, "requests, got", got, "bytes before the server closed")
PY
STUCK=$!
sleep 1
# Other clients are served while the non-reading one is stuck.
expect_rc 0 nbdinfo --size "$URI"
expect_eq "$OUT" 67108864 "size while a client is stuck"
wait "$STUCK" || fail "stuck-client check: $(cat "$WORK/stuck.out")"
cat "$WORK/stuck.out"
kill -0 "$SRV_PID" || fail "the server died"
expect_rc 0 nbdinfo --size "$TURI"

echo "== SIGTERM: clean exit, socket removed"
kill -TERM "$SRV_PID"
wait "$SRV_PID" || fail "server exit status $?"
[ ! -e "$SOCK" ] || fail "the Unix socket was left behind"
grep -q '^connections_total=' "$WORK/srv.out" || fail "no counters printed"
