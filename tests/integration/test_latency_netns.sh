#!/usr/bin/env bash
# latency serve/probe/mesh/throughput across real hosts: four network
# namespaces, two per zone. Each zone is a bridge (in a "switch"
# namespace); the zones are joined through a "wan" namespace where
# tests/tools/delay_bridge ($CK_DELAY_BRIDGE from ctest), a user-space
# AF_PACKET forwarder, holds every frame for 1 ms, so a cross-zone round
# trip costs at least 2 ms more than an in-zone one. (netem would do
# this, but it is not built into every kernel — this machine's lacks it.)
. "$(dirname "$0")/lib.sh"
need_root
BRIDGE="${CK_DELAY_BRIDGE:-delay_bridge}"
need ip /usr/bin/python3 "$BRIDGE"

P="ck-lat-$$"
SW="$P-sw"
WAN="$P-wan"
HOSTS=(a1 a2 b1 b2)
declare -A IP4=([a1]=10.250.0.1 [a2]=10.250.0.2 [b1]=10.250.0.3 [b2]=10.250.0.4)
declare -A IP6=([a1]=fd00:250::1 [a2]=fd00:250::2 [b1]=fd00:250::3 [b2]=fd00:250::4)
declare -A ZONE=([a1]=az-a [a2]=az-a [b1]=az-b [b2]=az-b)
declare -A BR=([az-a]=br-a [az-b]=br-b)
PORT=17470
in_ns() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }

ip netns add "$SW"
defer "ip netns del '$SW'"
ip netns add "$WAN"
defer "ip netns del '$WAN'"
for z in a b; do
  ip -n "$SW" link add "br-$z" type bridge
  ip -n "$SW" link set "br-$z" up
  ip -n "$SW" link add "x-$z" type veth peer name "y-$z" netns "$WAN"
  ip -n "$SW" link set "x-$z" master "br-$z" up
  ip -n "$WAN" link set "y-$z" up
done
# The user-space delay bridge shared with the mirror tests (no netem here).
ip netns exec "$WAN" "$BRIDGE" y-a y-b 0.001 2>"$WORK/bridge.err" &
defer "kill $!; wait $! 2>/dev/null"

for h in "${HOSTS[@]}"; do
  ip netns add "$P-$h"
  defer "ip netns del '$P-$h'"
  ip -n "$P-$h" link set lo up
  ip -n "$P-$h" link add eth0 type veth peer name "p-$h" netns "$SW"
  ip -n "$SW" link set "p-$h" master "${BR[${ZONE[$h]}]}" up
  ip -n "$P-$h" addr add "${IP4[$h]}/24" dev eth0
  ip -n "$P-$h" addr add "${IP6[$h]}/64" dev eth0 nodad
  # Frames of at most one MTU, so the user-space bridge can pass TCP too.
  ip -n "$P-$h" link set eth0 gso_max_size 1500 up
done

echo "mesh-token-$$" >"$WORK/token"
for h in "${HOSTS[@]}"; do
  ip netns exec "$P-$h" "$CK" latency serve --listen "[::]:$PORT" --name "$h" --zone "${ZONE[$h]}" \
    --token-file "$WORK/token" >/dev/null 2>"$WORK/serve-$h.log" &
  defer "kill $!; wait $! 2>/dev/null"
done
for h in "${HOSTS[@]}"; do
  wait_for in_ns a1 "$CK" latency probe "${IP4[$h]}:$PORT" --count 1 --warmup 0 --timeout 200ms
done

# --- probe: UDP with kernel timestamps, in-zone and cross-zone -------------
expect_rc 0 in_ns a1 "$CK" --json latency probe "${IP4[a2]}:$PORT" "${IP4[b1]}:$PORT" --count 20 --interval 5ms
J="$OUT"
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$J")" 20 "a1->a2 received"
expect_eq "$(json_get 'd["targets"][0]["zone"]' <<<"$J")" az-a "announced zone"
expect_eq "$(json_get 'd["targets"][1]["name"]' <<<"$J")" b1 "announced name"
expect_eq "$(json_get 'd["targets"][0]["timestamps"]' <<<"$J")" kernel "kernel timestamps"
expect_eq "$(json_get 'd["targets"][1]["p50_us"] > d["targets"][0]["p50_us"] and d["targets"][1]["min_us"] >= 2000' <<<"$J")" True \
  "cross-zone RTT above in-zone RTT"
for k in min_us avg_us max_us stddev_us p50_us p90_us p99_us p99_9_us; do
  expect_eq "$(json_get "'$k' in d['targets'][0]" <<<"$J")" True "field $k"
done
expect_rc 0 in_ns a1 "$CK" latency probe "${IP4[b2]}:$PORT" --count 3 --interval 1ms
expect_contains "$OUT" "P99.9"
expect_contains "$OUT" "az-b"

# IPv6 to the same dual-stack responder, TCP, ICMP.
expect_rc 0 in_ns a1 "$CK" --json latency probe "[${IP6[a2]}]:$PORT" --count 5 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 5 "ipv6 probe"
expect_rc 0 in_ns a1 "$CK" --json latency probe "${IP4[b1]}:$PORT" --proto tcp --count 5 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 5 "tcp probe"
expect_eq "$(json_get 'd["targets"][0]["connect_us"] > 2000' <<<"$OUT")" True "tcp connect time counts the cross-zone delay"
expect_rc 0 in_ns a1 "$CK" --json latency probe "${IP4[a2]}" --proto icmp --count 5 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 5 "icmp probe"
expect_rc 0 in_ns a1 "$CK" --json latency probe "${IP6[a2]}" --proto icmp --count 5 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 5 "icmpv6 probe (raw socket, as root)"
expect_eq "$(json_get 'd["targets"][0]["timestamps"]' <<<"$OUT")" kernel "icmpv6 kernel timestamps"
# Unprivileged: as nobody, raw sockets are refused, so an answer proves the
# ping-socket path (net.ipv4.ping_group_range covers ICMPv6 too).
# The checkout may sit under a directory nobody cannot enter: a copy in a public one.
PUB=$(mktemp -d /tmp/ck-latency-pub.XXXXXX)
defer "rm -rf '$PUB'"
chmod 755 "$PUB"
install -m 755 "$CK" "$PUB/cloudkeep"
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
expect_rc 1 in_ns a1 "${NOBODY[@]}" "$PUB/cloudkeep" latency probe "${IP4[a2]}" --proto icmp --count 1 --timeout 100ms
expect_contains "$ERR" "ping_group_range"
in_ns a1 sysctl -qw net.ipv4.ping_group_range="0 2147483647"
for t in "${IP4[a2]}" "${IP6[a2]}" "${IP6[b1]}"; do
  expect_rc 0 in_ns a1 "${NOBODY[@]}" "$PUB/cloudkeep" --json latency probe "$t" --proto icmp --count 5 --interval 1ms
  expect_eq "$(json_get 'd["targets"][0]["received"]' <<<"$OUT")" 5 "unprivileged icmp probe to $t"
done
expect_eq "$(json_get 'd["targets"][0]["min_us"] >= 2000' <<<"$OUT")" True "icmpv6 across zones sees the delay"
expect_rc 0 in_ns a1 "${NOBODY[@]}" "$PUB/cloudkeep" --json latency probe "${IP6[a2]}" --proto icmp --clock user --count 3 --interval 1ms
expect_eq "$(json_get 'd["targets"][0]["timestamps"]' <<<"$OUT")" user "--clock user"

# --- abuse: garbage, truncated, oversized, replies, a garbage TCP stream ----
cat >"$WORK/abuse.py" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
def probe(length, typ=1):
    return b"CKLT" + bytes([1, typ]) + struct.pack(">HIIQQ", length, 1, 2, 3, 0) + bytes(length - 32)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
bad = [b"", b"x", b"GET / HTTP/1.0\r\n\r\n", probe(64)[:40], probe(64) + b"!", probe(64, typ=2),
       probe(64, typ=5), probe(9216) + bytes(100), bytes(60000), b"CKLT\x01\x01" + b"\xff" * 58]
for msg in bad:
    s.sendto(msg, (host, port))
    try:
        data = s.recv(70000)
        print("REPLIED to", msg[:16], len(data)); sys.exit(1)
    except socket.timeout:
        pass
for _ in range(2000):  # a flood of garbage
    s.sendto(b"\x00" * 100, (host, port))
t = socket.create_connection((host, port)); t.sendall(b"garbage" * 1000); t.close()
t = socket.create_connection((host, port)); t.sendall(probe(64)[:20]); t.close()
s.sendto(probe(64), (host, port))
data = s.recv(70000)
assert len(data) == 64 and data[5] == 2, data
print("ok")
PY
expect_rc 0 in_ns a1 /usr/bin/python3 "$WORK/abuse.py" "${IP4[a2]}" "$PORT"
expect_contains "$OUT" ok
expect_rc 0 in_ns a1 "$CK" latency probe "${IP4[a2]}:$PORT" --count 3 --interval 1ms

# --- mesh: the original's two tables, the matrix, the heatmap ---------------
{
  echo "name,address,zone"
  for h in "${HOSTS[@]}"; do echo "$h,${IP4[$h]}:$PORT,${ZONE[$h]}"; done
} >"$WORK/peers.csv"
expect_rc 0 in_ns a1 "$CK" --json latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/token" \
  --count 10 --interval 10ms --heatmap "$WORK/mesh.svg"
M="$OUT"
expect_eq "$(json_get 'len(d["pairs"])' <<<"$M")" 12 "pairs"
expect_eq "$(json_get '[g["zone"] for g in d["single_zone"]]' <<<"$M")" "['az-a', 'az-b']" "single-zone groups"
expect_eq "$(json_get '[(g["zone_a"], g["zone_b"]) for g in d["cross_zone"]]' <<<"$M")" "[('az-a', 'az-b')]" "cross-zone groups"
expect_eq "$(json_get 'all(p["lost"] == 0 for p in d["pairs"])' <<<"$M")" True "no loss"
expect_eq "$(json_get 'd["cross_zone"][0]["min_us"] >= 2000 and d["cross_zone"][0]["p50_us"] > max(g["p50_us"] for g in d["single_zone"])' <<<"$M")" True \
  "cross-zone RTT above in-zone RTT"
expect_contains "$(cat "$WORK/mesh.svg")" "<svg"
expect_contains "$(cat "$WORK/mesh.svg")" "b2 (az-b)"
expect_rc 0 in_ns b1 "$CK" latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/token" --count 3 --interval 1ms
expect_contains "$OUT" "Within one zone"
expect_contains "$OUT" "Across zones"
expect_contains "$OUT" "Round trip by pair"

# TOML peers file with the token in it.
{
  echo "token = \"mesh-token-$$\""
  for h in a1 b1; do printf '[[peer]]\nname = "%s"\naddress = "%s:%s"\nzone = "%s"\n' "$h" "${IP4[$h]}" "$PORT" "${ZONE[$h]}"; done
} >"$WORK/peers.toml"
expect_rc 0 in_ns a1 "$CK" --json latency mesh --peers "$WORK/peers.toml" --count 2 --interval 1ms
expect_eq "$(json_get 'len(d["pairs"])' <<<"$OUT")" 2 "toml mesh"

# A wrong token is refused by every agent.
echo wrong >"$WORK/wrong"
expect_rc 1 in_ns a1 "$CK" latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/wrong" --count 2
expect_contains "$ERR" "authentication failed"

# --- throughput, and the mesh's throughput matrix ---------------------------
expect_rc 0 in_ns a1 "$CK" --json latency throughput "${IP4[a2]}:$PORT" --streams 2 --duration 1s --token-file "$WORK/token"
expect_eq "$(json_get 'len(d["streams"]) == 2 and d["bits_per_second"] > 0' <<<"$OUT")" True "throughput"
expect_rc 0 in_ns a1 "$CK" latency throughput "${IP4[b1]}:$PORT" --duration 500ms --reverse --token-file "$WORK/token"
expect_contains "$OUT" "total"
expect_contains "$OUT" "download from"
expect_rc 0 in_ns a1 "$CK" --json latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/token" --count 2 \
  --interval 1ms --throughput --throughput-duration 200ms
expect_eq "$(json_get 'len(d["throughput"]) == 12 and all(t["bits_per_second"] > 0 for t in d["throughput"])' <<<"$OUT")" True \
  "throughput matrix"

# --- a host whose link is down: 100% loss, the mesh still finishes and ------
# prints everything, and exits 1 so that cron notices (issue 16)
ip -n "$P-b2" link set eth0 down
expect_rc 1 in_ns a1 "$CK" --json latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/token" \
  --count 3 --interval 10ms --timeout 300ms
M="$OUT"
expect_eq "$(json_get 'd["complete"], d["agents_down"], d["pairs_unmeasured"]' <<<"$M")" "(False, 1, 6)" \
  "mesh incomplete: b2 down"
expect_contains "$ERR" "mesh incomplete: 1 of 4 agents did not answer; 6 of 12 pairs got no sample back"
expect_rc 1 in_ns a1 "$CK" latency mesh --peers "$WORK/peers.csv" --token-file "$WORK/token" \
  --count 2 --interval 10ms --timeout 300ms
expect_contains "$OUT" "Round trip by pair"
expect_eq "$(json_get '[p["agent_ok"] for p in d["peers"]]' <<<"$M")" "[True, True, True, False]" "b2's agent unreachable"
expect_eq "$(json_get 'all(p["loss_ratio"] == 1.0 for p in d["pairs"] if "b2" in (p["from"], p["to"]))' <<<"$M")" True \
  "100% loss to and from b2"
expect_eq "$(json_get 'all(p["lost"] == 0 for p in d["pairs"] if "b2" not in (p["from"], p["to"]))' <<<"$M")" True \
  "the others unaffected"
expect_rc 1 in_ns a1 "$CK" --json latency probe "${IP4[b2]}:$PORT" --count 2 --interval 10ms --timeout 200ms
expect_eq "$(json_get 'd["targets"][0]["lost"]' <<<"$OUT")" 2 "probe to a down host: lost"
