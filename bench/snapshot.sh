#!/usr/bin/env bash
# cloudkeep vs restic vs borg on the same image, in one run:
#   first snapshot, unchanged second snapshot, snapshot after changing 5%,
#   and a full restore. Prints MB/s, peak RSS and the cloudkeep/anchor
#   speed ratio per step.
# Usage: bench/snapshot.sh [CLOUDKEEP] ; SIZE_MB=2048 by default.
# CK_BASELINE=/path/to/older/cloudkeep also restores the same snapshot with
# that build, in the same run (restore step only), to compare two versions.
# Prints the load average before the run and before the restore step: the
# machine may be shared.
set -euo pipefail
CK=$(readlink -f "${1:-build/src/cli/cloudkeep}")
BASE=${CK_BASELINE:+$(readlink -f "$CK_BASELINE")}
SIZE_MB=${SIZE_MB:-2048}
for t in restic borg /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t (make deps)" >&2; exit 1; }; done
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ck-bench-snapshot.XXXXXX")
trap 'rm -rf "$W"' EXIT
img="$W/vol.img"

# Half random, half compressible text, with holes: [rand][hole][text][hole].
q=$((SIZE_MB / 8))
truncate -s "${SIZE_MB}M" "$img"
head -c $((3 * q))M /dev/urandom | dd of="$img" bs=1M conv=notrunc status=none
(set +o pipefail; /usr/bin/python3 -c '
import sys, random
random.seed(7)
words = ["volume","snapshot","chunk","latency","mail","relay","zone","store","cloud","kernel","query","table"]
out = sys.stdout
while True:
    out.write(" ".join(random.choice(words) for _ in range(12)) + "\n")
' 2>/dev/null | head -c $((3 * q))M) | dd of="$img" bs=1M seek=$((4 * q)) conv=notrunc status=none
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (before the run)"
echo "image: ${SIZE_MB} MiB apparent, $(du -m "$img" | cut -f1) MiB allocated (random, text, holes)"

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$W/restic" RESTIC_CACHE_DIR="$W/restic-cache"
export BORG_REPO="$W/borg" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR="$W/borg-base"
restic init -q >/dev/null
borg init -e none
CKS="$W/ckstore"

declare -A SEC RSS
measure() {  # measure KEY command...
  local key=$1
  shift
  sync
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$W/rss" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; echo "failed: $*" >&2; exit 1; }
  end=$(date +%s.%N)
  SEC[$key]=$(echo "$end - $start" | bc -l)
  RSS[$key]=$(tail -n 1 "$W/rss")
}

step() {  # step NAME
  local s=$1
  measure "ck-$s" "$CK" --store "$CKS" snapshot create "$img"
  measure "restic-$s" restic backup -q "$img"
  measure "borg-$s" borg create --compression zstd,3 "::$s" "$img"
}
step first
step unchanged
# Change 5%: scattered 1 MiB regions of new random data.
n=$((SIZE_MB * 5 / 100))
for i in $(seq 0 $((n - 1))); do
  dd if=/dev/urandom of="$img" bs=1M count=1 seek=$(((i * 7919) % SIZE_MB)) conv=notrunc status=none
done
step changed5pct

id=$("$CK" --store "$CKS" --json snapshot list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["id"])')
mkdir -p "$W/r-restic" "$W/r-borg"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (before the restore step)"
measure ck-restore "$CK" --store "$CKS" snapshot restore "$id" --to "$W/r-ck.img"
if [ -n "$BASE" ]; then
  measure base-restore "$BASE" --store "$CKS" snapshot restore "$id" --to "$W/r-base.img"
  cmp "$img" "$W/r-base.img" || { echo "baseline restore differs!" >&2; exit 1; }
  rm -f "$W/r-base.img"
fi
measure restic-restore restic restore -q latest --target "$W/r-restic"
measure borg-restore bash -c "cd '$W/r-borg' && borg extract ::changed5pct"
cmp "$img" "$W/r-ck.img" || { echo "cloudkeep restore differs!" >&2; exit 1; }

printf '\n%-12s %10s %10s %10s %9s %9s   %8s %8s %8s\n' step ck_MB/s restic_MB/s borg_MB/s ck/restic ck/borg ck_MiB restic_MiB borg_MiB
for s in first unchanged changed5pct restore; do
  mbs() { echo "$SIZE_MB / ${SEC[$1-$s]}" | bc -l; }
  c=$(mbs ck) r=$(mbs restic) b=$(mbs borg)
  printf '%-12s %10.0f %10.0f %10.0f %8.2fx %8.2fx   %8d %8d %8d\n' "$s" "$c" "$r" "$b" \
    "$(echo "$c / $r" | bc -l)" "$(echo "$c / $b" | bc -l)" \
    $((RSS[ck-$s] / 1024)) $((RSS[restic-$s] / 1024)) $((RSS[borg-$s] / 1024))
done
if [ -n "$BASE" ]; then
  c=$(echo "$SIZE_MB / ${SEC[ck-restore]}" | bc -l) b=$(echo "$SIZE_MB / ${SEC[base-restore]}" | bc -l)
  r=$(echo "$SIZE_MB / ${SEC[restic-restore]}" | bc -l)
  printf 'restore: baseline %s %.0f MB/s (%.2fx restic, %d MiB), this build %.0f MB/s (%.2fx baseline)\n' \
    "$BASE" "$b" "$(echo "$b / $r" | bc -l)" $((RSS[base-restore] / 1024)) "$c" "$(echo "$c / $b" | bc -l)"
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (after the run)"
printf '\nstore size: cloudkeep %s MiB, restic %s MiB, borg %s MiB\n' \
  "$(du -sm "$CKS" | cut -f1)" "$(du -sm "$W/restic" | cut -f1)" "$(du -sm "$W/borg" | cut -f1)"
