#!/usr/bin/env bash
# The secret access key and the session token never appear on stdout or
# stderr, at any verbosity, whether calls succeed or fail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"

VOL=vol-0bbbbbbbbbbbbbbb2
SECRET='S3cr3tAcc3ssK3y/ThatMustNeverLeak+000'
TOKEN='SessionTokenThatMustNeverLeak0123456789'
cat >"$WORK/state.json" <<JSON
{"region": "us-west-2",
 "credentials": [{"access_key_id": "ASIASECRETTEST0001", "secret_access_key": "$SECRET", "token": "$TOKEN"}],
 "role": {"name": "r", "access_key_id": "ASIAROLESECRET0001", "secret_access_key": "$SECRET-role",
          "token": "$TOKEN-role", "ttl": 3600},
 "instance": {"id": "i-0123456789abcdef0", "az": "us-west-2a"},
 "volumes": [{"id": "$VOL", "size_gib": 1, "device": "/dev/sdf", "instance": "i-0123456789abcdef0"}],
 "snapshots": [{"volume": "$VOL", "age_s": 1296000}, {"volume": "$VOL", "age_s": 60}]}
JSON
start_emulator "$WORK/state.json" --complete-after 0.5
export AWS_ACCESS_KEY_ID=ASIASECRETTEST0001 AWS_SECRET_ACCESS_KEY=$SECRET AWS_SESSION_TOKEN=$TOKEN
: >"$WORK/all.txt"
run() { "$@" >>"$WORK/all.txt" 2>&1 || true; }
for v in -v -vv; do
  ck=("$CK" "$v" --provider aws --region us-west-2 --endpoint-url "$EMU_URL")
  run "${ck[@]}" volumes
  run "${ck[@]}" snapshot list
  run "${ck[@]}" --json snapshot create "$VOL" --wait
  run "${ck[@]}" snapshot prune -v "$VOL" -o 7
  run env AWS_SECRET_ACCESS_KEY=wrong-secret "${ck[@]}" snapshot list
  run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "${ck[@]}" snapshot list
done
grep -q "DescribeSnapshots" "$WORK/all.txt" || fail "the -v runs logged no EC2 calls (was -v in effect?)"
grep -q "SignatureDoesNotMatch" "$WORK/all.txt" || fail "the failing run did not report its error"
if grep -F -e "$SECRET" -e "$TOKEN" -e "wrong-secret" "$WORK/all.txt"; then fail "a secret appeared in the output"; fi
