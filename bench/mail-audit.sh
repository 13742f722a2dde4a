#!/usr/bin/env bash
# Mail audit benchmark, on loopback only:
#  1. a /24 neighbourhood scan against 20 local blocklist zones served by
#     rbldnsd (256 x 20 = 5,120 A queries): cloudkeep mail rbl --block-prefix 24
#     against a threaded Python/dnslib scanner asking the same questions;
#  2. a full `mail check` (MX, SPF, DKIM, DMARC, PTR, blocklists, relay probe
#     with 19 forms, STARTTLS) against nsd + rbldnsd + unbound + Postfix,
#     against swaks running the same 19 relay forms one session each.
# Targets: the scan under 3 s, mail check under 1 s.
#
# usage: bench/mail-audit.sh [path/to/cloudkeep]   (run as root: Postfix)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export CLOUDKEEP="${1:-${CLOUDKEEP:-$HERE/../build-audit/src/cli/cloudkeep}}"
. "$HERE/../tests/integration/lib.sh"
. "$HERE/../tests/integration/lib_dns.sh"
. "$HERE/../tests/integration/lib_rbldnsd.sh"
. "$HERE/../tests/integration/lib_postfix.sh"
need hyperfine swaks rbldnsd nsd unbound postfix
RUNS=${RUNS:-10}

# --- 20 blocklists, each listing a different slice of 127.0.2.0/24
RBL="$WORK/rbl"
mkdir -p "$RBL"
ZONES=() SPECS=()
for i in $(seq 1 20); do
  {
    echo ":127.0.0.2:listed by bl$i.test"
    for j in $(seq "$i" 20 255); do echo "127.0.2.$j"; done
  } >"$RBL/bl$i"
  ZONES+=("bl$i.test")
  SPECS+=("bl$i.test:ip4set:bl$i")
done
rbl_start "$RBL" 15591 "${SPECS[@]}"
RBL_ARGS=()
for z in "${ZONES[@]}"; do RBL_ARGS+=(--rbl "$z"); done

cat >"$WORK/scan.py" <<'PY'
# The anchor: the same 5,120 questions, 64 threads, dnslib over UDP.
import sys
from concurrent.futures import ThreadPoolExecutor
from dnslib import DNSRecord
port, zones = int(sys.argv[1]), sys.argv[2:]
names = [f"{i}.2.0.127.{z}" for z in zones for i in range(256)]
def ask(n):
    return DNSRecord.parse(DNSRecord.question(n, "A").send("127.0.0.1", port, timeout=5)).rr
with ThreadPoolExecutor(64) as ex:
    listed = sum(1 for rr in ex.map(ask, names) if rr)
print(listed, "listed of", len(names))
PY
echo "== /24 scan: 20 zones x 256 addresses = 5,120 queries (rbldnsd on 127.0.0.1:15591)"
"$CK" mail rbl 127.0.2.10 --block-prefix 24 "${RBL_ARGS[@]}" --resolver 127.0.0.1:15591 | tail -4 || true
/usr/bin/python3 "$WORK/scan.py" 15591 "${ZONES[@]}"
hyperfine -N -w 1 -r "$RUNS" --export-json "$WORK/scan.json" \
  -n cloudkeep "$CK -q mail rbl 127.0.2.10 --block-prefix 24 ${RBL_ARGS[*]} --resolver 127.0.0.1:15591 --concurrency 256" \
  -n python-dnslib "/usr/bin/python3 $WORK/scan.py 15591 ${ZONES[*]}" -i

# --- a full mail check against local servers
Z="$WORK/zones"
dns_zone "$Z" good.test <<'ZONE'
@              MX  10 mx.good.test.
@              TXT "v=spf1 ip4:127.0.0.10 -all"
mx             A   127.0.0.10
_dmarc         TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.test"
s1._domainkey  TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
ZONE
dns_zone "$Z" 0.0.127.in-addr.arpa <<'ZONE'
10             PTR mx.good.test.
ZONE
dns_start "$Z" 15592
resolver_start 15590 15592 "good.test 0.0.127.in-addr.arpa" 15591 "${ZONES[*]}"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.good.test" \
  -addext "subjectAltName=DNS:mx.good.test" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"
POSTFIX_ADDR=127.0.0.10 postfix_start bench 26090 closed "$WORK/cert.pem" "$WORK/key.pem"

CHECK="$CK -q mail check good.test --resolver $RESOLVER --rbl bl1.test --rbl bl2.test --dkim-selector s1 --smtp-port 26090 --ca-file $WORK/cert.pem --no-egress"
cat >"$WORK/swaks.sh" <<SH
# The anchor: the 19 relay forms of the probe, one swaks session each.
for pair in '<>|relaytest@example.net' 'antispam@example.org|relaytest@example.net' \
  'antispam@mx.good.test|relaytest@example.net' 'antispam@[127.0.0.10]|relaytest@example.net' \
  'antispam@[127.0.0.10]|relaytest%example.net@[127.0.0.10]' 'antispam@[127.0.0.10]|relaytest%example.net@mx.good.test' \
  'antispam@[127.0.0.10]|"relaytest@example.net"' 'antispam@[127.0.0.10]|"relaytest%example.net"' \
  'antispam@[127.0.0.10]|relaytest@example.net@[127.0.0.10]' 'antispam@[127.0.0.10]|"relaytest@example.net"@[127.0.0.10]' \
  'antispam@[127.0.0.10]|relaytest@example.net@mx.good.test' 'antispam@[127.0.0.10]|@[127.0.0.10]:relaytest@example.net' \
  'antispam@[127.0.0.10]|@mx.good.test:relaytest@example.net' 'antispam@[127.0.0.10]|example.net!relaytest' \
  'antispam@[127.0.0.10]|example.net!relaytest@[127.0.0.10]' 'antispam@[127.0.0.10]|example.net!relaytest@mx.good.test' \
  'antispam|relaytest@example.net' 'antispam@localhost|relaytest@example.net' 'antispam@example.net|relaytest@example.net'; do
  swaks -tls -s 127.0.0.10:26090 --quit-after RCPT -f "\${pair%%|*}" -t "\${pair#*|}" >/dev/null 2>&1 || true
done
SH
echo
echo "== mail check good.test (MX, SPF, DKIM, DMARC, PTR, 2 blocklists, 19-form relay probe, STARTTLS)"
$CHECK | tail -3
hyperfine -N -w 1 -r "$RUNS" --export-json "$WORK/check.json" \
  -n "cloudkeep mail check" "$CHECK" \
  -n "cloudkeep mail check --no-relay-test" "$CHECK --no-relay-test" \
  -n "swaks x19 (relay forms only)" "bash $WORK/swaks.sh"
postfix_expect_no_data

/usr/bin/python3 - "$WORK/scan.json" "$WORK/check.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = {x["command"]: x for x in json.load(open(f))["results"]}
    names = list(r)
    base = r[names[0]]["mean"]
    for n in names:
        print(f"{n:40s} mean {r[n]['mean']*1000:8.1f} ms  (min {r[n]['min']*1000:.1f})  ratio {r[n]['mean']/base:.2f}")
PY
