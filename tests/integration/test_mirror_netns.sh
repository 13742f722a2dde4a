#!/usr/bin/env bash
# The mirror between two hosts (network namespaces joined by veth): initial
# full sync, steady fio load with verify, the standby SIGKILLed and restarted
# under load, the link cut and restored, online verify of a flipped byte,
# the primary SIGKILLed and the standby promoted (every acknowledged write
# present), the old primary rejoining, and a split brain provoked, detected
# and resolved. After each: both backing files byte-identical (md5).
# Not covered here: XFS mounted through the export (no nbd kernel module on
# this machine); the slow link through a delay bridge is test_mirror_slowlink.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
need fio qemu-io qemu-img nbdcopy md5sum
/usr/bin/python3 -c "import nbd" 2>/dev/null || skip_or_fail "python3-libnbd"

mirror_hosts
SIZE=$((64 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$WORK/a.img"
truncate -s "$SIZE" "$WORK/b.img"
mirror_config "$WORK/mirror.toml"
EXPORT=127.0.0.1:10809
NBD="nbd://$EXPORT/"

# --- init and the initial full sync -------------------------------------------
expect_rc 0 ck_mirror init web --node a --uptodate
expect_rc 0 ck_mirror init web --node b
expect_contains "$OUT" Inconsistent
expect_rc 2 ck_mirror init web --node b
expect_contains "$ERR" "exists (--force"
start_node a --export-listen "$EXPORT"
start_node b --export-listen "$EXPORT"
in_sync
same_md5 "after the initial full sync"
expect_contains "$(cat "$WORK/a.log")" "resync to b done"

# Promote a; b refuses to become a second primary while connected.
expect_rc 0 ck_mirror promote web --node a
expect_rc 2 ck_mirror promote web --node b
expect_contains "$ERR" "is primary"
wait_st b 'd["peer"]["role"] == "Primary"'

# --- steady fio load through the export, with verify ------------------------
expect_rc 0 in_a fio --name=steady --ioengine=nbd --uri="$NBD" --rw=randwrite --bs=4k --iodepth=16 \
  --size=32M --verify=crc32c --verify_state_save=0 --verify_backlog=512 --do_verify=1 --output-format=terse
expect_rc 0 in_a qemu-io -f raw "$NBD" -c "write -P 0x5a 1M 2M" -c "flush" -c "write -f -P 0x6b 8M 64k"
expect_rc 0 in_a qemu-io -f raw "$NBD" -c "read -P 0x5a 1M 2M"
same_md5 "after steady fio load"
expect_eq "$(st a 'd["write_latency"]["writes"] > 0 and d["write_latency"]["p99_us"] >= d["write_latency"]["p50_us"] > 0')" True "write latency"
expect_rc 0 "$CK" mirror status web --config "$CFG" --run-dir "$WORK/run"
expect_contains "$OUT" "UpToDate"
expect_contains "$OUT" "Primary"

# --- standby SIGKILLed and restarted under load: only dirty regions travel ----
in_a fio --name=load --ioengine=nbd --uri="$NBD" --rw=randwrite --bs=4k --iodepth=8 --size=8M --offset=16M \
  --time_based --runtime=6 --output-format=terse >"$WORK/fio-kill.out" 2>&1 &
FIO=$!
sleep 1
kill_node b
wait_st a 'd["connection"] != "Connected" and d["out_of_sync_bytes"] > 0' 10
sleep 1
DIRTY=$(st a 'd["out_of_sync_bytes"]')
start_node b --export-listen "$EXPORT"
wait "$FIO" || fail "fio failed while the standby was killed: $(cat "$WORK/fio-kill.out")"
in_sync
same_md5 "after the standby was killed and restarted"
RESYNCED=$(st a 'd["last_resync"]["bytes"]')
echo "standby kill: $DIRTY bytes out of sync when it restarted, $RESYNCED bytes resynced (device $SIZE)"
expect_eq "$(python3 -c "print(0 < $RESYNCED <= 8*1024*1024 + 64*1024)")" True "only the dirty regions (within the 8 MiB written) travel"

# --- link cut and restored: the primary keeps serving ------------------------
in_a fio --name=cut --ioengine=nbd --uri="$NBD" --rw=randwrite --bs=64k --iodepth=4 --size=16M --offset=32M \
  --time_based --runtime=6 --output-format=terse >"$WORK/fio-cut.out" 2>&1 &
FIO=$!
sleep 1
link_down
wait_st a 'd["connection"] != "Connected" and d["out_of_sync_bytes"] > 0' 10
sleep 2
link_up
wait "$FIO" || fail "fio failed while the link was down: $(cat "$WORK/fio-cut.out")"
in_sync
same_md5 "after the link was cut and restored"

# --- a stuck standby (SIGSTOP): disconnected after peer_timeout, primary serves on
in_a fio --name=stuck --ioengine=nbd --uri="$NBD" --rw=randwrite --bs=4k --iodepth=4 --size=4M --offset=48M \
  --time_based --runtime=7 --output-format=terse >"$WORK/fio-stuck.out" 2>&1 &
FIO=$!
sleep 1
kill -STOP "$PID_b"
wait_st a 'd["connection"] != "Connected" and d["out_of_sync_bytes"] > 0' 10
expect_contains "$(st a 'd["last_event"]')" "2s"
sleep 1
kill -CONT "$PID_b"
wait "$FIO" || fail "fio failed while the standby was stuck: $(cat "$WORK/fio-stuck.out")"
in_sync
same_md5 "after a stuck standby"

# --- online verify finds a byte flipped behind cloudkeep's back --------------
printf '\xff' | dd of="$WORK/b.img" bs=1 seek=$((5 * 1024 * 1024 + 77)) conv=notrunc status=none
expect_rc 1 ck_mirror verify web --node a
expect_contains "$OUT" "$((5 * 1024 * 1024))"
expect_rc 0 "$CK" --json mirror verify web --config "$CFG" --run-dir "$WORK/run" --node a --resync
expect_eq "$(json_get 'd["mismatches"] == [{"offset": 5242880, "length": 65536}] and d["resynced"]' <<<"$OUT")" True "verify --resync"
same_md5 "after verify --resync"
expect_rc 0 ck_mirror verify web --node a

# --- primary SIGKILLed under load; standby promoted; acknowledged writes kept --
cat >"$WORK/acked.py" <<'PY'
# Writes numbered, checksummed 4 KiB records at rotating offsets, one at a
# time. Before each write it logs "W i offset sha256", after the write is
# acknowledged "A i". The check accepts, per offset, the last acknowledged
# record, or the one record that was in flight when the primary died.
import hashlib, os, sys, nbd
mode, uri, log = sys.argv[1], sys.argv[2], sys.argv[3]
h = nbd.NBD()
h.connect_uri(uri)
if mode == "write":
    with open(log, "a", buffering=1) as f:
        for i in range(1000000):
            off = (i % 4096) * 4096 + 40 * 1024 * 1024
            rec = (b"%08d" % i) + os.urandom(4088)
            f.write("W %d %d %s\n" % (i, off, hashlib.sha256(rec).hexdigest()))
            h.pwrite(rec, off)
            f.write("A %d\n" % i)
else:
    intent, acked, last = {}, {}, None
    for line in open(log):
        p = line.split()
        if p[0] == "W":
            intent[int(p[1])] = (int(p[2]), p[3])
            last = int(p[1])
        elif len(p) == 2:
            off, sha = intent[int(p[1])]
            acked[off] = sha
            if last == int(p[1]):
                last = None
    bad = []
    for off, sha in acked.items():
        got = hashlib.sha256(h.pread(4096, off)).hexdigest()
        if got != sha and not (last is not None and intent[last] == (off, got)):
            bad.append(off)
    print("checked", len(acked), "offsets of", sum(1 for l in open(log) if l[0] == "A"),
          "acknowledged writes,", len(bad), "missing")
    sys.exit(1 if bad or not acked else 0)
PY
in_a /usr/bin/python3 "$WORK/acked.py" write "$NBD" "$WORK/acked.log" 2>"$WORK/acked.err" &
W=$!
sleep 2
kill_node a
wait "$W" || true
expect_eq "$(python3 -c "print($(grep -c ^A "$WORK/acked.log") > 10)")" True "writes were acknowledged before the kill"
wait_st b 'd["connection"] != "Connected"' 10
expect_rc 0 ck_mirror promote web --node b
expect_contains "$ERR" "cannot exclude a second primary"
expect_rc 0 in_b /usr/bin/python3 "$WORK/acked.py" check "$NBD" "$WORK/acked.log"
expect_contains "$OUT" " 0 missing"
expect_rc 0 in_b qemu-io -f raw "$NBD" -c "write -P 0x77 0 1M"
# The old primary restarts: it crashed as primary, becomes the target and rolls back.
start_node a --export-listen "$EXPORT"
in_sync
same_md5 "after the old primary rejoined as standby"
expect_contains "$(cat "$WORK/a.log")" "stopped as primary without a demote"
expect_contains "$(cat "$WORK/a.log")" "resync from b done"

# --- split brain: provoked, detected, refused, resolved ---------------------
link_down
wait_st a 'd["connection"] != "Connected"' 10
expect_rc 0 ck_mirror promote web --node a
expect_rc 0 in_a qemu-io -f raw "$NBD" -c "write -P 0x11 2M 256k"
expect_rc 0 in_b qemu-io -f raw "$NBD" -c "write -P 0x22 3M 128k"
link_up
wait_st a 'd["connection"] == "SplitBrain"' 20
wait_st b 'd["connection"] == "SplitBrain"' 20
expect_eq "$(st a 'd["split_brain"]["divergence_bytes"] >= 384*1024')" True "divergence reported"
expect_rc 0 "$CK" mirror status web --config "$CFG" --run-dir "$WORK/run"
expect_contains "$OUT" "SPLIT BRAIN"
sleep 1
expect_eq "$(st b 'd["connection"]')" SplitBrain "nodes stay apart without an operator"
expect_rc 2 ck_mirror resolve web --node a --discard c
expect_rc 2 ck_mirror resolve web --node a --discard a
expect_contains "$ERR" "demote"
expect_rc 0 ck_mirror demote web --node a
expect_rc 0 ck_mirror resolve web --node a --discard a
in_sync
same_md5 "after split brain resolved"
expect_rc 0 in_b qemu-io -f raw "$NBD" -c "read -P 0x22 3M 128k"
expect_rc 0 in_b qemu-io -f raw "$NBD" -c "read -P 0x77 0 1M"
# The export copied out with nbdcopy matches the backing file.
expect_rc 0 in_b nbdcopy "$NBD" "$WORK/copy.img"
expect_eq "$(md5sum <"$WORK/copy.img")" "$(md5sum <"$WORK/b.img")" "nbdcopy of the export"
stop_node a
stop_node b
