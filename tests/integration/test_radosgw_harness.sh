#!/usr/bin/env bash
# lib_radosgw.sh: the one-node Ceph + radosgw harness the S3 store tests run on.
# A child test starts a cluster, checks the S3 behaviour the store's S3 backend
# relies on (signed requests with the user's keys, If-None-Match: * refused
# with 412 on an existing key, paginated listing), then fails on purpose; the
# parent checks that the failure still killed every daemon and removed the
# cluster's directory, and that /etc/ceph was not touched.
. "$(dirname "$0")/lib.sh"
need ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl
need_root

etc_before=$(ls -la /etc/ceph 2>/dev/null | md5sum)
cat >"$WORK/child.sh" <<'CHILD'
. "$CK_SOURCE_DIR/tests/integration/lib.sh"
. "$CK_SOURCE_DIR/tests/integration/lib_radosgw.sh"
radosgw_start
echo "$RGW_PID_mon $RGW_PID_osd $RGW_PID_rgw" >"$STATE/pids"
echo "$RGW_DIR" >"$STATE/dir"
echo "$RGW_START_SECONDS" >"$STATE/seconds"
rgw_s3 mb ck-harness
printf 'first' >"$WORK/a"
printf 'second' >"$WORK/b"
[ "$(rgw_s3 put-if-absent ck-harness k "$WORK/a")" = 200 ] || fail "first PUT with If-None-Match: * refused"
[ "$(rgw_s3 put-if-absent ck-harness k "$WORK/b")" = 412 ] || fail "second PUT with If-None-Match: * not refused with 412"
[ "$(rgw_s3 get ck-harness k)" = first ] || fail "the refused PUT changed the object"
# More than one ListObjectsV2 page (1000 keys a page).
/usr/bin/python3 - "$RGW_ENDPOINT" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" <<'PY'
import sys, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=16))
from concurrent.futures import ThreadPoolExecutor
keys = ["k%d" % i for i in range(1, 1006)]
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda k: s3.put_object(Bucket="ck-harness", Key="many/" + k, Body=b"x"), keys))
PY
[ "$(rgw_s3 count ck-harness many/)" = "1005 1005" ] || fail "listing of 1005 keys: $(rgw_s3 count ck-harness many/)"
# Wrong secret: refused.
if /usr/bin/python3 "$CK_SOURCE_DIR/tests/integration/s3_check.py" --endpoint "$RGW_ENDPOINT" \
  --access-key "$RGW_ACCESS_KEY" --secret-key wrong count ck-harness "" 2>/dev/null; then
  fail "a wrong secret key was accepted"
fi
touch "$STATE/checked"
exit 3
CHILD
export STATE="$WORK/state"
mkdir -p "$STATE"
rc=0
bash "$WORK/child.sh" >"$WORK/child.out" 2>&1 || rc=$?
[ -e "$STATE/checked" ] || { cat "$WORK/child.out" >&2; fail "the child's S3 checks did not pass"; }
expect_eq "$rc" 3 "child exit code"
read -r pmon posd prgw <"$STATE/pids"
for p in $pmon $posd $prgw; do
  if kill -0 "$p" 2>/dev/null; then fail "daemon pid $p still runs after the child failed"; fi
done
[ ! -e "$(cat "$STATE/dir")" ] || fail "cluster directory $(cat "$STATE/dir") left behind"
expect_eq "$(ls -la /etc/ceph 2>/dev/null | md5sum)" "$etc_before" "/etc/ceph changed"
echo "radosgw answered S3 $(cat "$STATE/seconds") s after the first command"
