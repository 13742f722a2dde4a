#!/usr/bin/env bash
# The service address moved in EC2 on failover (issue 13: "on AWS,
# AssignPrivateIpAddresses with AllowReassignment (or an Elastic IP) through
# cloudkeep's own EC2 client, against the EC2 emulator"). Three namespaces:
# hosts A and B (replication link eth0, LAN eth1) and C, the LAN, where etcd
# and the EC2 emulator (tests/fakes/ec2_emulator.py, strict as EC2) run.
# Each node's config names its own network interface (eni-…).
#   1. config errors: service_address_cloud other than "aws", a node without
#      aws_network_interface, an eni EC2 does not know: exit 2 naming it.
#   2. A is elected: EC2 shows the service address on A's interface and the
#      Elastic IP associated with it; the address is on A's eth1.
#   3. A SIGKILLed, links down: B is elected, EC2 moved the address to B's
#      interface (AllowReassignment: A's instance is dead and never let go)
#      and the Elastic IP with it; the address is on B's eth1.
#   4. an address EC2 refuses (outside the interface's subnet): the elected
#      node logs why, gives the key up and does not serve; no primary.
# Order and state are asserted, never durations.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mirror.sh"
need etcd

EMULATOR="$CK_SOURCE_DIR/tests/fakes/ec2_emulator.py"
[ -f "$EMULATOR" ] || EMULATOR="$(cd "$(dirname "$0")/../.." && pwd)/tests/fakes/ec2_emulator.py"
TEST_OK=0
dump_logs() { [ "$TEST_OK" = 1 ] || tail -n 30 "$WORK"/a.log "$WORK"/b.log "$WORK"/emu.log >&2; }
defer dump_logs
fenced_hosts # A, B and the LAN namespace C (lib_mirror.sh); sets SERVICE
ETCD=http://10.253.0.100:2379
ENI_A=eni-0a00000000000000a
ENI_B=eni-0b00000000000000b
EIP=eipalloc-0e00000000000000e

# --- etcd and the EC2 emulator, on the LAN -------------------------------------------
mkdir -p "$WORK/etcd" "$WORK/home/.aws"
start_daemon etcd 'ready to serve client requests' ip netns exec "$NS_C" etcd --name ck \
  --data-dir "$WORK/etcd/data" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster ck=http://127.0.0.1:2380
ETCD_PID=$DAEMON_PID
cat >"$WORK/ec2.json" <<EOF
{"region": "eu-west-1",
 "credentials": [{"access_key_id": "AKIDMIRRORTEST000001", "secret_access_key": "mirror-secret"}],
 "instance": {"id": "i-0a00000000000000a", "az": "eu-west-1a"},
 "instances": ["i-0b00000000000000b"],
 "subnets": [{"id": "subnet-0c00000000000000c", "cidr": "10.253.0.0/24"}],
 "network_interfaces": [
   {"id": "$ENI_A", "subnet": "subnet-0c00000000000000c", "instance": "i-0a00000000000000a", "private_ips": ["10.253.0.1"]},
   {"id": "$ENI_B", "subnet": "subnet-0c00000000000000c", "instance": "i-0b00000000000000b", "private_ips": ["10.253.0.2"]}],
 "addresses": [{"allocation_id": "$EIP", "public_ip": "198.51.100.7"}]}
EOF
start_daemon emulator '^ec2-emulator listening on' ip netns exec "$NS_C" /usr/bin/python3 "$EMULATOR" \
  --bind 10.253.0.100 --port 0 --state "$WORK/ec2.json"
EMU_URL="http://10.253.0.100:$DAEMON_PORT"
# The daemons talk to the emulator only: credentials from the environment,
# the endpoint from the config, no shared files, no instance metadata.
export HOME="$WORK/home" AWS_CONFIG_FILE="$WORK/home/.aws/config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/home/.aws/credentials"
export AWS_ACCESS_KEY_ID=AKIDMIRRORTEST000001 AWS_SECRET_ACCESS_KEY=mirror-secret
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EC2
# network EXPR: a python expression over the emulator's /_emu/network (d).
network() {
  ip netns exec "$NS_C" /usr/bin/python3 -c "import json,sys,urllib.request; d=json.load(urllib.request.urlopen('$EMU_URL/_emu/network', timeout=5)); print(eval(sys.argv[1]))" "$1"
}
network_true() { [ "$(network "$1")" = True ]; }
has_addr() { ip -n "$1" -o addr show dev eth1 | grep -q " $2/"; }

SIZE=$((16 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$WORK/a.img"
truncate -s "$SIZE" "$WORK/b.img"
# write_config SERVICE_CIDR [extra lines]: the resource with each node's eni.
write_config() {
  local svc=$1
  shift
  mirror_config "$WORK/mirror.toml" 'fencing = "etcd"' "etcd_endpoints = [\"$ETCD\"]" \
    "service_address = \"$svc\"" 'service_interface = "eth1"' 'service_address_cloud = "aws"' \
    "aws_elastic_ip = \"$EIP\"" 'aws_region = "eu-west-1"' "aws_endpoint_url = \"$EMU_URL\"" "$@"
  sed -i -e "/^name = \"a\"$/a aws_network_interface = \"$ENI_A\"" \
    -e "/^name = \"b\"$/a aws_network_interface = \"$ENI_B\"" "$WORK/mirror.toml"
}
write_config "$SERVICE/24"
expect_rc 0 ck_mirror init web --node a --uptodate
expect_rc 0 ck_mirror init web --node b

# --- 1. configuration errors: exit 2, naming the value ---------------------------------
cp "$WORK/mirror.toml" "$WORK/good.toml"
sed 's/^service_address_cloud = "aws"$/service_address_cloud = "gcp"/' "$WORK/good.toml" >"$WORK/bad1.toml"
expect_rc 2 "$CK" mirror run web --config "$WORK/bad1.toml" --node a --run-dir "$WORK/run"
expect_contains "$ERR" "'gcp'"
grep -v "aws_network_interface = \"$ENI_B\"" "$WORK/good.toml" >"$WORK/bad2.toml"
expect_rc 2 "$CK" mirror run web --config "$WORK/bad2.toml" --node a --run-dir "$WORK/run"
expect_contains "$ERR" "(b): service_address_cloud = \"aws\" needs aws_network_interface"
sed "s/$ENI_A/eni-0f00000000000000f/" "$WORK/good.toml" >"$WORK/bad3.toml"
expect_rc 2 ip netns exec "$NS_A" "$CK" mirror run web --config "$WORK/bad3.toml" --node a --run-dir "$WORK/run"
expect_contains "$ERR" "aws_network_interface 'eni-0f00000000000000f' does not exist in EC2"
expect_eq "$(network "d['enis']['$ENI_A']")" "['10.253.0.1']" "nothing assigned by the refused runs"

# --- 2. A elected: the address on A's interface in EC2 and on A's eth1 ----------------
start_node a --export-listen "$SERVICE:10809"
start_node b --export-listen "$SERVICE:10809"
wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]'
wait_for network_true "'$SERVICE' in d['enis']['$ENI_A']"
expect_eq "$(network "'$SERVICE' in d['enis']['$ENI_B']")" False "the address is on A's interface only"
expect_eq "$(network "d['eips']['$EIP']['eni'], d['eips']['$EIP']['private_ip']")" "('$ENI_A', '$SERVICE')" \
  "the Elastic IP follows the address to A"
wait_for has_addr "$NS_A" "$SERVICE"
has_addr "$NS_B" "$SERVICE" && fail "the service address is not on b"
expect_contains "$(cat "$WORK/a.log")" "took the service address $SERVICE/24 on eth1 (AWS $ENI_A)"
in_sync
wait_st a 'd["fencing"].get("peer_record") == "UpToDate"'

# --- 3. A dies: B takes the key, and EC2 moves the address and the EIP to B -----------
kill_node a
ip -n "$NS_A" link set eth0 down
ip -n "$NS_A" link set eth1 down
wait_st b 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]' 60
wait_for network_true "'$SERVICE' in d['enis']['$ENI_B'] and '$SERVICE' not in d['enis']['$ENI_A']"
expect_eq "$(network "d['eips']['$EIP']['eni'], d['eips']['$EIP']['private_ip']")" "('$ENI_B', '$SERVICE')" \
  "the Elastic IP moved to B with the address"
wait_for has_addr "$NS_B" "$SERVICE"
# The address was moved before the export started.
L_ADDR=$(grep -n "took the service address" "$WORK/b.log" | head -n1 | cut -d: -f1)
L_PRIM=$(grep -n "promoted: primary" "$WORK/b.log" | head -n1 | cut -d: -f1)
{ [ -n "$L_ADDR" ] && [ -n "$L_PRIM" ] && [ "$L_ADDR" -lt "$L_PRIM" ]; } ||
  fail "b took the address (line $L_ADDR) before it promoted (line $L_PRIM)"
stop_node b

# --- 4. an address EC2 refuses: no primary, and the log says why -----------------------
OTHER=10.254.9.10
write_config "$OTHER/24"
rm -f "$WORK"/web-a.meta "$WORK"/web-b.meta
expect_rc 0 ck_mirror init web --node b --uptodate
: >"$WORK/b.log"
start_node b --export-listen 127.0.0.1:10809
wait_for grep -q "cannot take the service address" "$WORK/b.log"
expect_contains "$(cat "$WORK/b.log")" "InvalidParameterValue"
expect_contains "$(cat "$WORK/b.log")" "giving the key up"
expect_eq "$(st b 'd["role"]')" Secondary "a node that cannot take the address does not serve"
expect_eq "$(network "'$OTHER' in str(d)")" False "EC2 assigned nothing"
has_addr "$NS_B" "$OTHER" && fail "the refused address is not on b's interface"
stop_node b
kill -9 "$ETCD_PID" 2>/dev/null || true
TEST_OK=1
