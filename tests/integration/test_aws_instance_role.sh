#!/usr/bin/env bash
# Credentials and region from the instance role through IMDSv2 only (the
# emulator refuses IMDSv1 GETs without a token), renewed before they expire;
# IMDS is not asked when the region and credentials are given; and
# AWS_EC2_METADATA_DISABLED turns it off.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"

VOL=vol-0bbbbbbbbbbbbbbb2
cat >"$WORK/state.json" <<JSON
{"region": "ap-southeast-2",
 "credentials": [{"access_key_id": "AKIDSTATIC00000001", "secret_access_key": "static-secret"}],
 "role": {"name": "cloudkeep-backup", "access_key_id": "ASIAROLE0000000001", "secret_access_key": "role-secret",
          "token": "role-session-token-abc", "ttl": 200},
 "instance": {"id": "i-0fedcba9876543210", "az": "ap-southeast-2c"},
 "volumes": [{"id": "$VOL", "size_gib": 4, "device": "/dev/sdf", "instance": "i-0fedcba9876543210"}],
 "generate": [{"volume": "$VOL", "count": 30, "interval_s": 86400, "oldest_age_s": 2592000}]}
JSON
start_emulator "$WORK/state.json"

# Static keys and a region: no IMDS traffic at all.
expect_rc 0 env AWS_ACCESS_KEY_ID=AKIDSTATIC00000001 AWS_SECRET_ACCESS_KEY=static-secret \
  "$CK" --provider aws --region ap-southeast-2 --endpoint-url "$EMU_URL" snapshot list -v "$VOL"
expect_eq "$(emu_stat imds_requests)" 0 "IMDS asked although nothing was needed from it"

# IMDSv1 (a GET without a token) is refused, as on instances that turned it off.
code="$(/usr/bin/python3 -c "
import urllib.request, urllib.error
try:
    urllib.request.urlopen('$EMU_URL/latest/meta-data/instance-id'); print(200)
except urllib.error.HTTPError as e: print(e.code)")"
expect_eq "$code" 401
unauth0="$(emu_stat imds_unauthorized)"

# Everything from the role: region, instance id, credentials (with session token).
expect_rc 0 "$CK" --provider aws --endpoint-url "$EMU_URL" --json volumes
expect_eq "$(json_get 'd["volumes"][0]["id"]' <<<"$OUT")" "$VOL"
expect_eq "$(json_get 'd["volumes"][0]["instance_id"]' <<<"$OUT")" i-0fedcba9876543210
expect_rc 0 "$CK" --provider aws --endpoint-url "$EMU_URL" --json snapshot prune -v "$VOL" -o 7 --concurrency 4
expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 24  # ages 30d … 7d (+ seconds)
expect_eq "$(json_get 'd["failed"]' <<<"$OUT")" 0
[ "$(emu_stat imds_token_puts)" -ge 1 ] || fail "no IMDSv2 token was requested"
expect_eq "$(emu_stat imds_unauthorized)" "$unauth0" "a metadata GET went out without a valid token"
expect_eq "$(emu_stat bad_signature)" 0
# The role's credentials expire within the refresh margin, so each signed call
# fetched them anew: more credential GETs than the two cold-start ones.
[ "$(emu_stat imds_requests)" -gt 10 ] || fail "role credentials were not refreshed before expiry"

# IMDS disabled and no other source: a clear error, no metadata traffic.
before="$(emu_stat imds_requests)"
expect_rc 1 env AWS_EC2_METADATA_DISABLED=true "$CK" --provider aws --region ap-southeast-2 --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "no AWS credentials"
expect_eq "$(emu_stat imds_requests)" "$before"
expect_rc 2 env AWS_EC2_METADATA_DISABLED=true "$CK" --provider aws --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "no AWS region"
