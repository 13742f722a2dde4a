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
