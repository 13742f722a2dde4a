#!/usr/bin/env bash
# bench/mirror-granularity.sh [CLOUDKEEP]: what the dirty bitmap's
# granularity costs and saves, to choose its default (docs/mirror.md).
# For each granularity: two nodes on loopback sync a SIZE_MB device, the
# client (fio over the NBD export) writes WRITES random 4 KiB blocks (each
# block once) into the first half and flushes, the standby stops, the client
# writes as many into the second half, the standby returns. Measured:
#  - write IOPS while the standby is away (each newly dirtied bit is a
#    durable bitmap write before the client's write: finer = more of them),
#  - the same writes with the standby connected (no bitmap writes),
#  - bytes resynced / bytes written (coarser = more amplification),
#  - resync seconds, and the bitmap's size per TiB of device (RAM, disk,
#    and the BITMAP frame each connect sends; its 33 MiB frame limit caps
#    the device at 33 MiB * 8 * granularity).
set -euo pipefail
CK="$(realpath "${1:-build/src/cli/cloudkeep}")"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SIZE_MB=${SIZE_MB:-512}
WRITES=${WRITES:-4096}
GRANULARITIES=${GRANULARITIES:-"4KiB 16KiB 64KiB 256KiB 1MiB"}
for c in fio openssl /usr/bin/python3; do command -v $c >/dev/null || { echo "bench/mirror-granularity.sh needs $c" >&2; exit 1; }; done
W=$(mktemp -d /var/tmp/ck-bench-gran.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
openssl rand -hex 32 >"$W/psk"

echo "# bench/mirror-granularity.sh $(git -C "$HERE" rev-parse --short HEAD) $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# device ${SIZE_MB} MiB, $WRITES random 4 KiB writes (each block once), fio depth 1 over the NBD export"
printf '| %-11s | %12s | %18s | %16s | %16s | %12s |\n' granularity "bitmap/TiB" "IOPS standby away" "IOPS connected" "resynced/written" "resync s"
for g in $GRANULARITIES; do
  rm -rf "$W/run" "$W"/*.img "$W"/*.meta
  truncate -s "${SIZE_MB}M" "$W/a.img" "$W/b.img"
  cat >"$W/m.toml" <<EOT
[resource.web]
protocol = "sync"
psk_file = "$W/psk"
connect_interval = "100ms"
bitmap_granularity = "$g"
[[resource.web.node]]
name = "a"
address = "127.0.0.1:$(port)"
device = "$W/a.img"
meta = "$W/a.meta"
[[resource.web.node]]
name = "b"
address = "127.0.0.1:$(port)"
device = "$W/b.img"
meta = "$W/b.meta"
EOT
  m() { "$CK" mirror "$@" --config "$W/m.toml" --run-dir "$W/run"; }
  status() { "$CK" --json mirror status web --config "$W/m.toml" --run-dir "$W/run" --node "$1"; }
  wait_sync() {
    for ((i = 0; i < 3000; i++)); do
      [ "$(status b 2>/dev/null | jget 'd["disk_state"] == "UpToDate" and d["connection"] == "Connected" and "resync" not in d' 2>/dev/null)" = True ] && return 0
      sleep 0.1
    done
    echo "no sync at granularity $g" >&2
    exit 1
  }
  m init web --node a --uptodate >/dev/null
  m init web --node b >/dev/null
  # Started directly (not through m), so that $! is the daemon itself.
  "$CK" mirror run web --config "$W/m.toml" --run-dir "$W/run" --node a --export-socket "$W/export.sock" 2>"$W/a.log" &
  PA=$!
  PIDS+=($PA)
  "$CK" mirror run web --config "$W/m.toml" --run-dir "$W/run" --node b 2>"$W/b.log" &
  PB=$!
  PIDS+=($PB)
  wait_sync
  m promote web --node a >/dev/null
  fio_iops() {  # fio_iops OFFSET_MB: WRITES random 4 KiB writes in one half of the device, each block once, then a flush
    fio --name=g --ioengine=nbd --uri="nbd+unix:///web?socket=$W/export.sock" --rw=randwrite --bs=4k \
      --offset="$1M" --size="$((SIZE_MB / 2))M" --number_ios="$WRITES" --end_fsync=1 --iodepth=1 --output-format=json 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; t=sys.stdin.read(); print(round(json.loads(t[t.index("{"):])["jobs"][0]["write"]["iops"]))'
  }
  connected=$(fio_iops 0)
  kill "$PB"
  wait "$PB" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [ "$(status a | jget 'd["connection"] != "Connected"')" = True ] && break
    sleep 0.1
  done
  before=$(status a | jget 'd["out_of_sync_bytes"]')
  away=$(fio_iops $((SIZE_MB / 2)))
  dirty=$(status a | jget 'd["out_of_sync_bytes"]')
  "$CK" mirror run web --config "$W/m.toml" --run-dir "$W/run" --node b 2>>"$W/b.log" &
  PB=$!
  PIDS+=($PB)
  wait_sync
  rs_bytes=$(status a | jget 'd["last_resync"]["bytes"]')
  rs_secs=$(status a | jget 'round(d["last_resync"]["seconds"], 2)')
  gbytes=$(/usr/bin/python3 -c "import re,sys; n,u=re.match(r'(\d+)(\w+)','$g').groups(); print(int(n)*{'KiB':1024,'MiB':1<<20}[u])")
  per_tib=$(/usr/bin/python3 -c "print('%.1f MiB' % ((1<<40) / $gbytes / 8 / (1<<20)))")
  amp=$(/usr/bin/python3 -c "print('%.2f' % (($dirty - $before) / ($WRITES * 4096)))")
  printf '| %-11s | %12s | %18s | %16s | %15sx | %12s |\n' "$g" "$per_tib" "$away" "$connected" "$amp" "$rs_secs"
  [ "$rs_bytes" -ge "$((dirty - before))" ] || echo "  (resync moved $rs_bytes bytes, less than the $((dirty - before)) marked?)" >&2
  kill "$PA" "$PB" 2>/dev/null || true
  wait "$PA" "$PB" 2>/dev/null || true
  PIDS=()
done
