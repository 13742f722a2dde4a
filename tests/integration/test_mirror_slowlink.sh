#!/usr/bin/env bash
# The mirror over a slow link: the standby sits behind a user-space delay
# bridge (tests/tools/delay_bridge, $CK_DELAY_BRIDGE from ctest: 2 ms each
# way and 200 Mbit/s, since this kernel has no netem). Under
# a write load the primary keeps serving; when the link is cut the bitmap
# grows; once restored the resync converges and the copies are identical.
. "$(dirname "$0")/lib.sh"
need_root
BRIDGE="${CK_DELAY_BRIDGE:-delay_bridge}"
need ip openssl fio md5sum /usr/bin/python3 "$BRIDGE"
P="ckms$$"
for n in a b w; do
  ip netns add "$P-$n"
  defer "ip netns del '$P-$n'"
  ip -n "$P-$n" link set lo up
done
ip -n "$P-a" link add eth0 type veth peer name ya netns "$P-w"
ip -n "$P-b" link add eth0 type veth peer name yb netns "$P-w"
ip -n "$P-a" addr add 10.254.0.1/24 dev eth0
ip -n "$P-b" addr add 10.254.0.2/24 dev eth0
for n in a b; do ip -n "$P-$n" link set eth0 gso_max_size 1500 up; done
ip -n "$P-w" link set ya up
ip -n "$P-w" link set yb up
ip netns exec "$P-w" "$BRIDGE" ya yb 0.002 --rate 200 2>"$WORK/bridge.err" &
defer "kill $!; wait $! 2>/dev/null"

SIZE=$((32 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$WORK/a.img"
truncate -s "$SIZE" "$WORK/b.img"
openssl rand -hex 32 >"$WORK/psk"
cat >"$WORK/m.toml" <<EOT
[resource.web]
psk_file = "$WORK/psk"
peer_timeout = "3s"
connect_interval = "200ms"
[[resource.web.node]]
name = "a"
address = "10.254.0.1:7789"
device = "$WORK/a.img"
meta = "$WORK/a.meta"
[[resource.web.node]]
name = "b"
address = "10.254.0.2:7789"
device = "$WORK/b.img"
meta = "$WORK/b.meta"
EOT
M() { "$CK" mirror "$@" --config "$WORK/m.toml" --run-dir "$WORK/run"; }
st() { "$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run" --node "$1" 2>/dev/null | json_get "$2"; }
wait_true() {
  local i
  for ((i = 0; i < ${3:-600}; i++)); do
    [ "$(st "$1" "$2" 2>/dev/null)" = True ] && return 0
    sleep 0.1
  done
  tail -n 20 "$WORK/a.log" "$WORK/b.log" >&2
  fail "timed out waiting for $1: $2"
}
expect_rc 0 M init web --node a --uptodate
expect_rc 0 M init web --node b
ip netns exec "$P-a" "$CK" mirror run web --config "$WORK/m.toml" --run-dir "$WORK/run" --node a --primary \
  --export-listen 127.0.0.1:10809 >"$WORK/a.log" 2>&1 &
defer "kill -9 $!"
ip netns exec "$P-b" "$CK" mirror run web --config "$WORK/m.toml" --run-dir "$WORK/run" --node b >"$WORK/b.log" 2>&1 &
defer "kill -9 $!"
wait_true b 'd["disk_state"] == "UpToDate" and d["connection"] == "Connected"' 900
expect_eq "$(md5sum <"$WORK/a.img")" "$(md5sum <"$WORK/b.img")" "full sync over the slow link"

# Write load over the slow link; the RTT shows in the write latency.
ip netns exec "$P-a" fio --name=slow --ioengine=nbd --uri=nbd://127.0.0.1:10809/ --rw=randwrite --bs=4k \
  --iodepth=4 --size=8M --time_based --runtime=8 --output-format=terse >"$WORK/fio.out" 2>&1 &
FIO=$!
sleep 2
# On a busy machine fio may not have written yet: wait (bounded) for writes to measure.
wait_true a 'd["write_latency"]["writes"] >= 100' 600
expect_eq "$(st a 'd["write_latency"]["p50_us"] >= 4000')" True "p50 write latency includes the 4 ms round trip"
ip -n "$P-b" link set eth0 down
wait_true a 'd["connection"] != "Connected" and d["out_of_sync_bytes"] > 0' 100
D1=$(st a 'd["out_of_sync_bytes"]')
sleep 2
D2=$(st a 'd["out_of_sync_bytes"]')
expect_eq "$(python3 -c "print($D2 >= $D1 > 0)")" True "the bitmap grows while the link is down"
ip -n "$P-b" link set eth0 up
wait "$FIO" || fail "fio failed over the slow link: $(cat "$WORK/fio.out")"
wait_true a 'd["connection"] == "Connected" and d["disk_state"] == "UpToDate" and d["out_of_sync_bytes"] == 0 and d["peer"]["disk_state"] == "UpToDate"' 900
expect_eq "$(md5sum <"$WORK/a.img")" "$(md5sum <"$WORK/b.img")" "resync over the slow link converged"
echo "slow link: $D2 bytes out of sync at reconnect; resynced $(st a 'd["last_resync"]')"
