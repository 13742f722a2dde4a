#!/usr/bin/env bash
# `cloudkeep snapshot serve` vs `nbdkit file` and `qemu-nbd` serving the
# restored image, on the same image, in one run:
#   - sequential read throughput (fio nbd engine, 1 MiB blocks, depth 8, the whole image),
#   - 4 KiB random-read IOPS at queue depth 1 and 16 (time-based),
#   each cold (a fresh server; the files it reads evicted from the page cache
#   with posix_fadvise(DONTNEED) — only those files, nothing system-wide) and
#   warm (the same run again, after one full read);
#   - time to first byte of `snapshot serve` (process start to the first 4 KiB
#     read answered, cold) vs the time of a full `snapshot restore` (cold).
# Prints a table with cloudkeep/anchor ratios.
# Usage: bench/nbd.sh [CLOUDKEEP]; SIZE_MB=2048, RUNTIME=10 (seconds per random run) and
# ROUNDS=3 (medians are printed) by default.
set -euo pipefail
CK=$(readlink -f "${1:-build/src/cli/cloudkeep}")
SIZE_MB=${SIZE_MB:-2048}
RT=${RUNTIME:-10}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3  # Debian's, with python3-libnbd
for t in fio nbdkit qemu-nbd "$PY"; do command -v "$t" >/dev/null || { echo "missing $t (make deps)" >&2; exit 1; }; done
"$PY" -c 'import nbd' 2>/dev/null || { echo "missing python3-libnbd" >&2; exit 1; }
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ck-bench-nbd.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
img="$W/vol.img"

# The image of bench/snapshot.sh: [random 3/8][hole 1/8][text 3/8][hole 1/8].
q=$((SIZE_MB / 8))
truncate -s "${SIZE_MB}M" "$img"
head -c $((3 * q))M /dev/urandom | dd of="$img" bs=1M conv=notrunc status=none
(set +o pipefail; "$PY" -c '
import sys, random
random.seed(7)
words = ["volume","snapshot","chunk","latency","mail","relay","zone","store","cloud","kernel","query","table"]
while True:
    sys.stdout.write(" ".join(random.choice(words) for _ in range(12)) + "\n")
' 2>/dev/null | head -c $((3 * q))M) | dd of="$img" bs=1M seek=$((4 * q)) conv=notrunc status=none
STORE="$W/store"
id=$("$CK" --store "$STORE" --json snapshot create "$img" 2>/dev/null |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')
echo "image: ${SIZE_MB} MiB apparent, $(du -m "$img" | cut -f1) MiB allocated; store $(du -sm "$STORE" | cut -f1) MiB; snapshot $id"
restored="$W/restored.img"
"$CK" -q --store "$STORE" snapshot restore "$id" --to "$restored" >/dev/null
rm -f "$img"

# evict FILE|DIR...: drops these files' pages from the page cache (theirs only).
evict() {
  "$PY" - "$@" <<'PY'
import os, sys
for top in sys.argv[1:]:
    paths = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}

wait_socket() {
  local i
  for ((i = 0; i < 400; i++)); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "no socket $1" >&2
  exit 1
}

SERVER_PID=""
start_server() {  # start_server ck|nbdkit|qemu: a fresh server on $W/NAME.sock; sets URI
  local s=$1 sock="$W/$1.sock"
  stop_server
  rm -f "$sock"
  case "$s" in
    ck)
      evict "$STORE"
      "$CK" -q --store "$STORE" snapshot serve "$id" --socket "$sock" --cache-size $((SIZE_MB + 64))M >/dev/null &
      URI="nbd+unix:///$id?socket=$sock" ;;
    nbdkit)
      evict "$restored"
      nbdkit -r -f -U "$sock" file "$restored" &
      URI="nbd+unix:///?socket=$sock" ;;
    qemu)
      evict "$restored"
      qemu-nbd -r -f raw --persistent --shared=8 --cache=writeback --aio=threads -k "$sock" "$restored" &
      URI="nbd+unix:///?socket=$sock" ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_socket "$sock"
}
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

fio_run() {  # fio_run seq|qd1|qd16 -> prints MB/s (seq) or IOPS
  local t=$1 out="$W/fio.json"
  case "$t" in
    seq) fio --name=seq --ioengine=nbd --uri="$URI" --rw=read --bs=1M --iodepth=8 --size="${SIZE_MB}M" \
           --output-format=json --output="$out" >/dev/null ;;
    qd1) fio --name=r1 --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=1 --size="${SIZE_MB}M" \
           --time_based --runtime="$RT" --randseed=11 --output-format=json --output="$out" >/dev/null ;;
    qd16) fio --name=r16 --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=16 --size="${SIZE_MB}M" \
           --time_based --runtime="$RT" --randseed=12 --output-format=json --output="$out" >/dev/null ;;
  esac
  "$PY" - "$out" "$t" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(f'{r["bw_bytes"] / 1e6:.0f}' if sys.argv[2] == "seq" else f'{r["iops"]:.0f}')
PY
}

# Rounds interleave the three servers, so that a change in the machine's
# load (it is shared) hits them alike; each cell is the median of the rounds.
declare -A ALL R
for ((round = 1; round <= ROUNDS; round++)); do
  for t in seq qd1 qd16; do
    for s in ck nbdkit qemu; do
      start_server "$s"
      cold=$(fio_run "$t")
      # Warm: everything read once, then the same run.
      nbdcopy "$URI" null: 2>/dev/null || fio_run seq >/dev/null
      warm=$(fio_run "$t")
      ALL[$s-$t-cold]+="$cold "
      ALL[$s-$t-warm]+="$warm "
      echo "  round $round $s $t: cold $cold, warm $warm" >&2
    done
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for k in "${!ALL[@]}"; do R[$k]=$(median "${ALL[$k]}"); done
stop_server

# Time to first byte (cold): from exec of `snapshot serve` to the first 4 KiB read answered.
ttfb() {
  evict "$STORE"
  rm -f "$W/t.sock"
  "$PY" - "$CK" "$STORE" "$id" "$W/t.sock" <<'PY'
import nbd, os, subprocess, sys, time
ck, store, snap, sock = sys.argv[1:]
t0 = time.monotonic()
p = subprocess.Popen([ck, "-q", "--store", store, "snapshot", "serve", snap, "--socket", sock],
                     stdout=subprocess.DEVNULL)
try:
    while True:
        try:
            h = nbd.NBD()
            h.connect_uri(f"nbd+unix:///{snap}?socket={sock}")
            h.pread(4096, 0)
            break
        except nbd.Error:
            if time.monotonic() - t0 > 30: raise
            time.sleep(0.0005)
    print(f"{(time.monotonic() - t0) * 1000:.1f}")
finally:
    p.terminate()
    p.wait()
PY
}
T1=$(ttfb); T2=$(ttfb); T3=$(ttfb)
TTFB=$(printf '%s\n' "$T1" "$T2" "$T3" | sort -n | sed -n 2p)
evict "$STORE"
start=$(date +%s.%N)
"$CK" -q --store "$STORE" snapshot restore "$id" --to "$W/r2.img" >/dev/null
RESTORE_MS=$(echo "($(date +%s.%N) - $start) * 1000" | bc -l)

printf '\n%-24s %9s %9s %9s %9s %9s %9s %11s %11s\n' test ck_cold ck_warm kit_cold kit_warm qemu_cold qemu_warm ck/kit_warm ck/qemu_warm
for t in seq qd1 qd16; do
  case "$t" in seq) label="seq read MB/s (1M, QD8)" ;; qd1) label="4k randread IOPS QD1" ;; qd16) label="4k randread IOPS QD16" ;; esac
  printf '%-24s %9s %9s %9s %9s %9s %9s %10.2fx %10.2fx\n' "$label" \
    "${R[ck-$t-cold]}" "${R[ck-$t-warm]}" "${R[nbdkit-$t-cold]}" "${R[nbdkit-$t-warm]}" \
    "${R[qemu-$t-cold]}" "${R[qemu-$t-warm]}" \
    "$(echo "${R[ck-$t-warm]} / ${R[nbdkit-$t-warm]}" | bc -l)" \
    "$(echo "${R[ck-$t-warm]} / ${R[qemu-$t-warm]}" | bc -l)"
done
printf '\ntime to first byte (snapshot serve, cold, median of 3: %s %s %s): %s ms\n' "$T1" "$T2" "$T3" "$TTFB"
printf 'full snapshot restore (cold): %.0f ms  (first byte is %.0fx sooner)\n' "$RESTORE_MS" \
  "$(echo "$RESTORE_MS / $TTFB" | bc -l)"
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
