# A real authoritative DNS server (NSD) on loopback for integration tests.
# Source it after lib.sh:
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_dns.sh"
#
#   mkdir -p "$WORK/zones"
#   dns_zone "$WORK/zones" example.com <<'EOF'
#   @    TXT "v=spf1 ip4:192.0.2.0/24 -all"
#   EOF
#   dns_start "$WORK/zones" "$(free_port)"   # serves every ZONE_DIR/<origin>.zone
#   $CK mail spf --resolver "127.0.0.1:$DNS_PORT" ...
#
# Function names are stable: the SPF/DMARC, DKIM and mail-audit tests all
# use them.
#   dns_zone DIR ORIGIN           writes DIR/ORIGIN.zone from stdin, adding
#                                 $ORIGIN, $TTL, SOA and NS records
#   dns_start DIR PORT            starts nsd on 127.0.0.1:PORT (UDP and TCP;
#                                 PORT from lib.sh free_port, never fixed)
#                                 for DIR/*.zone; stopped at exit (defer);
#                                 returns once the server answers for every zone
#   dns_reload                    re-reads the zone files of the running server
#                                 (restart; same port)
#   dns_query NAME TYPE [PORT]    prints the answer's records, one a line (or
#                                 the rcode as "rcode=NXDOMAIN" …) via dnslib
# DNS_PORT and DNS_ADDR are set by dns_start.

DNS_ADDR=127.0.0.1
DNS_PORT=""
DNS_ZONE_DIR=""
_DNS_PID=""

dns_zone() {
  local dir=$1 origin=${2%.}
  mkdir -p "$dir"
  {
    printf '$ORIGIN %s.\n$TTL 300\n' "$origin"
    printf '@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n' "$origin" "$origin"
    printf '@ IN NS ns.%s.\n' "$origin"
    cat
  } >"$dir/$origin.zone"
}

_dns_write_conf() {
  local dir=$1 port=$2 run=$3 f origin
  {
    echo "server:"
    echo "  ip-address: $DNS_ADDR@$port"
    echo "  do-ip6: no"
    echo "  username: \"\""
    echo "  chroot: \"\""
    echo "  zonesdir: \"$dir\""
    echo "  pidfile: \"$run/nsd.pid\""
    echo "  database: \"\""
    echo "  zonelistfile: \"$run/zone.list\""
    echo "  xfrdfile: \"$run/xfrd.state\""
    echo "  xfrdir: \"$run\""
    echo "  logfile: \"$run/nsd.log\""
    echo "  server-count: 1"
    echo "  tcp-count: 200"
    echo "  verbosity: 1"
    echo "  hide-version: yes"
    # Response rate limiting would drop the bursts DNSBL scans send.
    echo "  rrl-ratelimit: 0"
    echo "  rrl-whitelist-ratelimit: 0"
    echo "remote-control:"
    echo "  control-enable: no"
    for f in "$dir"/*.zone; do
      [ -e "$f" ] || continue
      origin=$(basename "$f" .zone)
      echo "zone:"
      echo "  name: \"$origin\""
      echo "  zonefile: \"$f\""
    done
  } >"$run/nsd.conf"
}

# dns_query NAME TYPE [PORT]
dns_query() {
  /usr/bin/python3 - "$1" "$2" "${3:-$DNS_PORT}" "$DNS_ADDR" <<'PY'
import sys
from dnslib import DNSRecord, RCODE
name, qtype, port, addr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
q = DNSRecord.question(name, qtype)
a = DNSRecord.parse(q.send(addr, port, timeout=2))
if a.header.rcode != 0:
    print("rcode=" + RCODE[a.header.rcode])
for rr in a.rr:
    print(rr.rdata)
PY
}

_dns_ready() {
  local f origin
  for f in "$DNS_ZONE_DIR"/*.zone; do
    origin=$(basename "$f" .zone)
    dns_query "$origin" SOA >"$WORK/.dns_ready" 2>/dev/null || return 1
    grep -q '^rcode=' "$WORK/.dns_ready" && return 1
  done
  return 0
}

_dns_stop() {
  if [ -n "$_DNS_PID" ] && kill -0 "$_DNS_PID" 2>/dev/null; then
    kill "$_DNS_PID" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$_DNS_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$_DNS_PID" 2>/dev/null || true
  fi
  _DNS_PID=""
}

_dns_launch() {
  local run="$WORK/nsd-$DNS_PORT"
  mkdir -p "$run"
  _dns_write_conf "$DNS_ZONE_DIR" "$DNS_PORT" "$run"
  nsd-checkconf "$run/nsd.conf" || fail "nsd configuration rejected: $run/nsd.conf"
  local f
  for f in "$DNS_ZONE_DIR"/*.zone; do
    nsd-checkzone "$(basename "$f" .zone)" "$f" >/dev/null || fail "zone file rejected: $f"
  done
  # -d: stay in the foreground, so the pid is ours to stop.
  nsd -d -c "$run/nsd.conf" >>"$run/nsd.out" 2>&1 &
  _DNS_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$_DNS_PID" 2>/dev/null || { cat "$run/nsd.out" "$run/nsd.log" >&2 2>/dev/null; fail "nsd exited on start"; }
    _dns_ready && return 0
    sleep 0.1
  done
  fail "nsd on $DNS_ADDR:$DNS_PORT did not answer for its zones"
}

# dns_start ZONE_DIR PORT
dns_start() {
  need nsd nsd-checkconf nsd-checkzone /usr/bin/python3
  /usr/bin/python3 -c 'import dnslib' 2>/dev/null || skip_or_fail "python3-dnslib"
  DNS_ZONE_DIR=$1
  DNS_PORT=$2
  defer "_dns_stop"
  _dns_launch
}

dns_reload() {
  _dns_stop
  _dns_launch
}
