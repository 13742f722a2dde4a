#!/usr/bin/env bash
# Prune over 10,000 snapshots of two volumes against an emulator that
# throttles (token bucket, RequestLimitExceeded) and fails 2% of calls with
# 500: every snapshot ends deleted or kept, none left failed, the listing
# paginated, and the deletions ran concurrently within the --concurrency bound.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"

A=vol-0aaaaaaaaaaaaaaa1
B=vol-0bbbbbbbbbbbbbbb2
cat >"$WORK/state.json" <<JSON
{"region": "us-east-1",
 "credentials": [{"access_key_id": "AKIDPRUNE000000001", "secret_access_key": "prune-secret"}],
 "instance": {"id": "i-0123456789abcdef0", "az": "us-east-1a"},
 "volumes": [{"id": "$A", "size_gib": 8}, {"id": "$B", "size_gib": 8}],
 "generate": [{"volume": "$A", "count": 6000, "interval_s": 200, "oldest_age_s": 1200000},
              {"volume": "$B", "count": 4000, "interval_s": 300, "oldest_age_s": 1200000}]}
JSON
start_emulator "$WORK/state.json" --rate 300 --burst 40 --error-rate 0.02
export AWS_ACCESS_KEY_ID=AKIDPRUNE000000001 AWS_SECRET_ACCESS_KEY=prune-secret
ck() { "$CK" --provider aws --region us-east-1 --endpoint-url "$EMU_URL" "$@"; }

expect_rc 0 ck --json snapshot list
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 10000
expect_rc 0 ck --json snapshot prune -v "$A" -v "$B" -o 7 --concurrency 32
removed="$(json_get 'd["removed"]' <<<"$OUT")"
expect_eq "$(json_get 'd["failed"]' <<<"$OUT")" 0 "deletions left failed"
expect_eq "$(json_get 'd["kept"] + d["removed"]' <<<"$OUT")" 10000
expect_eq "$(json_get 'sorted(set(s.get("result","-") for v in d["volumes"] for s in v["snapshots"]))' <<<"$OUT")" \
  "['-', 'deleted']"
# Snapshots older than 7 days: A's first 2976 (ages 1200000 s down to 604800 s step 200), B's 1984 (step 300).
[ "$removed" -ge 4900 ] && [ "$removed" -le 5000 ] || fail "removed $removed, expected about 4960"
expect_eq "$(emu_stat snapshots)" "$((10000 - removed))"
expect_eq "$(emu_stat deleted)" "$removed"
[ "$(emu_stat throttled)" -gt 0 ] || fail "the rate limit never engaged: the test proves nothing about retries"
[ "$(emu_stat injected_5xx)" -gt 0 ] || fail "no 5xx was injected"
mif="$(emu_stat max_in_flight)"
[ "$mif" -gt 1 ] && [ "$mif" -le 32 ] || fail "max in flight $mif outside 2..32"
# A second run finds nothing more to remove.
expect_rc 0 ck --json snapshot prune -v "$A" -v "$B" -o 7
expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 0
