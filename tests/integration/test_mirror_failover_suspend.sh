#!/usr/bin/env bash
# on_standby_loss = "suspend" (issue 13; docs/mirror.md, "Standby loss"): the
# primary cut off from its standby (replication link down, etcd reachable)
# neither outdates it nor acknowledges alone: a client write waits (latency,
# not an error) until the standby is back and in sync, then it is
# acknowledged; the second time an operator's `mirror promote --force` on
# the primary outdates the standby in etcd and the waiting write completes.
# Order of events is asserted, never durations.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
need etcd qemu-io arping md5sum stdbuf
TEST_OK=0
# lib.sh runs deferred commands with their output to /dev/null: the dump
# goes to fd 3, a copy of the test's stderr.
exec 3>&2
dump_logs() { [ "$TEST_OK" = 1 ] || tail -n 40 "$WORK"/a.log "$WORK"/b.log "$WORK"/*.out >&3 2>&1; }
defer dump_logs
fenced_hosts
start_etcd 1
fenced_resource 'on_standby_loss = "suspend"'
fenced_start

# one_write NAME BYTE: one 4 KiB write at 1 MiB and a flush through the service address.
one_write() {
  ip netns exec "$NS_C" qemu-io --image-opts \
    "driver=nbd,server.type=inet,server.host=$SERVICE,server.port=10809,export=web,reconnect-delay=60" \
    -c "write -P $2 1M 4k" -c flush >"$WORK/$1.out" 2>&1 &
  WRITER=$!
  defer "kill -9 $WRITER 2>/dev/null"
}
suspended_for_standby() {
  wait_st a 'd["fencing"]["suspended"] and "on_standby_loss" in d["fencing"].get("suspended_reason", "")' 60
}
byte_at_1m() { /usr/bin/python3 -c "f=open('$1','rb'); f.seek(1<<20); print(f.read(1)[0])"; }

# --- 1. the standby returns: the waiting write completes ------------------------------
ip -n "$NS_A" link set eth0 down
one_write w1 0x41
W1=$WRITER
suspended_for_standby
expect_eq "$(grep -c '^wrote' "$WORK/w1.out" || true)" 0 "a write acknowledged while suspended for the standby"
kill -0 "$W1" 2>/dev/null || fail "the client gave up while the primary was suspended"
expect_eq "$(st a 'd["fencing"].get("peer_record")')" UpToDate "suspend must not outdate the standby"
expect_not_contains "$(cat "$WORK/a.log")" "recorded b Outdated"
expect_eq "$(st a 'd["role"]')" Primary "a stays the primary (suspended)"
link_up
wait "$W1" || fail "the write failed after the standby returned: $(cat "$WORK/w1.out")"
expect_contains "$(cat "$WORK/w1.out")" "wrote 4096/4096"
in_sync
expect_eq "$(byte_at_1m "$WORK/b.img")" 65 "the write is on the standby"
same_md5 "after the standby returned"
T_SUSP=$(stamp a "I/O suspended: the standby b is gone")
T_RESUMED=$(stamp_last a "I/O resumed")
before "$T_SUSP" "$T_RESUMED" || fail "resumed ($T_RESUMED) after suspending ($T_SUSP)"

# --- 2. the operator continues alone: promote --force outdates the standby --------------
ip -n "$NS_A" link set eth0 down
one_write w2 0x42
W2=$WRITER
suspended_for_standby
expect_eq "$(grep -c '^wrote' "$WORK/w2.out" || true)" 0 "a write acknowledged while suspended for the standby"
expect_rc 0 ck_mirror promote web --node a --force
expect_contains "$ERR" "recorded Outdated"
wait "$W2" || fail "the write failed after promote --force: $(cat "$WORK/w2.out")"
expect_contains "$(cat "$WORK/w2.out")" "wrote 4096/4096"
expect_eq "$(st a 'd["fencing"].get("peer_record")')" Outdated "b recorded Outdated"
expect_contains "$(cat "$WORK/a.log")" "recorded b Outdated in etcd"
expect_eq "$(byte_at_1m "$WORK/a.img")" 66 "the write is on the primary"
# b is back: it resyncs and is recorded UpToDate again.
link_up
in_sync
wait_st a 'd["fencing"].get("peer_record") == "UpToDate"'
same_md5 "after b resynced"
expect_eq "$(st b 'd["role"]')" Secondary "b never promoted"
expect_not_contains "$(cat "$WORK/b.log")" "won the leader key"
stop_node b
stop_node a
TEST_OK=1
