# A real S3 server for the snapshot store's S3 backend tests: a one-node Ceph
# cluster (one monitor, one memstore OSD) and radosgw's beast frontend on
# 127.0.0.1, all from a private directory with its own configuration.
# Source after lib.sh.
#
#   radosgw_start           starts the cluster and radosgw; sets
#     RGW_ENDPOINT          http://127.0.0.1:PORT
#     RGW_ACCESS_KEY, RGW_SECRET_KEY   an S3 user's keys (radosgw-admin)
#     RGW_DIR               the cluster's directory (config, data, logs)
#     RGW_START_SECONDS     seconds from the first command until S3 answered
#   rgw_admin ARGS...       radosgw-admin on this cluster
#   rgw_s3 ARGS...          /usr/bin/python3 tests/integration/s3_check.py with the
#                           endpoint and keys (boto3; test-side checks only)
#   rgw_env                 exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
#                           AWS_REGION for cloudkeep (AWS_CONFIG_FILE and
#                           AWS_SHARED_CREDENTIALS_FILE point at empty files in
#                           $WORK, AWS_EC2_METADATA_DISABLED=true: nothing else leaks in)
#
# Nothing touches /etc/ceph or the system's Ceph: every tool gets -c (CEPH_CONF)
# pointing at $RGW_DIR/ceph.conf, and every daemon's data, socket, pid and log
# file is under $RGW_DIR. Authentication is off (auth_* = none): the monitor
# and the OSD listen on 127.0.0.1 only, and S3 requests are still signed and
# checked by radosgw with the user's keys. The OSD is memstore (RAM), the pool
# size 1 (mon_allow_pool_size_one). Every daemon is killed at exit by `defer`,
# success, failure or signal. Under CI=true a missing binary is a failure.

rgw_admin() { CEPH_CONF="$RGW_DIR/ceph.conf" radosgw-admin "$@"; }
_rgw_ceph() { CEPH_CONF="$RGW_DIR/ceph.conf" timeout 60 ceph "$@"; }

# _rgw_daemon NAME CMD...: starts a Ceph daemon in the foreground (-f) in the
# background, its output in $RGW_DIR/NAME.out, killed at exit.
_rgw_daemon() {
  local name=$1
  shift
  "$@" >"$RGW_DIR/$name.out" 2>&1 &
  local pid=$!
  defer "kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"
  eval "RGW_PID_${name//-/_}=$pid"
}

radosgw_start() {
  need ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl
  need_root
  local t0
  t0=$(date +%s.%N)
  RGW_DIR="$WORK/ceph"
  mkdir -p "$RGW_DIR/mon/ceph-a" "$RGW_DIR/osd/ceph-0" "$RGW_DIR/run" "$RGW_DIR/log" "$RGW_DIR/rgw"
  local mon_port rgw_port fsid osd_uuid i
  mon_port=$(free_port)
  rgw_port=$(free_port)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$RGW_DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$mon_port
public_addr = 127.0.0.1
ms_bind_msgr2 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $RGW_DIR/run
admin_socket = $RGW_DIR/run/\$cluster-\$name.asok
pid_file = $RGW_DIR/run/\$cluster-\$name.pid
log_file = $RGW_DIR/log/\$cluster-\$name.log
mon_data = $RGW_DIR/mon/\$cluster-\$id
osd_data = $RGW_DIR/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $RGW_DIR/rgw
rgw_dns_name = localhost
rgw_enable_usage_log = false
rgw_thread_pool_size = 32
CONF
  export CEPH_CONF="$RGW_DIR/ceph.conf"
  monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$RGW_DIR/monmap" >"$RGW_DIR/monmaptool.out" 2>&1 ||
    { cat "$RGW_DIR/monmaptool.out" >&2; fail "monmaptool failed"; }
  ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$RGW_DIR/monmap" >"$RGW_DIR/mon-mkfs.out" 2>&1 ||
    { cat "$RGW_DIR/mon-mkfs.out" >&2; fail "ceph-mon --mkfs failed"; }
  _rgw_daemon mon ceph-mon -c "$CEPH_CONF" -f -i a
  local id
  id=$(_rgw_ceph osd new "$osd_uuid" 2>"$RGW_DIR/osd-new.err") ||
    { cat "$RGW_DIR/osd-new.err" "$RGW_DIR/mon.out" >&2; fail "ceph osd new failed (monitor not up?)"; }
  [ "$id" = 0 ] || fail "ceph osd new gave id '$id', expected 0"
  ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$RGW_DIR/osd-mkfs.out" 2>&1 ||
    { cat "$RGW_DIR/osd-mkfs.out" >&2; fail "ceph-osd --mkfs failed"; }
  # About one start in four on these machines, the OSD's first command to the
  # monitor is refused ('wrong fsid', in the OSD's log) and the OSD never comes
  # up; a restart of the OSD then boots. Wait for "1 up", restart at most twice.
  local attempt up=""
  for attempt in 1 2 3; do
    _rgw_daemon osd ceph-osd -c "$CEPH_CONF" -f -i 0
    for ((i = 0; i < 100; i++)); do
      if _rgw_ceph osd stat 2>/dev/null | grep -q ' 1 up'; then
        up=1
        break
      fi
      grep -q 'wrong fsid' "$RGW_DIR/log/ceph-osd.0.log" 2>/dev/null && break
      sleep 0.1
    done
    [ -n "$up" ] && break
    echo "radosgw_start: the OSD did not come up (attempt $attempt); restarting it" >&2
    kill -9 "$RGW_PID_osd" 2>/dev/null || true
    wait "$RGW_PID_osd" 2>/dev/null || true
    mv "$RGW_DIR/log/ceph-osd.0.log" "$RGW_DIR/log/ceph-osd.0.log.$attempt" 2>/dev/null || true
  done
  [ -n "$up" ] || { tail -n 20 "$RGW_DIR/log/ceph-osd.0.log"* >&2; fail "the OSD did not come up"; }
  _rgw_daemon rgw radosgw -c "$CEPH_CONF" -f -n client.rgw
  RGW_ENDPOINT="http://127.0.0.1:$rgw_port"
  for ((i = 0; i < WAIT_FOR_SECONDS * 10; i++)); do
    if curl -s -o /dev/null --max-time 2 "$RGW_ENDPOINT/"; then break; fi
    if ! kill -0 "$RGW_PID_rgw" 2>/dev/null; then
      tail -n 30 "$RGW_DIR/rgw.out" "$RGW_DIR/log/ceph-client.rgw.log" >&2
      fail "radosgw exited before it answered"
    fi
    sleep 0.1
  done
  curl -s -o /dev/null --max-time 2 "$RGW_ENDPOINT/" ||
    { tail -n 5 "$RGW_DIR/log/ceph-mon.a.log" "$RGW_DIR/log/ceph-osd.0.log" >&2
      tail -n 30 "$RGW_DIR/log/ceph-client.rgw.log" >&2; fail "radosgw did not answer on $RGW_ENDPOINT within $WAIT_FOR_SECONDS s"; }
  RGW_START_SECONDS=$(/usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
  RGW_ACCESS_KEY="CKTEST$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
  RGW_SECRET_KEY="$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"
  rgw_admin user create --uid=cktest --display-name=cktest \
    --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >"$RGW_DIR/user.json" 2>"$RGW_DIR/user.err" ||
    { cat "$RGW_DIR/user.err" >&2; fail "radosgw-admin user create failed"; }
  echo "radosgw: $RGW_ENDPOINT answered after ${RGW_START_SECONDS} s" >&2
}

rgw_env() {
  : >"$WORK/aws-config"
  : >"$WORK/aws-credentials"
  export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
  export AWS_ACCESS_KEY_ID="$RGW_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_SECRET_KEY"
  export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION
}

rgw_s3() {
  /usr/bin/python3 "$CK_SOURCE_DIR/tests/integration/s3_check.py" \
    --endpoint "$RGW_ENDPOINT" --access-key "$RGW_ACCESS_KEY" --secret-key "$RGW_SECRET_KEY" "$@"
}
