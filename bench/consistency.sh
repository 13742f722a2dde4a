#!/bin/bash
# Freeze and lock windows of `snapshot create --freeze --mysql` with a reflink
# capture of a 1 GiB image under write load (a MariaDB taking a steady stream
# of inserts, plus a file writer), 20 snapshots; side by side with the
# original script's way of doing the same capture: fsfreeze -f; cp
# --reflink=always; fsfreeze -u (util-linux, no database lock).
#
#   sudo bench/consistency.sh [path/to/cloudkeep] [runs]
# Prints median and max of each window and the ratio cloudkeep / anchor.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export CLOUDKEEP="${1:-$HERE/../build/src/cli/cloudkeep}"
RUNS="${2:-20}"
# The integration helpers give the real components and their cleanup.
. "$HERE/../tests/integration/lib.sh"
. "$HERE/../tests/integration/consistency_helpers.sh"
need_root
need mkfs.xfs losetup mariadbd fsfreeze cp

mkfs_loop 4G xfs "$WORK/outer"
IMG="$WORK/outer/db.img"
truncate -s 1G "$IMG"
mkfs.xfs -q "$IMG"
DB_LOOP="$(losetup --find --show "$IMG")"
defer "losetup -d '$DB_LOOP'"
MNT="$WORK/db"
mkdir -p "$MNT"
mount "$DB_LOOP" "$MNT"
defer "umount -l '$MNT'"
head -c 400M /dev/urandom >"$MNT/payload"   # a realistic share of the image is data
start_mariadb bench "$MNT/mysql" 13391 init
start_writer bench
setsid bash -c "while :; do dd if=/dev/urandom of='$MNT/churn' bs=64k count=64 conv=fsync status=none; done" \
  >/dev/null 2>&1 &
CHURN=$!
defer "kill -- -$CHURN"

STORE="$WORK/store"
: >"$WORK/ck.csv"
for ((i = 0; i < RUNS; i++)); do
  "$CK" --json --store "$STORE" snapshot create "$IMG" --freeze --mysql --mysql-defaults-file "$MY_CNF_bench" \
    2>/dev/null | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin)["snapshots"][0]; print(s["freeze_us"], s["lock_us"], s["consistency"])' >>"$WORK/ck.csv"
  sleep 0.5
done

: >"$WORK/anchor.csv"
for ((i = 0; i < RUNS; i++)); do
  t0=$(date +%s%N)
  fsfreeze --freeze "$MNT"
  cp --reflink=always "$IMG" "$WORK/outer/anchor.clone"
  fsfreeze --unfreeze "$MNT"
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000)) >>"$WORK/anchor.csv"
  rm -f "$WORK/outer/anchor.clone"
  sleep 0.5
done

/usr/bin/python3 - "$WORK/ck.csv" "$WORK/anchor.csv" <<'PY'
import statistics, sys
ck = [l.split() for l in open(sys.argv[1]) if l.strip()]
anchor = [int(l) for l in open(sys.argv[2]) if l.strip()]
freeze = [int(r[0]) for r in ck]; lock = [int(r[1]) for r in ck]
levels = {r[2] for r in ck}
ms = lambda us: f"{us/1000:.1f} ms"
print(f"runs: cloudkeep {len(ck)} (consistency: {', '.join(sorted(levels))}), anchor {len(anchor)}")
print(f"{'window':<42}{'median':>12}{'max':>12}")
print(f"{'cloudkeep freeze (FIFREEZE..FITHAW)':<42}{ms(statistics.median(freeze)):>12}{ms(max(freeze)):>12}")
print(f"{'cloudkeep table lock (FTWRL..UNLOCK)':<42}{ms(statistics.median(lock)):>12}{ms(max(lock)):>12}")
print(f"{'anchor fsfreeze -f; cp --reflink; -u':<42}{ms(statistics.median(anchor)):>12}{ms(max(anchor)):>12}")
print(f"ratio cloudkeep/anchor freeze median: {statistics.median(freeze)/statistics.median(anchor):.2f}")
print(f"target freeze median < 50 ms: {'met' if statistics.median(freeze) < 50000 else 'NOT met'}")
PY
