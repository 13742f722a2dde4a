#!/usr/bin/env bash
# Prune 5,000 of 10,000 EBS snapshots against the local EC2 emulator (20 ms
# per call, token-bucket rate limit on), cloudkeep versus the original
# tool's approach — list, then DeleteSnapshot one call at a time — written
# with boto3 (Debian's python3-boto3, the AWS SDK for Python, with its
# standard retries). Each contender gets a fresh emulator with the same
# snapshots. Prints the times, the ratio and what the emulator saw.
#
#   bench/aws-prune.sh [CLOUDKEEP_BINARY]    (env: LATENCY_MS=20 RATE=500 BURST=100 CONCURRENCY=)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
CK="${1:-${CLOUDKEEP:-$SRC/build/src/cli/cloudkeep}}"
LATENCY_MS="${LATENCY_MS:-20}"
RATE="${RATE:-500}"
BURST="${BURST:-100}"
CONCURRENCY="${CONCURRENCY:-}"
PY=/usr/bin/python3
[ -x "$CK" ] || { echo "no cloudkeep binary at $CK" >&2; exit 1; }
$PY -c 'import boto3' 2>/dev/null || { echo "needs python3-boto3 (scripts/install-deps.sh bench)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/ck-bench-aws.XXXXXX)"
EMU_PID=
cleanup() { [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
VOL=vol-0bbbbbbbbbbbbbbb2
# One snapshot every 2 minutes; the 5,000 oldest are older than 7 days (with a minute to spare).
cat >"$WORK/state.json" <<JSON
{"region": "us-east-1",
 "credentials": [{"access_key_id": "AKIDBENCH000000001", "secret_access_key": "bench-secret"}],
 "instance": {"id": "i-0123456789abcdef0", "az": "us-east-1a"},
 "volumes": [{"id": "$VOL", "size_gib": 8}],
 "generate": [{"volume": "$VOL", "count": 10000, "interval_s": 120, "oldest_age_s": $((604800 + 4999 * 120 + 60))}]}
JSON
export AWS_ACCESS_KEY_ID=AKIDBENCH000000001 AWS_SECRET_ACCESS_KEY=bench-secret AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION

start_emu() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((18000 + RANDOM % 1000))
    $PY "$SRC/tests/fakes/ec2_emulator.py" --port "$PORT" --state "$WORK/state.json" \
      --latency-ms "$LATENCY_MS" --rate "$RATE" --burst "$BURST" >"$WORK/emu.log" 2>&1 &
    EMU_PID=$!
    for _ in $(seq 100); do
      kill -0 "$EMU_PID" 2>/dev/null || break
      if $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/_emu/stats', timeout=1)" 2>/dev/null; then
        URL="http://127.0.0.1:$PORT"
        return 0
      fi
      sleep 0.1
    done
    kill "$EMU_PID" 2>/dev/null || true
    wait "$EMU_PID" 2>/dev/null || true
  done
  echo "emulator did not start" >&2
  exit 1
}
stop_emu() { kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=; }
stats() { $PY -c "import json,urllib.request; d=json.load(urllib.request.urlopen('$URL/_emu/stats')); print(d['deleted'], d['snapshots'], d['throttled'], d['requests'], d['max_in_flight'])"; }
now() { date +%s.%N; }

# --- cloudkeep ---
start_emu
args=(--provider aws --region us-east-1 --endpoint-url "$URL" --json snapshot prune -v "$VOL" -o 7)
[ -n "$CONCURRENCY" ] && args+=(--concurrency "$CONCURRENCY")
t0=$(now)
"$CK" "${args[@]}" >"$WORK/ck.json" 2>"$WORK/ck.err"
t1=$(now)
read -r ck_deleted ck_left ck_throttled ck_requests ck_mif < <(stats)
ck_failed=$($PY -c "import json; print(json.load(open('$WORK/ck.json'))['failed'])")
stop_emu

# --- baseline: one call at a time (boto3) ---
start_emu
cat >"$WORK/baseline.py" <<'PY'
import datetime, sys, boto3
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1])
cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7)
old = []
for page in ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [sys.argv[2]]}]):
    old += [s["SnapshotId"] for s in page["Snapshots"] if s["StartTime"] < cutoff]
failed = 0
for sid in old:
    try:
        ec2.delete_snapshot(SnapshotId=sid)
    except Exception as e:  # the original tool logged and went on
        failed += 1
        print(sid, e, file=sys.stderr)
print(len(old), failed)
PY
t2=$(now)
read -r bl_found bl_failed < <($PY "$WORK/baseline.py" "$URL" "$VOL" 2>"$WORK/bl.err")
t3=$(now)
read -r bl_deleted bl_left bl_throttled bl_requests bl_mif < <(stats)
stop_emu

ck_s=$(echo "$t1 - $t0" | bc -l)
bl_s=$(echo "$t3 - $t2" | bc -l)
printf 'emulator: %s ms per call, token bucket %s/s (burst %s), 10000 snapshots, 5000 older than 7 days\n' \
  "$LATENCY_MS" "$RATE" "$BURST"
printf '%-28s %9s %8s %8s %10s %9s %12s\n' contender seconds deleted failed throttled requests max_in_flight
printf '%-28s %9.2f %8s %8s %10s %9s %12s\n' "cloudkeep prune" "$ck_s" "$ck_deleted" "$ck_failed" "$ck_throttled" "$ck_requests" "$ck_mif"
printf '%-28s %9.2f %8s %8s %10s %9s %12s\n' "boto3 one at a time" "$bl_s" "$bl_deleted" "$bl_failed" "$bl_throttled" "$bl_requests" "$bl_mif"
printf 'speed-up: %.1fx\n' "$(echo "$bl_s / $ck_s" | bc -l)"
[ "$ck_deleted" = 5000 ] && [ "$ck_left" = 5000 ] && [ "$ck_failed" = 0 ] || { echo "cloudkeep did not delete exactly 5000" >&2; exit 1; }
