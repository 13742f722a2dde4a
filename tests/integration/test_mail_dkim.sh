#!/usr/bin/env bash
# DKIM end to end against a real authoritative DNS server (nsd on loopback)
# and the two reference implementations, both ways:
#   - `mail dkim keygen`: key files (mode 0600), the TXT record served by nsd;
#   - `mail dkim check`: good, short, tiny, testing, revoked, missing, garbage selectors;
#   - ours -> theirs: our RSA and Ed25519 signatures verify with dkimpy
#     (python3-dkim) and with OpenDKIM's opendkim-testmsg; tampering fails;
#   - theirs -> ours: dkimsign (RSA, Ed25519) and opendkim-testmsg signatures
#     verify with `mail dkim verify`; tampering fails;
#   - the RFC 8463 Appendix A message verifies offline with --key-file.
# libopendkim resolves through /etc/resolv.conf (port 53 only), so the
# OpenDKIM steps run in a network and mount namespace of their own, with a
# second nsd on that namespace's 127.0.0.1:53 and a private resolv.conf.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"

need dkimsign dknewkey opendkim-testmsg opendkim-genkey openssl unshare nsd /usr/bin/python3
/usr/bin/python3 -c 'import dkim, dns.query' 2>/dev/null || skip_or_fail "python3-dkim and python3-dnspython"
need_root

PORT=$(free_port)
D=dkim.test
R=(--resolver "127.0.0.1:$PORT")
K="$WORK/keys"
mkdir -p "$K"

# --- keys: ours (keygen), dkimpy's (dknewkey), OpenDKIM's (opendkim-genkey)
expect_rc 0 "$CK" --json mail dkim keygen --selector rsa2048 --domain $D --out "$K/rsa2048.pem"
RSA_ZONE=$(json_get 'd["zone_line"]' <<<"$OUT")
expect_eq "$(json_get 'd["bits"]' <<<"$OUT")" 2048 "rsa key size"
expect_eq "$(stat -c %a "$K/rsa2048.pem")" 600 "private key mode"
expect_rc 2 "$CK" mail dkim keygen --selector rsa2048 --domain $D --out "$K/rsa2048.pem"
expect_contains "$ERR" "--force"
expect_rc 0 "$CK" mail dkim keygen --type ed25519 --selector ed --domain $D --out "$K/ed.pem"
ED_ZONE=$OUT
expect_contains "$ED_ZONE" 'ed._domainkey.dkim.test. IN TXT "v=DKIM1; k=ed25519; p='
expect_eq "$(stat -c %a "$K/ed.pem")" 600 "private key mode"
expect_rc 0 "$CK" mail dkim keygen --bits 1024 --selector short --domain $D --out "$K/short.pem"
SHORT_ZONE=$OUT
expect_rc 2 "$CK" mail dkim keygen --type dsa --selector x --domain $D --out "$K/x.pem"
expect_contains "$ERR" "'dsa'"

(cd "$K" && dknewkey py >/dev/null && dknewkey --ktype ed25519 pyed >/dev/null)
opendkim-genkey --directory="$K" --domain=$D --selector=od >/dev/null
TINY=$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 2>/dev/null | openssl pkey -pubout -outform DER | base64 -w0)
TESTING=$(sed -n 's/.*p=\([^"]*\)".*/\1/p' <<<"$SHORT_ZONE" | tr -d '\n')

# dknewkey writes "k=…; p=…" (no name); the zone wants quoted strings of <= 255 bytes.
quote() { /usr/bin/python3 -c 'import sys; t=sys.stdin.read().strip(); print(" ".join("\"%s\"" % t[i:i+255] for i in range(0, len(t), 255)))'; }

Z="$WORK/zones"
dns_zone "$Z" $D <<ZONE
$RSA_ZONE
$ED_ZONE
$SHORT_ZONE
${RSA_ZONE/rsa2048._domainkey/default._domainkey}
py._domainkey IN TXT ( $(quote <"$K/py.dns") )
pyed._domainkey IN TXT ( $(quote <"$K/pyed.dns") )
$(cat "$K/od.txt")
tiny._domainkey IN TXT "v=DKIM1; k=rsa; p=$TINY"
testing._domainkey IN TXT "v=DKIM1; k=rsa; t=y; p=$TESTING"
revoked._domainkey IN TXT "v=DKIM1; k=rsa; p="
garbage._domainkey IN TXT "v=DKIM1; k=rsa; p=bm90IGEga2V5"
ZONE
dns_start "$Z" $PORT

# --- key record checks
expect_rc 0 "$CK" --json mail dkim check $D --dkim-selector rsa2048 --dkim-selector ed "${R[@]}"
expect_eq "$(json_get 'd["result"]' <<<"$OUT")" pass
expect_eq "$(json_get '[s["key_bits"] for s in d["selectors"]]' <<<"$OUT")" "[2048, 256]"
expect_rc 0 "$CK" --json mail dkim check $D --dkim-selector short "${R[@]}"
expect_eq "$(json_get 'd["result"]' <<<"$OUT")" warn
expect_rc 0 "$CK" --json mail dkim check $D --dkim-selector testing "${R[@]}"
expect_eq "$(json_get 'd["selectors"][0]["testing"]' <<<"$OUT")" True
expect_rc 0 "$CK" --json mail dkim check $D --dkim-selector revoked "${R[@]}"
expect_eq "$(json_get 'd["selectors"][0]["revoked"]' <<<"$OUT")" True
for bad in tiny garbage missing; do
  expect_rc 1 "$CK" --json mail dkim check $D --dkim-selector $bad "${R[@]}"
  expect_eq "$(json_get 'd["result"]' <<<"$OUT")" fail "selector $bad"
done
expect_rc 1 "$CK" mail dkim check $D --dkim-selector tiny "${R[@]}"
expect_contains "$OUT" "RSA key of 512 bits"
# No selector given: the common ones are tried; "default" is among them.
expect_rc 0 "$CK" --json mail dkim check $D "${R[@]}"
expect_eq "$(json_get '[s["selector"] for s in d["selectors"]]' <<<"$OUT")" "['default']"

# --- messages
msg() {  # msg FILE: a message with CRLF line endings
  printf 'From: Alice <alice@dkim.test>\r\nTo: bob@example.net\r\nSubject: Interop  test\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@dkim.test>\r\n\r\nHello Bob,\r\n\r\nthe numbers  are in.  \r\n\r\n' "$RANDOM" >"$1"
}
tamper_body() { sed 's/numbers/NUMBERS/' "$1"; }
tamper_header() { sed 's/^Subject: Interop/Subject: Intercept/' "$1"; }
msg "$WORK/plain.eml"

cat >"$WORK/pyverify.py" <<'PY'
# dkimpy verification of the first DKIM-Signature, with keys from the test's nsd.
import sys
import dkim
import dns.message, dns.query, dns.rdatatype

port = int(sys.argv[1])

def txt(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    r = dns.query.udp(dns.message.make_query(name, "TXT"), "127.0.0.1", port=port, timeout=timeout)
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return b"".join(list(rrset.items)[0].strings)
    return None

ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=txt)
print("pass" if ok else "fail")
sys.exit(0 if ok else 1)
PY
pyverify() { /usr/bin/python3 "$WORK/pyverify.py" $PORT; }

# opendkim-testmsg in its own namespaces: nsd on 127.0.0.1:53 there.
NS_RUN="$WORK/ns53"
mkdir -p "$NS_RUN"
{
  echo "server:"
  echo "  ip-address: 127.0.0.1@53"
  echo "  do-ip6: no"
  echo "  username: \"\""
  echo "  chroot: \"\""
  echo "  pidfile: \"$NS_RUN/nsd.pid\""
  echo "  database: \"\""
  echo "  zonelistfile: \"$NS_RUN/zone.list\""
  echo "  xfrdfile: \"$NS_RUN/xfrd.state\""
  echo "  xfrdir: \"$NS_RUN\""
  echo "  logfile: \"$NS_RUN/nsd.log\""
  echo "  server-count: 1"
  echo "remote-control:"
  echo "  control-enable: no"
  echo "zone:"
  echo "  name: \"$D\""
  echo "  zonefile: \"$Z/$D.zone\""
} >"$NS_RUN/nsd.conf"
echo "nameserver 127.0.0.1" >"$NS_RUN/resolv.conf"
cat >"$NS_RUN/run.sh" <<'SH'
# Runs inside `unshare --net --mount`: everything here dies with the namespace.
set -u
run=$1; shift
ip link set lo up
mount --bind "$run/resolv.conf" /etc/resolv.conf
nsd -d -c "$run/nsd.conf" >"$run/nsd.out" 2>&1 &
nsd_pid=$!
trap 'kill $nsd_pid 2>/dev/null; wait $nsd_pid 2>/dev/null' EXIT
for i in $(seq 100); do
  /usr/bin/python3 -c 'import dns.message,dns.query,sys; dns.query.udp(dns.message.make_query("dkim.test","SOA"),"127.0.0.1",port=53,timeout=0.5)' 2>/dev/null && break
  sleep 0.1
done
"$@"
SH
in_ns() { unshare --net --mount bash "$NS_RUN/run.sh" "$NS_RUN" "$@"; }
odverify() { in_ns opendkim-testmsg; }

# --- ours -> dkimpy and OpenDKIM
for spec in "rsa2048 relaxed/relaxed" "rsa2048 simple/simple" "ed relaxed/simple" "ed simple/relaxed"; do
  set -- $spec
  expect_rc 0 "$CK" mail dkim sign --key "$K/$1.pem" --domain $D --selector $1 --canon $2 --out "$WORK/s.eml" "$WORK/plain.eml"
  pyverify <"$WORK/s.eml" >/dev/null || fail "dkimpy rejects our $1 $2 signature"
  if tamper_body "$WORK/s.eml" | pyverify >/dev/null; then fail "dkimpy accepts a tampered body ($1 $2)"; fi
  if tamper_header "$WORK/s.eml" | pyverify >/dev/null; then fail "dkimpy accepts a tampered header ($1 $2)"; fi
  odverify <"$WORK/s.eml" || fail "opendkim-testmsg rejects our $1 $2 signature"
  if tamper_body "$WORK/s.eml" | odverify 2>/dev/null; then fail "opendkim accepts a tampered body ($1 $2)"; fi
  if tamper_header "$WORK/s.eml" | odverify 2>/dev/null; then fail "opendkim accepts a tampered header ($1 $2)"; fi
  expect_rc 0 "$CK" mail dkim verify "${R[@]}" "$WORK/s.eml"
  expect_contains "$OUT" "pass"
done
# A message with Unix line endings is signed as on the wire and stays Unix.
tr -d '\r' <"$WORK/plain.eml" >"$WORK/lf.eml"
expect_rc 0 "$CK" mail dkim sign --key "$K/rsa2048.pem" --domain $D --selector rsa2048 --out "$WORK/s-lf.eml" "$WORK/lf.eml"
[ "$(grep -c $'\r' "$WORK/s-lf.eml" || true)" = 0 ] || fail "signed LF message gained CRs"
odverify <"$WORK/s-lf.eml" || fail "opendkim-testmsg rejects our signature on an LF message"
sed 's/$/\r/' "$WORK/s-lf.eml" | pyverify >/dev/null || fail "dkimpy rejects our signature on an LF message"

# --- dkimpy and OpenDKIM -> ours
dkimsign py $D "$K/py.key" <"$WORK/plain.eml" >"$WORK/py.eml"
dkimsign --signalg ed25519-sha256 --hcanon relaxed --bcanon relaxed pyed $D "$K/pyed.key" <"$WORK/plain.eml" >"$WORK/pyed.eml"
# opendkim-testmsg signs with rsa-sha1 only, which RFC 8301 §3.1 forbids
# verifiers to accept: ours must say so. libopendkim itself signs rsa-sha256
# and ed25519-sha256 when asked (dkim_opendkim_sign.py, through ctypes).
tr -d '\r' <"$WORK/plain.eml" | in_ns opendkim-testmsg -d $D -k "$K/od.private" -s od >"$WORK/od-sha1.eml"
expect_rc 1 "$CK" mail dkim verify "${R[@]}" "$WORK/od-sha1.eml"
expect_contains "$OUT" "RFC 8301"
ODSIGN=(/usr/bin/python3 "$(dirname "$0")/dkim_opendkim_sign.py")
"${ODSIGN[@]}" "$K/od.private" od $D rsa-sha256 relaxed simple <"$WORK/plain.eml" >"$WORK/od.eml"
"${ODSIGN[@]}" "$K/ed.pem" ed $D ed25519-sha256 relaxed relaxed <"$WORK/plain.eml" >"$WORK/oded.eml"
for m in py pyed od oded; do
  expect_rc 0 "$CK" --json mail dkim verify "${R[@]}" "$WORK/$m.eml"
  expect_eq "$(json_get 'd["result"]' <<<"$OUT")" pass "$m signature"
  tamper_body "$WORK/$m.eml" >"$WORK/t.eml"
  expect_rc 1 "$CK" --json mail dkim verify "${R[@]}" "$WORK/t.eml"
  expect_eq "$(json_get 'd["signatures"][0]["result"]' <<<"$OUT")" fail "$m tampered body"
  tamper_header "$WORK/$m.eml" >"$WORK/t.eml"
  expect_rc 1 "$CK" mail dkim verify "${R[@]}" "$WORK/t.eml"
  expect_contains "$ERR" "no valid DKIM signature: fail"
done
expect_eq "$(json_get 'd["signatures"][0]["algorithm"]' < <("$CK" --json mail dkim verify "${R[@]}" "$WORK/pyed.eml"))" ed25519-sha256
# Our signer reads dkimpy's Ed25519 key format too.
expect_rc 0 "$CK" mail dkim sign --key "$K/pyed.key" --domain $D --selector pyed --out "$WORK/s.eml" "$WORK/plain.eml"
pyverify <"$WORK/s.eml" >/dev/null || fail "dkimpy rejects our signature made with its own Ed25519 key"

# --- key lookup failures
expect_rc 0 "$CK" mail dkim sign --key "$K/rsa2048.pem" --domain $D --selector missing --out "$WORK/s.eml" "$WORK/plain.eml"
expect_rc 1 "$CK" --json mail dkim verify "${R[@]}" "$WORK/s.eml"
expect_eq "$(json_get 'd["signatures"][0]["result"]' <<<"$OUT")" permerror
expect_rc 0 "$CK" mail dkim sign --key "$K/rsa2048.pem" --domain $D --selector revoked --out "$WORK/s.eml" "$WORK/plain.eml"
expect_rc 1 "$CK" mail dkim verify "${R[@]}" "$WORK/s.eml"
expect_contains "$OUT" "revoked"
# A server that does not answer: temperror, not a hang and not a fail.
expect_rc 1 "$CK" --json mail dkim verify --resolver "127.0.0.1:$(free_port)" --timeout 1s "$WORK/py.eml"
expect_eq "$(json_get 'd["signatures"][0]["result"]' <<<"$OUT")" temperror

# --- RFC 8463 Appendix A, offline keys
C="${CK_SOURCE_DIR:-$(dirname "$0")/../..}/tests/conformance/dkim"
expect_rc 0 "$CK" --json mail dkim verify --key-file "$C/dns-records.txt" "$C/rfc8463-a3-signed.msg"
expect_eq "$(json_get '[s["result"] for s in d["signatures"]]' <<<"$OUT")" "['pass', 'pass']"
expect_rc 1 "$CK" mail dkim verify --key-file "$C/dns-records.txt" "$C/rfc8463-unsigned.msg"
expect_contains "$ERR" "none"

# --- bad input: exit 2, naming the value
expect_rc 2 "$CK" mail dkim sign --key "$K/rsa2048.pem" --domain $D --selector s --canon loose "$WORK/plain.eml"
expect_contains "$ERR" "'loose'"
expect_rc 2 "$CK" mail dkim sign --key "$WORK/nokey" --domain $D --selector s "$WORK/plain.eml"
expect_rc 2 "$CK" mail dkim verify --key-record "v=DKIM1; k=dsa; p=" "$WORK/plain.eml"
expect_rc 2 "$CK" mail dkim check $D --dkim-selector x --resolver 127.0.0.1:99999
