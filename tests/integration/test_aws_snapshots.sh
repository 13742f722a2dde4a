#!/usr/bin/env bash
# The AWS provider end to end against the local EC2 + IMDSv2 emulator:
# volumes (NVMe by-id mapping to a real loop device and its mountpoint),
# create (CreateSnapshots --all-attached --exclude-boot --wait, CreateSnapshot
# per volume, tags and description), list/show, delete, prune with a snapshot
# in use by an AMI (skipped) and --dry-run (DryRun=true), and the one-line
# errors for malformed ids, an unknown region and bad credentials.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"

INSTANCE=i-0123456789abcdef0
BOOT=vol-0aaaaaaaaaaaaaaa1
DATA=vol-0bbbbbbbbbbbbbbb2
OLD1=snap-0111111111111111a
OLD2=snap-0222222222222222b
INUSE=snap-0333333333333333c
KEY=AKIDCLOUDKEEPTEST01
SECRET='kEEp/THIS+secret0000000000000000000000x'
cat >"$WORK/state.json" <<JSON
{"region": "eu-west-1",
 "credentials": [{"access_key_id": "$KEY", "secret_access_key": "$SECRET"},
                 {"access_key_id": "AKIDNOPERMISSIONS01", "secret_access_key": "whatever"}],
 "instance": {"id": "$INSTANCE", "az": "eu-west-1b"},
 "volumes": [{"id": "$BOOT", "size_gib": 8, "type": "gp3", "device": "/dev/xvda", "instance": "$INSTANCE", "boot": true},
             {"id": "$DATA", "size_gib": 1, "type": "io2", "device": "/dev/sdf", "instance": "$INSTANCE"},
             {"id": "vol-0cccccccccccccccc3", "size_gib": 2, "type": "gp2", "device": "/dev/sdg"}],
 "snapshots": [{"id": "$OLD1", "volume": "$DATA", "age_s": 1296000},
               {"id": "$OLD2", "volume": "$DATA", "age_s": 1209600},
               {"id": "$INUSE", "volume": "$DATA", "age_s": 1123200}],
 "in_use": ["$INUSE"]}
JSON
start_emulator "$WORK/state.json" --complete-after 1
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET
ck() { "$CK" --provider aws --region eu-west-1 --endpoint-url "$EMU_URL" "$@"; }

# volumes: the data volume is NVMe-attached here as a loop device with XFS on it.
mkfs_loop 300M xfs "$WORK/data"
mkdir -p "$WORK/by-id"
ln -s "$LOOP_DEV" "$WORK/by-id/nvme-Amazon_Elastic_Block_Store_${DATA/-/}"
export CLOUDKEEP_AWS_BY_ID_DIR="$WORK/by-id"
expect_rc 0 ck --json volumes
expect_eq "$(json_get 'len(d["volumes"])' <<<"$OUT")" 2 "attached volumes only"
expect_eq "$(json_get '[v for v in d["volumes"] if v["id"]=="'$DATA'"][0]["device"]' <<<"$OUT")" "$LOOP_DEV"
expect_eq "$(json_get '[v for v in d["volumes"] if v["id"]=="'$DATA'"][0]["mountpoint"]' <<<"$OUT")" "$WORK/data"
expect_eq "$(json_get '[v for v in d["volumes"] if v["id"]=="'$DATA'"][0]["aws_device"]' <<<"$OUT")" /dev/sdf
expect_rc 0 ck volumes
expect_contains "$OUT" "$BOOT"
expect_contains "$OUT" "ATTACHED AS"
expect_eq "$(awk -v id="$DATA" '$1 == id {print $3}' <<<"$OUT")" /dev/sdf "the table shows the attachment name"

# create --all-attached --exclude-boot --wait: one CreateSnapshots call.
expect_rc 0 ck --json snapshot create --all-attached --exclude-boot --wait --tag app=db --description nightly
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 1
expect_eq "$(json_get 'd["snapshots"][0]["volume_id"]' <<<"$OUT")" "$DATA"
expect_eq "$(json_get 'd["snapshots"][0]["state"]' <<<"$OUT")" completed
NEW="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_eq "$(emu_stat 'actions["CreateSnapshots"]')" 1
expect_rc 0 ck --json snapshot show "$NEW"
expect_eq "$(json_get 'd["tags"]["app"]' <<<"$OUT")" db
expect_eq "$(json_get 'd["tags"]["created-by"]' <<<"$OUT")" cloudkeep
expect_eq "$(json_get 'd["description"]' <<<"$OUT")" nightly
expect_eq "$(json_get 'd["consistency"]' <<<"$OUT")" crash

# create VOLUME: CreateSnapshot, by id and by local device.
expect_rc 0 ck --json snapshot create "$BOOT" --tag k=v
expect_eq "$(json_get 'd["snapshots"][0]["volume_id"]' <<<"$OUT")" "$BOOT"
ONE="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_rc 0 ck --json snapshot create "$LOOP_DEV"
expect_eq "$(json_get 'd["snapshots"][0]["volume_id"]' <<<"$OUT")" "$DATA"
expect_rc 0 ck snapshot show "$ONE"
expect_contains "$OUT" "k=v"

# list, filtered by volume and tag.
expect_rc 0 ck --json snapshot list -v "$DATA"
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 5
expect_eq "$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")" "$OLD1" "oldest first"
expect_rc 0 ck --json snapshot list --tag app=db
expect_eq "$(json_get '[s["id"] for s in d["snapshots"]]' <<<"$OUT")" "['$NEW']"
expect_rc 0 ck --json snapshot list -v "$DATA" --older-than 10
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 3

# prune --dry-run: DryRun=true, nothing deleted.
expect_rc 0 ck --json snapshot prune -v "$DATA" -o 7 --dry-run
expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 2
expect_eq "$(json_get 'd["skipped"]' <<<"$OUT")" 1 "dry run: in-use snapshot reported as skipped"
expect_eq "$(emu_stat 'snapshots')" 6
# prune: the AMI's snapshot is skipped with the reason, the run still succeeds.
expect_rc 0 ck --json snapshot prune -v "$DATA" -o 7
expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 2
expect_eq "$(json_get 'd["skipped"]' <<<"$OUT")" 1
expect_contains "$OUT" "in use by ami-"
expect_rc 0 ck snapshot prune -v "$DATA" -o 7
expect_contains "$OUT" "skipped"
expect_eq "$(emu_stat 'snapshots')" 4

# delete; deleting what is gone is a usage error before anything happens.
expect_rc 0 ck --json snapshot delete "$ONE"
expect_eq "$(json_get 'd["snapshots"][0]["result"]' <<<"$OUT")" deleted
expect_rc 2 ck snapshot delete "$ONE"
expect_contains "$ERR" "not found"

# errors: one line each, exit 2 for bad input, 1 for failed operations.
expect_rc 2 ck snapshot show snap-xyz
expect_contains "$ERR" "malformed snapshot id 'snap-xyz'"
expect_rc 2 ck snapshot prune -v vol-nope -o 7
expect_contains "$ERR" "malformed volume 'vol-nope'"
expect_rc 2 ck snapshot create vol-0ddddddddddddddd4
expect_contains "$ERR" "InvalidVolume.NotFound"
expect_rc 2 "$CK" --provider aws --region ap-nowhere-7 --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "unknown AWS region 'ap-nowhere-7'"
expect_rc 2 "$CK" --provider aws --region nowhere --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "unknown AWS region 'nowhere'"
expect_rc 1 env AWS_SECRET_ACCESS_KEY=wrong "$CK" --provider aws --region eu-west-1 --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "SignatureDoesNotMatch"
expect_eq "$(wc -l <<<"$ERR")" 1 "one line"
expect_rc 1 env AWS_ACCESS_KEY_ID=AKIDUNKNOWN0000000 "$CK" --provider aws --region eu-west-1 --endpoint-url "$EMU_URL" snapshot list
expect_contains "$ERR" "AuthFailure"
expect_rc 2 ck --profile nosuch snapshot list
expect_contains "$ERR" "profile 'nosuch' not found"
BAD="$(emu_stat bad_signature)"; [ "$BAD" -ge 3 ] || fail "($BAD) the emulator should have rejected the bad signatures"

# credentials from the shared credentials file, region from the config file.
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<INI
[ops]
aws_access_key_id = $KEY
aws_secret_access_key = $SECRET
INI
printf '[profile ops]\nregion = eu-west-1\n' >"$AWS_CONFIG_FILE"
expect_rc 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=ops \
  "$CK" --provider aws --endpoint-url "$EMU_URL" --json snapshot list -v "$DATA"
expect_eq "$(json_get 'len(d["snapshots"])' <<<"$OUT")" 3
