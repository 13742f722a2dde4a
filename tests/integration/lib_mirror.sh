# Helpers for the mirror tests: two hosts as network namespaces joined by a
# veth pair, a resource config, daemons started and stopped by the test.
# Source after lib.sh.
#   mirror_hosts            namespaces $NS_A/$NS_B, addresses $IP_A/$IP_B, link a<->b
#   mirror_config FILE [extra TOML lines]
#   start_node NODE [flags]   daemon in its namespace, log in $WORK/NODE.log, pid in PID_<NODE>
#   stop_node NODE / kill_node NODE
#   st NODE EXPR              python expression over `mirror status --json` (d)
#   wait_st NODE EXPR [SECONDS]
need_root
need ip openssl /usr/bin/python3

MP="ckm$$"
NS_A="$MP-a"
NS_B="$MP-b"
IP_A=10.252.0.1
IP_B=10.252.0.2
REPL_PORT=7789
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
in_node() {
  local n=$1
  shift
  if [ "$n" = a ]; then in_a "$@"; else in_b "$@"; fi
}

mirror_hosts() {
  ip netns add "$NS_A"
  defer "ip netns del '$NS_A'"
  ip netns add "$NS_B"
  defer "ip netns del '$NS_B'"
  ip -n "$NS_A" link set lo up
  ip -n "$NS_B" link set lo up
  ip -n "$NS_A" link add eth0 type veth peer name eth0 netns "$NS_B"
  ip -n "$NS_A" addr add "$IP_A/24" dev eth0
  ip -n "$NS_B" addr add "$IP_B/24" dev eth0
  ip -n "$NS_A" link set eth0 up
  ip -n "$NS_B" link set eth0 up
}
link_down() { ip -n "$NS_A" link set eth0 down; }
link_up() { ip -n "$NS_A" link set eth0 up; ip -n "$NS_B" link set eth0 up; }

# mirror_config FILE SIZE [extra lines]: images $WORK/a.img (random) and $WORK/b.img (zero).
mirror_config() {
  local file=$1
  shift
  openssl rand -hex 32 >"$WORK/web.psk"
  {
    echo '[resource.web]'
    echo 'protocol = "sync"'
    echo "psk_file = \"$WORK/web.psk\""
    echo 'peer_timeout = "2s"'
    echo 'connect_interval = "200ms"'
    for l in "$@"; do echo "$l"; done
    for n in a b; do
      local ip=$IP_A
      [ "$n" = b ] && ip=$IP_B
      printf '[[resource.web.node]]\nname = "%s"\naddress = "%s:%s"\ndevice = "%s"\nmeta = "%s"\n' \
        "$n" "$ip" "$REPL_PORT" "$WORK/$n.img" "$WORK/web-$n.meta"
    done
  } >"$file"
  CFG=$file
}

start_node() {
  local n=$1
  shift
  local ns=$NS_A
  [ "$n" = b ] && ns=$NS_B
  ip netns exec "$ns" "$CK" mirror run web --config "$CFG" --node "$n" --run-dir "$WORK/run" "$@" \
    >>"$WORK/$n.log" 2>&1 &
  eval "PID_$n=$!"
  defer "kill -9 $! 2>/dev/null"
  wait_for test -S "$WORK/run/web-$n.sock"
}
stop_node() {
  local pid
  pid=$(eval echo "\$PID_$1")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
kill_node() {
  local pid
  pid=$(eval echo "\$PID_$1")
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$WORK/run/web-$1.sock"
}
ck_mirror() { "$CK" mirror "$@" --config "$CFG" --run-dir "$WORK/run"; }
status_json() { "$CK" --json mirror status web --config "$CFG" --run-dir "$WORK/run" --node "$1" 2>/dev/null; }
st() { status_json "$1" | json_get "$2"; }
_st_true() { [ "$(st "$1" "$2" 2>/dev/null)" = True ]; }
wait_st() {
  local n=$1 expr=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if _st_true "$n" "$expr"; then return 0; fi
    sleep 0.1
  done
  echo "--- status $n:" >&2
  status_json "$n" >&2 || true
  echo "--- log a:" >&2
  tail -20 "$WORK/a.log" >&2 || true
  echo "--- log b:" >&2
  tail -20 "$WORK/b.log" >&2 || true
  fail "timed out waiting for node $n: $expr"
}
in_sync() {
  wait_st a 'd["connection"] == "Connected" and d["disk_state"] == "UpToDate" and d["out_of_sync_bytes"] == 0 and d["peer"]["disk_state"] == "UpToDate"' "${1:-60}"
  wait_st b 'd["connection"] == "Connected" and d["disk_state"] == "UpToDate"' "${1:-60}"
}
same_md5() {
  local ma mb
  ma=$(md5sum <"$WORK/a.img")
  mb=$(md5sum <"$WORK/b.img")
  expect_eq "$ma" "$mb" "${1:-backing files identical}"
}

# --- fenced automatic failover (fencing = "etcd"; test_mirror_failover*.sh) -------
#   fenced_hosts            mirror_hosts + a service LAN: namespace $NS_C with bridge br0
#                           (10.253.0.100), eth1 on a (.1) and b (.2); $SERVICE, $ETCD
#   host_links NODE up|down both links of a host (replication and service LAN)
#   start_etcd [N]          N (1 or 3) etcd members in $NS_C; $ETCD_PIDS, $ETCD (endpoints list, TOML)
#   kill_etcd I / restart_etcd I   member I (0-based), SIGKILL / same data dir
#   fenced_resource [TOML]  32 MiB images (a random, b zero), fencing = "etcd", the service address
#   fenced_start            both daemons; a elected, b in sync and recorded UpToDate
#   writer NAME FIRST COUNT qemu-io through the service address (reconnect-delay): 4 KiB writes,
#                           pattern (i % 250) + 1 at offset i * 4 KiB; $WRITER
#   acked NAME / acked_ge NAME N / check_writes IMAGE FIRST COUNT
#   mono; stamp NODE TEXT (first), stamp_last NODE TEXT; before T1 T2
#   kill_node_marked NODE / stop_node_marked NODE   and the moment in NODE's log
#   ack_intervals_disjoint  no two nodes' acknowledging intervals overlap (from the fencing log)
fenced_hosts() {
  mirror_hosts
  NS_C="$MP-c"
  ip netns add "$NS_C"
  defer "ip netns del '$NS_C'"
  ip -n "$NS_C" link set lo up
  ip -n "$NS_C" link add br0 type bridge
  ip -n "$NS_C" addr add 10.253.0.100/24 dev br0
  ip -n "$NS_A" link add eth1 type veth peer name pa netns "$NS_C"
  ip -n "$NS_B" link add eth1 type veth peer name pb netns "$NS_C"
  ip -n "$NS_A" addr add 10.253.0.1/24 dev eth1
  ip -n "$NS_B" addr add 10.253.0.2/24 dev eth1
  local p
  for p in pa pb; do ip -n "$NS_C" link set "$p" master br0 up; done
  ip -n "$NS_C" link set br0 up
  ip -n "$NS_A" link set eth1 up
  ip -n "$NS_B" link set eth1 up
  SERVICE=10.253.0.10
}
host_links() {
  local ns=$NS_A
  [ "$1" = b ] && ns=$NS_B
  ip -n "$ns" link set eth0 "$2"
  ip -n "$ns" link set eth1 "$2"
  if [ "$2" = up ]; then ip -n "$NS_A" link set eth0 up && ip -n "$NS_B" link set eth0 up; fi
}

# The members listen on the bridge address inside $NS_C (their own network
# stack: fixed ports cannot collide with other tests), peers on its loopback.
ETCD_PIDS=()
_etcd_cluster=""
_etcd_n=1
_etcd_member() { # I: starts member I (data kept in $WORK/etcd/I)
  local i=$1
  local url="http://10.253.0.100:$((2379 + i * 10))" peer="http://127.0.0.1:$((2380 + i * 10))"
  mkdir -p "$WORK/etcd/$i"
  ip netns exec "$NS_C" etcd --name "m$i" --data-dir "$WORK/etcd/$i/data" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$_etcd_cluster" --initial-cluster-state new >>"$WORK/etcd/$i/log" 2>&1 &
  ETCD_PIDS[$i]=$!
  defer "kill -9 $! 2>/dev/null; wait $! 2>/dev/null"
}
start_etcd() {
  _etcd_n=${1:-1}
  local i urls=()
  _etcd_cluster=""
  for ((i = 0; i < _etcd_n; i++)); do
    _etcd_cluster+="${_etcd_cluster:+,}m$i=http://127.0.0.1:$((2380 + i * 10))"
    urls+=("\"http://10.253.0.100:$((2379 + i * 10))\"")
  done
  for ((i = 0; i < _etcd_n; i++)); do _etcd_member "$i"; done
  ETCD=$(IFS=,; echo "${urls[*]}")
  for ((i = 0; i < _etcd_n; i++)); do wait_for etcd_healthy "$i"; done
}
etcd_healthy() { # member I answers /health with "true" (its JSON gateway; no etcdctl in Debian's etcd-server)
  ip netns exec "$NS_C" /usr/bin/python3 -c 'import json, sys, urllib.request
r = urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)
sys.exit(0 if json.load(r).get("health") == "true" else 1)' "http://10.253.0.100:$((2379 + $1 * 10))"
}
kill_etcd() {
  kill -9 "${ETCD_PIDS[$1]}" 2>/dev/null || true
  wait "${ETCD_PIDS[$1]}" 2>/dev/null || true
}
restart_etcd() {
  _etcd_member "$1"
  wait_for etcd_healthy "$1"
}

fenced_resource() {
  local size=$((32 * 1024 * 1024))
  head -c "$size" /dev/urandom >"$WORK/a.img"
  truncate -s "$size" "$WORK/b.img"
  mirror_config "$WORK/mirror.toml" 'fencing = "etcd"' "etcd_endpoints = [$ETCD]" \
    "service_address = \"$SERVICE/24\"" 'service_interface = "eth1"' "$@"
  EXPORT_FLAGS=(--export-listen "$SERVICE:10809" --export-listen 127.0.0.1:10809)
  expect_rc 0 ck_mirror init web --node a --uptodate
  expect_rc 0 ck_mirror init web --node b
}

# Both daemons started; a (UpToDate) elected, b in sync and recorded UpToDate.
fenced_start() {
  start_node a "${EXPORT_FLAGS[@]}"
  start_node b "${EXPORT_FLAGS[@]}"
  wait_st a 'd["role"] == "Primary" and d["fencing"]["this_node_leads"]'
  in_sync
  wait_st a 'd["fencing"].get("peer_record") == "UpToDate"'
}

writer() {
  local name=$1 first=$2 count=$3 i args=()
  for ((i = 0; i < count; i++)); do args+=(-c "write -P $(((first + i) % 250 + 1)) $(((first + i) * 4096)) 4k"); done
  ip netns exec "$NS_C" stdbuf -oL qemu-io --image-opts \
    "driver=nbd,server.type=inet,server.host=$SERVICE,server.port=10809,export=web,reconnect-delay=30" \
    "${args[@]}" >"$WORK/$name.out" 2>&1 &
  WRITER=$!
  defer "kill -9 $WRITER 2>/dev/null"
}
acked() { grep -c '^wrote 4096/4096' "$WORK/$1.out" 2>/dev/null || true; }
acked_ge() { [ "$(acked "$1")" -ge "$2" ]; }
check_writes() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
img, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bad = 0
with open(img, "rb") as f:
    for i in range(first, first + count):
        f.seek(i * 4096)
        if f.read(4096) != bytes([i % 250 + 1]) * 4096:
            bad += 1
print("checked", count, "acknowledged writes:", bad, "missing")
sys.exit(1 if bad else 0)
PY
}

mono() { /usr/bin/python3 -c 'import time; print("%.3f" % time.monotonic())'; }
# "" when there is no such line (the caller checks).
stamp() { { grep -F "$2" "$WORK/$1.log" || true; } | head -n1 | sed -nE 's/.*\(t=([0-9.]+)\)$/\1/p'; }
stamp_last() { { grep -F "$2" "$WORK/$1.log" || true; } | tail -n1 | sed -nE 's/.*\(t=([0-9.]+)\)$/\1/p'; }
before() { /usr/bin/python3 -c "import sys; sys.exit(0 if float('$1') < float('$2') else 1)"; }

# Each node may acknowledge a change only from "won the leader key" until
# its lease lapses ("suspended: the lease …", stamped with the end of the
# validity), it loses or gives up the key, or it dies; and again from
# "certainly valid again: resuming" (fencing.cpp stamps each line on the
# monotonic clock that every namespace shares). kill_node_marked and
# stop_node_marked append "killed (t=…)" / "stopped (t=…)" to the node's log. Prints the intervals;
# fails if two nodes' intervals overlap or a new term's token is not greater.
kill_node_marked() {
  kill_node "$1"
  echo "killed (t=$(mono))" >>"$WORK/$1.log"
}
stop_node_marked() {
  stop_node "$1"
  echo "stopped (t=$(mono))" >>"$WORK/$1.log"
}
ack_intervals_disjoint() {
  /usr/bin/python3 - "$WORK/a.log" "$WORK/b.log" <<'PY'
import re, sys
stamp = re.compile(r"\(t=([0-9.]+)\)$")
ivs, terms = [], []
for path in sys.argv[1:]:
    node = path.rsplit("/", 1)[1][0]
    start = tok = None
    for line in open(path, errors="replace"):
        m = stamp.search(line.rstrip())
        if not m:
            continue
        t = float(m.group(1))
        w = re.search(r"won the leader key \(token (\d+)\)", line)
        if w:
            start, tok = t, int(w.group(1))
            terms.append((t, int(w.group(1)), node))
        elif "certainly valid again: resuming" in line and tok is not None and start is None:
            start = t  # the same term again (a node whose term ended has tok None)
        elif ("suspended: the lease" in line or "lost the leader key" in line
              or "gave the leader key up" in line or line.startswith(("killed", "stopped"))):
            if start is not None:
                ivs.append((start, t, node, tok))
            start = None
            if "suspended" not in line:
                tok = None  # the term is over: a later "resuming" is not this node leading
    if start is not None:
        ivs.append((start, float("inf"), node, tok))
ivs.sort()
bad = 0
for i, (s1, e1, n1, t1) in enumerate(ivs):
    for s2, e2, n2, t2 in ivs[i + 1:]:
        if n1 != n2 and s2 < e1:
            print(f"OVERLAP: {n1} (token {t1}) acknowledging {s1:.3f}-{e1:.3f}, "
                  f"{n2} (token {t2}) from {s2:.3f}")
            bad += 1
terms.sort()
for (ta, ka, na), (tb, kb, nb) in zip(terms, terms[1:]):
    if kb <= ka:
        print(f"TOKEN: {nb} won token {kb} at {tb:.3f} after {na} won {ka} at {ta:.3f}")
        bad += 1
print(f"{len(ivs)} acknowledging intervals, {len(terms)} terms, {bad} violations")
sys.exit(1 if bad else 0)
PY
}
