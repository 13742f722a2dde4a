# rbldnsd serving test blocklists, and an unbound resolver in front of it
# and of the test zones, for the mail audit tests. Source after lib.sh.
#
# PORTs come from lib.sh free_port, never fixed numbers.
#   rbl_start DIR PORT ZONESPEC...   rbldnsd on 127.0.0.1:PORT, e.g.
#                                    "bl.test:ip4set:bl4 bl.test:ip6trie:bl6"
#                                    (files relative to DIR); stopped at exit
#   resolver_start PORT AUTH_PORT "ZONE..." RBL_PORT "RBLZONE..."
#                                    unbound on 127.0.0.1:PORT: ZONEs are asked
#                                    of the authoritative server on AUTH_PORT
#                                    (nsd, lib_dns.sh), RBLZONEs of rbldnsd;
#                                    every other name is refused, so nothing
#                                    ever leaves loopback. Sets RESOLVER.

rbl_start() {
  local dir=$1 port=$2
  shift 2
  need rbldnsd
  rbldnsd -n -4 -b "127.0.0.1/$port" -w "$dir" -t 60 -c 1h -p "$dir/rbldnsd.pid" "$@" >"$dir/rbldnsd.out" 2>&1 &
  local pid=$!
  defer "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  wait_for test -s "$dir/rbldnsd.pid"
}

resolver_start() {
  local port=$1 auth_port=$2 zones=$3 rbl_port=$4 rbl_zones=$5 z
  need unbound unbound-checkconf
  local dir="$WORK/unbound-$port"
  mkdir -p "$dir"
  {
    echo "server:"
    echo "  interface: 127.0.0.1@$port"
    echo "  port: $port"
    echo "  do-ip6: no"
    echo "  username: \"\""
    echo "  chroot: \"\""
    echo "  directory: \"$dir\""
    echo "  pidfile: \"$dir/unbound.pid\""
    echo "  use-syslog: no"
    echo "  logfile: \"$dir/unbound.log\""
    echo "  do-daemonize: no"
    echo "  num-threads: 1"
    echo "  module-config: \"iterator\""
    echo "  do-not-query-localhost: no"
    echo "  qname-minimisation: no"
    echo "  ratelimit: 0"
    echo "  ip-ratelimit: 0"
    echo "  num-queries-per-thread: 4096"
    echo "  outgoing-range: 8192"
    echo "  so-reuseport: no"
    echo "  access-control: 127.0.0.0/8 allow"
    # Nothing outside the test zones: no root servers, ever.
    echo "  local-zone: \".\" refuse"
    echo "  local-zone: \"test.\" nodefault"
    echo "  local-zone: \"127.in-addr.arpa.\" nodefault"
    for z in $zones $rbl_zones; do echo "  local-zone: \"$z.\" transparent"; done
    echo "remote-control:"
    echo "  control-enable: no"
    for z in $zones; do printf 'stub-zone:\n  name: "%s."\n  stub-addr: 127.0.0.1@%s\n' "$z" "$auth_port"; done
    for z in $rbl_zones; do printf 'stub-zone:\n  name: "%s."\n  stub-addr: 127.0.0.1@%s\n' "$z" "$rbl_port"; done
  } >"$dir/unbound.conf"
  unbound-checkconf "$dir/unbound.conf" >/dev/null || fail "unbound configuration rejected: $dir/unbound.conf"
  unbound -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
  local pid=$!
  defer "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  RESOLVER="127.0.0.1:$port"
  local first
  first=$(echo $zones $rbl_zones | awk '{print $1}')
  wait_for _resolver_answers "$port" "$first"
}

_resolver_answers() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
from dnslib import DNSRecord
# rbldnsd has no SOA unless told: ask for a name under the zone instead.
q = DNSRecord.question("ready." + sys.argv[2], "A")
a = DNSRecord.parse(q.send("127.0.0.1", int(sys.argv[1]), timeout=1))
sys.exit(0 if a.header.rcode in (0, 3) else 1)
PY
}
