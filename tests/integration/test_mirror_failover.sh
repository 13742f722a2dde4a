#!/usr/bin/env bash
# Fenced automatic failover through etcd (issue 13; docs/mirror.md, "Fencing
# and automatic failover"). Three network namespaces: hosts A and B (their
# replication link, eth0) and C, a service LAN bridge where a real etcd runs
# and the client (qemu-io through qemu's NBD client with reconnect-delay)
# reaches the export at the service address that moves to the primary.
#   1. bootstrap: A (UpToDate) is elected, takes the address and serves; a
#      manual promote of B is refused.
#   2. A SIGKILLed (then its links down) while qemu-io writes a pattern per
#      offset: B takes the key, the address and the export by itself; qemu-io
#      sees no error, and every acknowledged write is on B's backing file.
#      A restarts as the standby and resyncs.
#   3. B (now primary) partitioned from A and etcd but alive: it suspends
#      before its lease expires (by the log stamps: its suspension precedes
#      A's election), a client in B's own namespace never gets a write
#      acknowledged, A promotes; on healing B demotes itself, resyncs, and
#      the copies are byte-identical.
#   4. A (primary) partitioned from B only: it records B Outdated in etcd and
#      goes on; A dies; B refuses to campaign, refuses a plain promote, and
#      `mirror promote --force` promotes it with a warning.
# Order of events is asserted, never durations; the measured failover times
# are printed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
need etcd qemu-io arping md5sum stdbuf

# The daemons' and etcd's logs when the test fails (the deferred run order is
# reversed, so this runs before $WORK goes).
TEST_OK=0
# lib.sh runs deferred commands with their output to /dev/null: the dump
# goes to fd 3, a copy of the test's stderr.
exec 3>&2
dump_logs() { [ "$TEST_OK" = 1 ] || tail -n 40 "$WORK"/a.log "$WORK"/b.log "$WORK"/w*.out >&3 2>&1; }
defer dump_logs
# The hosts, the service LAN, etcd (in the LAN's namespace), the resource,
# the writer and the checks: lib_mirror.sh.
fenced_hosts
start_etcd 1
links() { host_links "$@"; }

# --- the resource ---------------------------------------------------------------
cat >"$WORK/hook.sh" <<EOF
#!/bin/sh
echo "\$RESOURCE \$NODE \$TOKEN" >>"$WORK/hook.log"
EOF
chmod +x "$WORK/hook.sh"
fenced_resource "on_promote = [\"$WORK/hook.sh\"]"
has_addr() { ip -n "$1" -o addr show dev eth1 | grep -q " $SERVICE/"; }

# --- 1. bootstrap: the UpToDate node is elected -----------------------------------
start_node a "${EXPORT_FLAGS[@]}"
start_node b "${EXPORT_FLAGS[@]}"
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]'
in_sync
wait_st a 'd["fencing"].get("peer_record") == "UpToDate"'
TOKEN_A=$(st a 'd["fencing"]["token"]')
expect_eq "$(st b 'd["fencing"]["leader"]')" a "b sees a as the leader"
# Taken before the promotion; waited for (bounded) so that a failure shows the logs.
wait_for has_addr "$NS_A"
has_addr "$NS_B" && fail "the service address is not on b"
wait_for grep -q "web a $TOKEN_A" "$WORK/hook.log"
expect_rc 2 ck_mirror promote web --node b
expect_contains "$ERR" "does not hold the leader key"
expect_rc 0 "$CK" mirror status web --config "$CFG" --run-dir "$WORK/run"
expect_contains "$OUT" "fencing etcd: leader a (token $TOKEN_A)"

# qemu-io through qemu's NBD client at the service address, reconnecting:
# lib_mirror.sh writer; "wrote" lines are the acknowledged writes.

# --- 2. the primary SIGKILLed mid-write: automatic failover --------------------------
N=3000
writer w1 0 "$N"
W1=$WRITER
wait_for acked_ge w1 300
T_KILL=$(mono)
kill_node a
links a down # the host is gone
ACKED_AT_KILL=$(acked w1)
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 60
wait "$W1" || fail "qemu-io failed across the failover: $(tail -5 "$WORK/w1.out")"
expect_not_contains "$(cat "$WORK/w1.out")" "failed" "qemu-io saw an I/O error"
expect_eq "$(acked w1)" "$N" "every write acknowledged"
TOKEN_B=$(st b 'd["fencing"]["token"]')
before "$TOKEN_A" "$TOKEN_B" || fail "the new token $TOKEN_B is newer than $TOKEN_A"
wait_for has_addr "$NS_B" # the service address moved to b
wait_for grep -q "web b $TOKEN_B" "$WORK/hook.log"
T_WON=$(stamp b "won the leader key")
T_PROMOTED=$(stamp b "promoted: primary")
T_ADDR=$(stamp b "took the service address")
echo "failover after SIGKILL ($ACKED_AT_KILL writes acknowledged before): b won the key +$(python3 -c "print('%.2f' % ($T_WON - $T_KILL))") s," \
  "took the address +$(python3 -c "print('%.2f' % ($T_ADDR - $T_KILL))") s, primary +$(python3 -c "print('%.2f' % ($T_PROMOTED - $T_KILL))") s"
# By the log's line order: both stamps can fall in one millisecond.
L_ADDR=$(grep -n "took the service address" "$WORK/b.log" | head -n1 | cut -d: -f1)
L_PROM=$(grep -n "promoted: primary" "$WORK/b.log" | head -n1 | cut -d: -f1)
[ "$L_ADDR" -lt "$L_PROM" ] || fail "the address is taken before the export starts"
check_writes "$WORK/b.img" 0 "$N" || fail "acknowledged writes lost in the failover"

# A comes back as the standby: its leftover address goes, then its links.
start_node a "${EXPORT_FLAGS[@]}"
wait_for grep -q "removed the service address" "$WORK/a.log"
has_addr "$NS_A" && fail "a removed its leftover service address"
links a up
in_sync
wait_st b 'd["fencing"].get("peer_record") == "UpToDate"'
same_md5 "after a rejoined as the standby"
expect_eq "$(st a 'd["role"]')" Secondary "a stays the standby"

# --- 3. the primary (b) cut off from the standby and etcd, alive ------------------------
writer w2 4000 "$N"
W2=$WRITER
wait_for acked_ge w2 300
links b down
wait_st b 'd["fencing"]["suspended"]'
# A client on b's own host: its write must never be acknowledged.
ip netns exec "$NS_B" qemu-io -f raw nbd://127.0.0.1:10809/web -c "write -P 0xee 0 4k" \
  >"$WORK/local.out" 2>&1 &
LOCAL=$!
defer "kill -9 $LOCAL 2>/dev/null"
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 60
T_SUSP=$(stamp b "suspended: the lease")
T_WON_A=$(grep -F "won the leader key" "$WORK/a.log" | tail -n1 | sed -nE 's/.*\(t=([0-9.]+)\)$/\1/p')
[ -n "$T_SUSP" ] || fail "b logged its suspension"
before "$T_SUSP" "$T_WON_A" || fail "b suspended ($T_SUSP) before a was elected ($T_WON_A)"
echo "partition: b stopped acknowledging at t=$T_SUSP, a was elected at t=$T_WON_A (+$(python3 -c "print('%.2f' % ($T_WON_A - $T_SUSP))") s later)"
expect_eq "$(st b 'd["role"]')" Primary "b is still primary (suspended) while cut off"
links b up
wait_st b 'd["role"] == "Secondary"' 60
wait "$W2" || fail "qemu-io failed across the partition: $(tail -5 "$WORK/w2.out")"
expect_eq "$(acked w2)" "$N" "every write acknowledged across the partition"
wait "$LOCAL" 2>/dev/null || true
expect_not_contains "$(cat "$WORK/local.out")" "wrote" "a write acknowledged by the suspended primary"
in_sync
same_md5 "after the partition healed"
check_writes "$WORK/a.img" 4000 "$N" || fail "acknowledged writes lost in the partition"
expect_contains "$(cat "$WORK/b.log")" "lost the leader key"

# --- 4. the primary (a) cut off from the standby only: it outdates b -------------------
wait_st a 'd["fencing"].get("peer_record") == "UpToDate"'
ip -n "$NS_A" link set eth0 down
wait_st a 'not d["peer"]["connected"]'
expect_rc 0 ip netns exec "$NS_C" qemu-io --image-opts \
  "driver=nbd,server.type=inet,server.host=$SERVICE,server.port=10809,export=web" \
  -c "write -P 0x33 24M 64k" -c flush
wait_st a 'd["fencing"].get("peer_record") == "Outdated"'
expect_contains "$(cat "$WORK/a.log")" "recorded b Outdated in etcd"
kill_node a
links a down
wait_st b 'd["fencing"]["leader"] is None and "Outdated" in d["fencing"].get("not_campaigning", "")' 60
expect_eq "$(st b 'd["role"]')" Secondary "the outdated standby does not promote itself"
expect_rc 2 ck_mirror promote web --node b
expect_contains "$ERR" "does not hold the leader key"
expect_rc 0 ck_mirror promote web --node b --force
expect_contains "$ERR" "promote --force"
expect_contains "$ERR" "Outdated"
expect_eq "$(st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]')" True "b forced"
kill_etcd 0
stop_node b
TEST_OK=1
