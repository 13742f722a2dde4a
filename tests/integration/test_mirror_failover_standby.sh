#!/usr/bin/env bash
# The standby in trouble (issue 13), over a slow replication link: the link
# goes through the user-space delay bridge ($CK_DELAY_BRIDGE, 20 ms each
# way; this kernel has no netem).
#   1. a slow standby: the primary keeps the key and acknowledges (no false
#      failover: one term throughout a write load, writes wait for the round
#      trip); then the primary is SIGKILLed and the slow standby takes over
#      with no acknowledged write lost.
#   2. the standby SIGKILLed during a failover: the primary is SIGKILLed
#      under a write load, and the standby is SIGKILLed as soon as it has won
#      the leader key (mid-promotion). Both restart: exactly one is elected,
#      every write the client saw acknowledged is on it, the copies converge.
# Throughout, the nodes' acknowledging intervals never overlap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
BRIDGE="${CK_DELAY_BRIDGE:-delay_bridge}"
need etcd qemu-io arping md5sum stdbuf "$BRIDGE"
TEST_OK=0
# lib.sh runs deferred commands with their output to /dev/null: the dump
# goes to fd 3, a copy of the test's stderr.
exec 3>&2
dump_logs() { [ "$TEST_OK" = 1 ] || tail -n 40 "$WORK"/a.log "$WORK"/b.log "$WORK"/w*.out >&3 2>&1; }
defer dump_logs
fenced_hosts
# The replication veth pair becomes two pairs into a bridge namespace.
NS_W="$MP-w"
ip netns add "$NS_W"
defer "ip netns del '$NS_W'"
ip -n "$NS_A" link del eth0
ip -n "$NS_A" link add eth0 type veth peer name ya netns "$NS_W"
ip -n "$NS_B" link add eth0 type veth peer name yb netns "$NS_W"
ip -n "$NS_A" addr add "$IP_A/24" dev eth0
ip -n "$NS_B" addr add "$IP_B/24" dev eth0
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set eth0 gso_max_size 1500 up; done
ip -n "$NS_W" link set ya up
ip -n "$NS_W" link set yb up
ip netns exec "$NS_W" "$BRIDGE" ya yb 0.020 2>"$WORK/bridge.err" &
defer "kill $!; wait $! 2>/dev/null"
start_etcd 1
fenced_resource
fenced_start
leader_now() {
  local n
  for n in a b; do _st_true "$n" 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' && { echo "$n"; return 0; }; done
  return 1
}

# --- 1. a slow standby ------------------------------------------------------------------
TOKEN=$(st a 'd["fencing"]["token"]')
writer w1 0 400
W1=$WRITER
wait "$W1" || fail "qemu-io failed over the slow link: $(tail -3 "$WORK/w1.out")"
expect_eq "$(acked w1)" 400 "every write acknowledged over the slow link"
expect_eq "$(st a 'd["fencing"]["token"]')" "$TOKEN" "one term: the slow standby caused no failover"
expect_eq "$(st a 'd["fencing"]["suspended"]')" False "the primary is not suspended"
expect_eq "$(st a 'd["write_latency"]["p50_us"] >= 40000')" True "writes wait for the slow standby (40 ms round trip)"
expect_not_contains "$(cat "$WORK/b.log")" "won the leader key" "b was elected while a held the key"
writer w2 1000 1000
W2=$WRITER
wait_for acked_ge w2 50
kill_node_marked a
host_links a down
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 60
wait "$W2" || fail "qemu-io failed across the failover: $(tail -3 "$WORK/w2.out")"
expect_eq "$(acked w2)" 1000 "every write acknowledged across the failover to the slow standby"
check_writes "$WORK/b.img" 0 400 || fail "writes lost on the slow standby"
check_writes "$WORK/b.img" 1000 1000 || fail "acknowledged writes lost in the failover to the slow standby"
# a rejoins as the standby.
host_links a up
start_node a "${EXPORT_FLAGS[@]}"
in_sync 120
wait_st b 'd["fencing"].get("peer_record") == "UpToDate"' 60

# --- 2. the standby killed during the failover --------------------------------------------
writer w3 3000 1500
W3=$WRITER
wait_for acked_ge w3 100
WINS=$(grep -c "won the leader key" "$WORK/a.log" || true)
won_again() { [ "$(grep -c "won the leader key" "$WORK/a.log" || true)" -gt "$WINS" ]; }
kill_node_marked b
host_links b down
wait_for won_again
kill_node_marked a
kill -9 "$W3" 2>/dev/null || true
wait "$W3" 2>/dev/null || true
AT_KILL=$(acked w3)
# Both restart at once: they reconnect (and agree who resyncs whom) well
# before the killed holder's lease expires and the next election can run.
host_links b up
start_node a "${EXPORT_FLAGS[@]}"
start_node b "${EXPORT_FLAGS[@]}"
wait_for leader_now
NEW=$(leader_now)
OTHER=a
[ "$NEW" = a ] && OTHER=b
in_sync 120
expect_eq "$(st "$OTHER" 'd["role"]')" Secondary "one primary after both restarted"
check_writes "$WORK/$NEW.img" 3000 "$AT_KILL" || fail "acknowledged writes lost: standby killed during the failover"
same_md5 "after both restarted"
echo "standby killed during the failover: $AT_KILL writes acknowledged, $NEW elected after both restarted"
ack_intervals_disjoint || fail "two nodes acknowledged writes at the same time"
stop_node "$OTHER"
stop_node "$NEW"
TEST_OK=1
