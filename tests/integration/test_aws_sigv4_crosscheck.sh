#!/usr/bin/env bash
# cloudkeep's SigV4 signer against the official AWS SDK signer
# (@smithy/signature-v4 from npm, installed by scripts/install-deps.sh into
# tests/fakes/node_modules): the same EC2 requests must get byte-identical
# Authorization headers.
. "$(dirname "$0")/lib.sh"

SRC="${CK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
TOOL="${CK_BUILD_DIR:-$SRC/build}/tests/unit/aws/aws_sigv4_tool"
need node "$TOOL"
[ -d "$SRC/tests/fakes/node_modules/@smithy/signature-v4" ] ||
  skip_or_fail "tests/fakes/node_modules (scripts/install-deps.sh test runs npm ci there)"

/usr/bin/python3 - "$WORK/cases.json" <<'PY'
import json, sys, urllib.parse
def body(action, params):
    items = [("Action", action), ("Version", "2016-11-15")] + params
    return "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in items)
reqs = [
    ("DescribeSnapshots", [("Owner.1", "self"), ("MaxResults", "1000"), ("Filter.1.Name", "volume-id"),
                           ("Filter.1.Value.1", "vol-0123456789abcdef0")]),
    ("DescribeSnapshots", [("NextToken", "eyJ2IjoiMiIsImMiOiJhYmMrL3o9In0=")]),
    ("CreateSnapshot", [("VolumeId", "vol-0123456789abcdef0"), ("Description", "nightly run: été / 夜 & more ~ +"),
                        ("TagSpecification.1.ResourceType", "snapshot"), ("TagSpecification.1.Tag.1.Key", "app"),
                        ("TagSpecification.1.Tag.1.Value", "a b=c&d")]),
    ("CreateSnapshots", [("InstanceSpecification.InstanceId", "i-0123456789abcdef0"),
                         ("InstanceSpecification.ExcludeBootVolume", "true")]),
    ("DeleteSnapshot", [("SnapshotId", "snap-0123456789abcdef0"), ("DryRun", "true")]),
    ("DescribeVolumes", [("Filter.1.Name", "attachment.instance-id"), ("Filter.1.Value.1", "i-0123456789abcdef0")]),
]
cases = []
for i, (action, params) in enumerate(reqs):
    for token in ("", "IQoJb3JpZ2luX2VjEPT//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+example/token=="):
        cases.append({
            "host": ["ec2.us-east-1.amazonaws.com", "ec2.eu-central-1.amazonaws.com", "127.0.0.1:18443"][i % 3],
            "region": ["us-east-1", "eu-central-1", "ap-southeast-2"][i % 3],
            "path": "/", "body": body(action, params),
            "access_key_id": "AKIDEXAMPLE" if not token else "ASIAEXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "session_token": token,
            "time": ["2026-11-28T18:45:00Z", "2027-02-28T23:59:59Z", "2026-01-01T00:00:00Z"][i % 3]})
json.dump(cases, open(sys.argv[1], "w"))
PY
(cd "$SRC/tests/fakes" && node sigv4-crosscheck.mjs "$WORK/cases.json") >"$WORK/sdk.json"
"$TOOL" "$WORK/cases.json" >"$WORK/ck.json"
n="$(json_get 'len(d)' <"$WORK/sdk.json")"
expect_eq "$n" 12 "the SDK signed every case"
if ! cmp -s "$WORK/sdk.json" "$WORK/ck.json"; then
  /usr/bin/python3 -c "
import json,sys
a=json.load(open('$WORK/sdk.json')); b=json.load(open('$WORK/ck.json'))
for i,(x,y) in enumerate(zip(a,b)):
    if x!=y: print('case',i,'\n sdk:',x,'\n ck: ',y)" >&2
  fail "cloudkeep's signatures differ from the AWS SDK's"
fi
