#!/usr/bin/env bash
# SPF evaluations per second over the RFC 7208 conformance scenarios, side by
# side: cloudkeep, spfquery.libspf2 (libspf2) and spfquery.mail-spf-perl
# (Mail::SPF), all against the same NSD on 127.0.0.1:53.
#
# libspf2 and Net::DNS only read /etc/resolv.conf (port 53), so the whole run
# happens in private network and mount namespaces: a fresh loopback, NSD on
# its port 53, and a resolv.conf bind-mounted over the system's. Nothing
# outside the namespaces is touched. Needs root.
#
# Each scenario's zone data is served (one NSD zone per owner name; CNAME
# and TIMEOUT entries are left out), then every tool evaluates each MAIL FROM
# case of the scenario, one process per evaluation, as a mail server's
# policy daemon would not — but as the anchors' command-line tools must.
# Prints evaluations per second, the ratios, and how often each tool agreed
# with the suite's expected result (a sanity check of the setup).
#
# Then, in the same run, the batch comparison: every tool evaluates the same
# BATCH_QUERIES queries (default 2000: MAIL FROM of 1000 generated domains,
# one authorized and one unauthorized client each, records with ip4, a, mx,
# include, redirect and no SPF at all) in ONE process, against one NSD
# serving one generated zone: `cloudkeep mail spf --batch` (concurrent, over
# one resolver), libspf2's `spfquery -file` (sequential) and Mail::SPF's
# Mail::SPF::Server in a loop in one Perl process (sequential; Mail::SPF has
# no batch front end of its own). Each tool's results are compared query by
# query with the others': the comparison counts only at 100% agreement, and
# the script exits 1 otherwise. BATCH_ROUNDS (default 3) runs of each tool,
# the fastest counts; CK_CONCURRENCY (default 64) is cloudkeep's
# --concurrency. BATCH_ONLY=1 skips the per-process part.
#
#   bench/mail-spf.sh [ROUNDS]       (default 3)
set -euo pipefail
ROUNDS=${1:-3}
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
CK="${CLOUDKEEP:-$SRC/build/src/cli/cloudkeep}"
SUITE="${SPF_SUITE:-$SRC/tests/conformance/spf/rfc7208-tests.yml}"

if [ -z "${CK_BENCH_NS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "mail-spf.sh: needs root (network/mount namespaces)" >&2; exit 1; }
  for t in nsd unshare spfquery.libspf2 spfquery.mail-spf-perl perl /usr/bin/python3 "$CK"; do
    command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || { echo "mail-spf.sh: missing $t" >&2; exit 1; }
  done
  exec env CK_BENCH_NS=1 CLOUDKEEP="$CK" unshare --net --mount --propagation private bash "$0" "$@"
fi

ip link set lo up
WORK="$(mktemp -d /tmp/ck-bench-spf.XXXXXX)"
NSD_PID=""
cleanup() {
  [ -n "$NSD_PID" ] && kill "$NSD_PID" 2>/dev/null && wait "$NSD_PID" 2>/dev/null
  umount /etc/resolv.conf 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf

# Zones and cases of every scenario, from the YAML suite.
/usr/bin/python3 - "$SUITE" "$WORK" <<'PY'
import os, sys, yaml
suite, work = sys.argv[1], sys.argv[2]
def q(s):
    s = s.replace('\\', '\\\\').replace('"', '\\"')
    return '"' + s + '"'
n = 0
for sc in yaml.safe_load_all(open(suite)):
    if not sc or 'tests' not in sc: continue
    zd = sc.get('zonedata') or {}
    cases = []
    for name, t in sc['tests'].items():
        mf = t.get('mailfrom', '')
        if '@' not in mf or not mf.split('@', 1)[1]: continue
        want = t['result'] if isinstance(t['result'], list) else [t['result']]
        cases.append((str(t['host']), mf, t.get('helo', ''), ','.join(want)))
    if not cases: continue
    n += 1
    d = os.path.join(work, 'sc%02d' % n)
    os.makedirs(os.path.join(d, 'zones'))
    for owner, entries in zd.items():
        owner = owner.rstrip('.').lower()
        if any(len(l) > 63 or not l for l in owner.split('.')) or len(owner) > 250 or '/' in owner: continue
        lines, has_txt = [], any(isinstance(e, dict) and 'TXT' in e for e in entries)
        for e in entries:
            if not isinstance(e, dict): continue
            for k, v in e.items():
                if v in ('NONE', 'TIMEOUT') or k == 'CNAME': continue
                if k == 'SPF':
                    if has_txt: continue
                    k = 'TXT'
                if k == 'TXT':
                    parts = v if isinstance(v, list) else [v]
                    chunks = []
                    for p in parts:
                        p = str(p)
                        chunks += [p[i:i + 255] for i in range(0, max(len(p), 1), 255)] or ['']
                    lines.append('@ TXT ' + ' '.join(q(c) for c in chunks))
                elif k == 'MX':
                    host = str(v[1]).rstrip('.') + '.' if str(v[1]) not in ('', '.') else '.'
                    lines.append('@ MX %d %s' % (int(v[0]), host))
                elif k == 'PTR':
                    lines.append('@ PTR %s.' % str(v).rstrip('.'))
                elif k in ('A', 'AAAA'):
                    lines.append('@ %s %s' % (k, v))
        with open(os.path.join(d, 'zones', owner + '.zone'), 'w') as f:
            f.write('$ORIGIN %s.\n$TTL 300\n' % owner)
            f.write('@ SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 300\n@ NS ns.invalid.\n')
            f.write('\n'.join(lines) + '\n')
    with open(os.path.join(d, 'cases'), 'w') as f:
        for c in cases: f.write('\t'.join(c) + '\n')
PY

start_nsd() {
  local dir=$1 f origin
  [ -n "$NSD_PID" ] && { kill "$NSD_PID"; wait "$NSD_PID" 2>/dev/null || true; NSD_PID=""; }
  {
    printf 'server:\n  ip-address: 127.0.0.1@53\n  do-ip6: no\n  username: ""\n  chroot: ""\n'
    printf '  pidfile: "%s/nsd.pid"\n  database: ""\n  zonelistfile: "%s/zone.list"\n' "$dir" "$dir"
    printf '  xfrdfile: "%s/xfrd.state"\n  xfrdir: "%s"\n  logfile: "%s/nsd.log"\n  server-count: 1\n' "$dir" "$dir" "$dir"
    printf '  rrl-ratelimit: 0\n  verbosity: 0\nremote-control:\n  control-enable: no\n'
    for f in "$dir"/zones/*.zone; do
      origin=$(basename "$f" .zone)
      nsd-checkzone "$origin" "$f" >/dev/null 2>&1 || continue
      printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "$origin" "$f"
    done
  } >"$dir/nsd.conf"
  nsd -d -c "$dir/nsd.conf" >"$dir/nsd.out" 2>&1 &
  NSD_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.2); s.sendto(bytes.fromhex("abcd01000001000000000000000006000100"),("127.0.0.1",53)); s.recv(512)' 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nsd did not start: $(cat "$dir/nsd.out")" >&2
  exit 1
}

ck_eval_fast() { "$CLOUDKEEP" --json mail spf --no-lint --resolver 127.0.0.1:53 --timeout 2s --ip "$1" --sender "$2" ${3:+--helo "$3"} 2>/dev/null | sed -n 's/^ *"result": *"\([a-z]*\)".*/\1/p' || true; }
libspf2_eval() { spfquery.libspf2 -ip "$1" -sender "$2" ${3:+-helo "$3"} 2>/dev/null | head -1 || true; }
perl_eval() { spfquery.mail-spf-perl --scope mfrom --id "$2" --ip "$1" ${3:+--helo-id "$3"} 2>/dev/null | head -1 || true; }

per_process() {
declare -A TIME EVALS AGREE
TOOLS=(cloudkeep libspf2 mail-spf-perl)
for t in "${TOOLS[@]}"; do TIME[$t]=0; EVALS[$t]=0; AGREE[$t]=0; done

now() { date +%s.%N; }
for sc in "$WORK"/sc*; do
  start_nsd "$sc"
  for t in "${TOOLS[@]}"; do
    case $t in cloudkeep) fn=ck_eval_fast ;; libspf2) fn=libspf2_eval ;; mail-spf-perl) fn=perl_eval ;; esac
    t0=$(now)
    n=0
    for ((r = 0; r < ROUNDS; r++)); do
      while IFS=$'\t' read -r ip mf helo want; do
        got=$($fn "$ip" "$mf" "$helo" | tr -d '\r' | awk '{print tolower($1)}')
        n=$((n + 1))
        if [ "$r" -eq 0 ] && [[ ",$want," == *",$got,"* ]]; then AGREE[$t]=$((AGREE[$t] + 1)); fi
      done <"$sc/cases"
    done
    t1=$(now)
    TIME[$t]=$(echo "${TIME[$t]} + $t1 - $t0" | bc -l)
    EVALS[$t]=$((EVALS[$t] + n))
  done
done

cases=$(cat "$WORK"/sc*/cases | wc -l)
printf '%-14s %8s %10s %12s %10s\n' TOOL EVALS SECONDS EVALS_PER_S AGREES
for t in "${TOOLS[@]}"; do
  printf '%-14s %8d %10.2f %12.1f %6d/%d\n' "$t" "${EVALS[$t]}" "${TIME[$t]}" "$(echo "${EVALS[$t]} / ${TIME[$t]}" | bc -l)" "${AGREE[$t]}" "$cases"
done
ck_rate=$(echo "${EVALS[cloudkeep]} / ${TIME[cloudkeep]}" | bc -l)
for t in libspf2 mail-spf-perl; do
  printf 'cloudkeep / %-14s %.2fx\n' "$t" "$(echo "$ck_rate / (${EVALS[$t]} / ${TIME[$t]})" | bc -l)"
done
}
[ -n "${BATCH_ONLY:-}" ] || per_process

# ---- Batch: the same queries, one process per tool ----
BATCH_N=${BATCH_QUERIES:-2000}
BATCH_ROUNDS=${BATCH_ROUNDS:-3}
B="$WORK/batch"
mkdir -p "$B/zones"
/usr/bin/python3 - "$B" "$BATCH_N" <<'PY'
import sys
out, n = sys.argv[1], int(sys.argv[2])
z = ['$ORIGIN bench.test.', '$TTL 3600',
     '@ SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 3600', '@ NS ns.invalid.']
queries = []
for i in range((n + 1) // 2):
    d = 'd%d' % i
    net = '10.%d.%d' % (i // 250, i % 250)
    kind = i % 5
    if kind == 0:
        z.append('%s TXT "v=spf1 ip4:%s.0/28 -all"' % (d, net))
    elif kind == 1:
        z += ['%s TXT "v=spf1 mx a:out.%s.bench.test -all"' % (d, d), '%s MX 10 mx.%s' % (d, d),
              'mx.%s A %s.10' % (d, net), 'out.%s A %s.11' % (d, net)]
    elif kind == 2:
        z += ['%s TXT "v=spf1 include:_spf.%s.bench.test ~all"' % (d, d),
              '_spf.%s TXT "v=spf1 ip4:%s.8/29 -all"' % (d, net)]
    elif kind == 3:
        z += ['%s TXT "v=spf1 redirect=_r.%s.bench.test"' % (d, d),
              '_r.%s TXT "v=spf1 a:h.%s.bench.test ?all"' % (d, d), 'h.%s A %s.10' % (d, net)]
    else:
        z.append('%s TXT "site-verification=%d"' % (d, i))  # no SPF record: none
    for host in ('10', '99'):
        queries.append('%s.%s u%d@%s.bench.test mail.%s.bench.test' % (net, host, i, d, d))
open(out + '/zones/bench.test.zone', 'w').write('\n'.join(z) + '\n')
open(out + '/queries', 'w').write('\n'.join(queries[:n]) + '\n')
PY
cat >"$WORK/spf-batch.pl" <<'PERL'
# Mail::SPF's evaluator in a loop: one process, one Mail::SPF::Server.
use strict;
use warnings;
use Mail::SPF;
my $server = Mail::SPF::Server->new();
while (my $line = <STDIN>) {
  my ($ip, $sender, $helo) = split ' ', $line;
  next unless defined $sender;
  my $request = eval {
    Mail::SPF::Request->new(scope => 'mfrom', identity => $sender, ip_address => $ip,
                            defined $helo ? (helo_identity => $helo) : ());
  };
  print $request ? $server->process($request)->code : 'error', "\n";
}
PERL
start_nsd "$B"
ck_batch() { "$CLOUDKEEP" mail spf --batch "$B/queries" --resolver 127.0.0.1:53 --timeout 2s --concurrency "${CK_CONCURRENCY:-64}" | cut -f1; }
libspf2_batch() { { spfquery.libspf2 -file "$B/queries" 2>/dev/null || true; } | sed -n 's/^Received-SPF: \([a-z]*\) .*/\1/p'; }
perl_batch() { perl "$WORK/spf-batch.pl" <"$B/queries"; }
declare -A BEST
BTOOLS=(cloudkeep libspf2 mail-spf-perl)
for t in "${BTOOLS[@]}"; do
  case $t in cloudkeep) fn=ck_batch ;; libspf2) fn=libspf2_batch ;; mail-spf-perl) fn=perl_batch ;; esac
  BEST[$t]=""
  for ((r = 0; r < BATCH_ROUNDS; r++)); do
    t0=$(date +%s.%N)
    $fn >"$B/$t.out"
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "${BEST[$t]}" ] || [ "$(echo "$s < ${BEST[$t]}" | bc -l)" -eq 1 ]; then BEST[$t]=$s; fi
  done
done
nq=$(wc -l <"$B/queries")
echo
echo "batch: $nq queries, one process per tool, best of $BATCH_ROUNDS"
printf '%-14s %8s %10s %12s %12s\n' TOOL QUERIES SECONDS QUERIES_PER_S AGREES
agree_all=1
for t in "${BTOOLS[@]}"; do
  same=$(paste -d' ' "$B/cloudkeep.out" "$B/$t.out" | awk '$1 == $2 && $1 != ""' | wc -l)
  [ "$same" -eq "$nq" ] && [ "$(wc -l <"$B/$t.out")" -eq "$nq" ] || agree_all=0
  printf '%-14s %8d %10.3f %12.1f %7d/%d\n' "$t" "$nq" "${BEST[$t]}" "$(echo "$nq / ${BEST[$t]}" | bc -l)" "$same" "$nq"
done
echo "results: $(sort "$B/cloudkeep.out" | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
for t in libspf2 mail-spf-perl; do
  printf 'batch cloudkeep / %-14s %.2fx\n' "$t" "$(echo "${BEST[$t]} / ${BEST[cloudkeep]}" | bc -l)"
done
if [ "$agree_all" -ne 1 ]; then
  echo "mail-spf.sh: the tools disagree on some batch queries (AGREES above): no comparison" >&2
  paste "$B/queries" "$B/cloudkeep.out" "$B/libspf2.out" "$B/mail-spf-perl.out" | awk -F'\t' '$2 != $3 || $2 != $4' | head -5 >&2
  exit 1
fi
