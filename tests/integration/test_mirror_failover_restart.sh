#!/usr/bin/env bash
# Elected without writing, then gone (issue 13; docs/mirror.md, "Generation
# identifiers"): with fencing = "etcd" a primary alone starts a new
# generation only at the first change of its term that its standby lacks,
# so a node that is elected and stops or dies before any write leaves
# nothing divergent, and the two copies never meet as a false split brain.
#   1. both stopped with SIGTERM one after the other (b elected alone in
#      between, no write), then a started alone (elected alone, no write),
#      then b: they connect as one generation, no split brain.
#   2. the primary SIGKILLed, the standby elected (no write), the old
#      primary restarted while it serves: it becomes the standby, its
#      crash's activity log rolled back from the new primary (not refused).
#   3. b (primary) SIGKILLed, a elected alone (no write), a SIGKILLed; b
#      restarted alone and elected (no write), then a: no split brain. Then
#      a stopped and b writes: now b records a Outdated and starts a
#      generation first, and a rejoins as a plain resync target.
# After each: both connected and in sync, the backing files byte-identical,
# every write the client saw acknowledged present, and a new write load
# through the service address acknowledged in full. Throughout, the nodes'
# acknowledging intervals never overlap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
need etcd qemu-io arping md5sum stdbuf
TEST_OK=0
exec 3>&2
dump_logs() { [ "$TEST_OK" = 1 ] || tail -n 40 "$WORK"/a.log "$WORK"/b.log "$WORK"/w*.out >&3 2>&1; }
defer dump_logs
fenced_hosts
start_etcd 1
fenced_resource
fenced_start

leads() { _st_true "$1" 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]'; }
gen() { st "$1" 'd["generation"]["current"]'; }
wins() { grep -c "won the leader key" "$WORK/$1.log" || true; }
won_since() { [ "$(wins "$1")" -gt "$2" ]; }
no_split_brain() {
  local n
  for n in a b; do
    expect_not_contains "$(cat "$WORK/$n.log")" "-> SplitBrain" "$1: $n saw a split brain"
    expect_eq "$(st "$n" 'd.get("split_brain") or False')" False "$1: $n reports a split brain"
  done
}
# WRITES_SO_FAR: writer NAME FIRST COUNT runs to the end, all acknowledged.
load() {
  writer "$1" "$2" "$3"
  wait "$WRITER" || fail "qemu-io failed ($1): $(tail -3 "$WORK/$1.out")"
  expect_eq "$(acked "$1")" "$3" "every write of $1 acknowledged"
}
# settled LABEL PRIMARY: connected, in sync, one primary, identical, nothing lost.
settled() {
  local p=$2 s=a
  [ "$p" = a ] && s=b
  in_sync 120
  no_split_brain "$1"
  expect_eq "$(st "$s" 'd["role"]')" Secondary "$1: one primary"
  expect_eq "$(gen a)" "$(gen b)" "$1: one generation on both"
  same_md5 "$1: backing files identical"
  check_writes "$WORK/a.img" 0 300 || fail "$1: acknowledged writes of w1 lost on a"
  check_writes "$WORK/b.img" 0 300 || fail "$1: acknowledged writes of w1 lost on b"
}

load w1 0 300
G0=$(gen a)
expect_eq "$(gen b)" "$G0" "in sync: one generation"

# --- 1. both stopped with SIGTERM, one after the other, then both started ---------------
W=$(wins b)
stop_node_marked a
wait_for won_since b "$W"
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
expect_eq "$(gen b)" "$G0" "b elected alone: no new generation before a write"
expect_eq "$(st b 'd["generation"]["bitmap"]')" "0000000000000000" "b elected alone: no bitmap id yet"
expect_not_contains "$(cat "$WORK/b.log")" "recorded a Outdated" "b outdated a without a write"
stop_node_marked b
W=$(wins a)
start_node a "${EXPORT_FLAGS[@]}"
wait_for won_since a "$W"
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
expect_eq "$(gen a)" "$G0" "a elected alone: no new generation before a write"
start_node b "${EXPORT_FLAGS[@]}"
settled "both stopped, then started" a
expect_contains "$(cat "$WORK/b.log")" "same generation" "b joined as the same generation"
load w2 300 200
check_writes "$WORK/b.img" 300 200 || fail "w2 not on the standby"
echo "1. both stopped, each elected alone without a write, both started: connected, generation $(gen a)"

# --- 2. the primary SIGKILLed, the standby elected, the old primary back -------------------
G1=$(gen a)
W=$(wins b)
kill_node_marked a
wait_for won_since b "$W"
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
TOKEN_B=$(st b 'd["fencing"]["token"]')
expect_eq "$(gen b)" "$G1" "b elected after a's SIGKILL: no new generation before a write"
start_node a "${EXPORT_FLAGS[@]}"
settled "the old primary back while b serves" b
expect_not_contains "$(cat "$WORK/b.log")" "Refused" "b refused a (crashed primary) while primary"
expect_contains "$(cat "$WORK/a.log")" "this node crashed as primary; b is primary now" \
  "a resynced its activity log from b"
expect_eq "$(st b 'd["fencing"]["token"]')" "$TOKEN_B" "b's term went on"
load w3 500 200
check_writes "$WORK/a.img" 300 200 || fail "w2 lost in the failover to b"
check_writes "$WORK/a.img" 500 200 || fail "w3 not on the standby"
echo "2. the old primary back while the new one had not written: it resynced from b"

# --- 3. both SIGKILLed, each elected alone without a write in between ---------------------
W=$(wins a)
kill_node_marked b
wait_for won_since a "$W"
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
G2=$(gen a)
expect_eq "$(st a 'd["generation"]["bitmap"]')" "0000000000000000" "a elected alone: no bitmap id yet"
kill_node_marked a
W=$(wins b)
start_node b "${EXPORT_FLAGS[@]}"
wait_for won_since b "$W"
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 30
expect_eq "$(gen b)" "$G2" "b elected alone after both were killed: no new generation before a write"
start_node a "${EXPORT_FLAGS[@]}"
settled "both killed, then started" b
check_writes "$WORK/a.img" 500 200 || fail "w3 lost on a"
check_writes "$WORK/b.img" 500 200 || fail "w3 lost on b"
load w4 700 200
# The first write without the peer still starts a generation, after the
# peer is recorded Outdated: a gone, then a write load through b.
G3=$(gen b)
stop_node_marked a
load w5 900 50
[ "$(gen b)" != "$G3" ] || fail "b acknowledged writes without a and kept generation $G3"
expect_eq "$(st b 'd["generation"]["bitmap"]')" "$G3" "b's bitmap id is the generation it shared with a"
expect_contains "$(cat "$WORK/b.log")" "recorded a Outdated in etcd" "a outdated before b's first write alone"
start_node a "${EXPORT_FLAGS[@]}"
in_sync 120
no_split_brain "a back after b wrote alone"
same_md5 "a back after b wrote alone"
check_writes "$WORK/a.img" 700 250 || fail "w4/w5 not on a after the resync"
echo "3. both killed, each elected alone without a write, both started: connected; b's write alone: new generation"
ack_intervals_disjoint || fail "two nodes acknowledged writes at the same time"
stop_node a
stop_node b
TEST_OK=1
