#!/usr/bin/env bash
# How the chunk size trades speed against incremental storage: for each size,
# time a first snapshot of a 512 MiB image (half random, half text) and
# measure how much the store grows after 200 scattered 4 KiB writes (the
# typical small-write churn of a database or a log between two snapshots).
set -euo pipefail
CK=$(readlink -f "${1:-build/src/cli/cloudkeep}")
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ck-bench-chunk.XXXXXX")
trap 'rm -rf "$W"' EXIT
img="$W/vol.img"
head -c 256M /dev/urandom >"$img"
(set +o pipefail; yes "the quick brown fox jumps over the lazy dog $RANDOM" | head -c 256M) >>"$img"
printf '%-10s %12s %14s %16s\n' chunk first_MB/s store_MiB growth_KiB/200w
for cs in 65536 131072 262144 524288 1048576 4194304; do
  rm -rf "$W/store"
  cp "$img" "$W/work.img"
  start=$(date +%s.%N)
  CLOUDKEEP_CHUNK_SIZE=$cs "$CK" --store "$W/store" snapshot create "$W/work.img" >/dev/null 2>&1
  end=$(date +%s.%N)
  before=$(du -sk "$W/store/chunks" | cut -f1)
  for i in $(seq 1 200); do
    dd if=/dev/urandom of="$W/work.img" bs=4k count=1 seek=$(((i * 104729) % 131072)) conv=notrunc status=none
  done
  "$CK" --store "$W/store" snapshot create "$W/work.img" >/dev/null 2>&1
  after=$(du -sk "$W/store/chunks" | cut -f1)
  printf '%-10s %12.0f %14d %16d\n' "$((cs / 1024))K" "$(echo "512 / ($end - $start)" | bc -l)" \
    $((before / 1024)) $((after - before))
done
