#!/usr/bin/env bash
# UnauthorizedOperation and expired session credentials: one clear line, exit 1,
# nothing deleted. --dry-run checks the permission (DryRun=true) too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"

VOL=vol-0bbbbbbbbbbbbbbb2
cat >"$WORK/state.json" <<JSON
{"region": "us-east-2",
 "credentials": [{"access_key_id": "AKIDREADONLY000001", "secret_access_key": "ro-secret"}],
 "instance": {"id": "i-0123456789abcdef0", "az": "us-east-2a"},
 "volumes": [{"id": "$VOL", "size_gib": 1, "device": "/dev/sdf", "instance": "i-0123456789abcdef0"}],
 "snapshots": [{"volume": "$VOL", "age_s": 1296000}, {"volume": "$VOL", "age_s": 60}],
 "deny": ["DeleteSnapshot", "CreateSnapshot"]}
JSON
start_emulator "$WORK/state.json"
export AWS_ACCESS_KEY_ID=AKIDREADONLY000001 AWS_SECRET_ACCESS_KEY=ro-secret
ck() { "$CK" --provider aws --region us-east-2 --endpoint-url "$EMU_URL" "$@"; }
expect_rc 1 ck snapshot prune -v "$VOL" -o 7 --dry-run
expect_contains "$ERR" "not authorized to call ec2:DeleteSnapshot (UnauthorizedOperation)"
expect_eq "$(wc -l <<<"$ERR" )" 2 "policy line + one error line"
expect_rc 1 ck snapshot prune -v "$VOL" -o 7
expect_contains "$ERR" "ec2:DeleteSnapshot"
expect_rc 1 ck snapshot create "$VOL"
expect_contains "$ERR" "ec2:CreateSnapshot"
expect_eq "$(emu_stat 'snapshots')" 2 "nothing deleted or created"
