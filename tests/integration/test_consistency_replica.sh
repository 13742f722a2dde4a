#!/bin/bash
# On a MariaDB replica, `snapshot create --freeze --mysql` records the
# primary's coordinates of the last event the replica had applied
# (Relay_Master_Log_File / Exec_Master_Log_Pos, gtid_slave_pos). Checked for
# real: a server started on the restored copy holds exactly the rows of the
# primary's binlog replayed up to those coordinates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/consistency_helpers.sh"
need_root
need mkfs.xfs losetup mariadbd mariadb mariadb-binlog

PRIMARY_PORT=$(free_port)
start_mariadb primary "$WORK/primary-data" "$PRIMARY_PORT" init 1
sql primary "CREATE USER repl@'127.0.0.1' IDENTIFIED BY 'ck-repl';
             GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.1';"

mkfs_loop 1G xfs "$WORK/replica"
IMG="$LOOP_IMG"
start_mariadb replica "$WORK/replica/mysql" "$(free_port)" init 2
sql replica "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT, MASTER_USER='repl',
               MASTER_PASSWORD='ck-repl', MASTER_USE_GTID=slave_pos; START SLAVE;"
start_writer primary
replica_rows_above() { [ "$(sql replica 'SELECT COUNT(*) FROM ck.seq' 2>/dev/null || echo 0)" -gt "$1" ]; }
wait_for replica_rows_above 100

STORE="$WORK/store"
expect_rc 0 "$CK" --json --store "$STORE" snapshot create "$IMG" --freeze --mysql --mysql-defaults-file "$MY_CNF_replica"
SNAP="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" application
RFILE="$(json_get 'd["snapshots"][0]["database"]["relay_master_log_file"]' <<<"$OUT")"
RPOS="$(json_get 'd["snapshots"][0]["database"]["exec_master_log_pos"]' <<<"$OUT")"
RGTID="$(json_get 'd["snapshots"][0]["database"]["gtid_slave_pos"]' <<<"$OUT")"
expect_eq "$(json_get 'd["snapshots"][0]["database"]["master_port"]' <<<"$OUT")" "$PRIMARY_PORT"
expect_rc 0 "$CK" --store "$STORE" snapshot show "$SNAP"
expect_contains "$OUT" "db exec_master_log_pos: $RPOS"
assert_unlocked primary

# The primary's rows up to the recorded coordinates.
EXPECTED=0
for f in $(sed 's|^\./||' "$WORK/primary-data/binlog.index"); do
  f="$(basename "$f")"
  if [ "$f" = "$RFILE" ]; then
    mariadb-binlog --stop-position="$RPOS" "$WORK/primary-data/$f" >"$WORK/replay.sql"
  else
    mariadb-binlog "$WORK/primary-data/$f" >"$WORK/replay.sql"
  fi
  n="$(grep -c '^INSERT INTO ck.seq VALUES' "$WORK/replay.sql" || true)"
  EXPECTED=$((EXPECTED + n))
  [ "$f" = "$RFILE" ] && break
done
[ "$EXPECTED" -gt 100 ] || fail "binlog replay found only $EXPECTED rows"

expect_rc 0 "$CK" --store "$STORE" snapshot restore "$SNAP" --to "$WORK/restored.img"
R_LOOP="$(losetup --find --show "$WORK/restored.img")"
defer "detach_loop '$R_LOOP' '$WORK/restored.img'"
mkdir -p "$WORK/restored"
mount -o nouuid "$R_LOOP" "$WORK/restored"
defer "umount -l '$WORK/restored'"
start_mariadb copy "$WORK/restored/mysql" "$(free_port)" "" 3
expect_eq "$(sql copy "CHECK TABLE ck.seq" | awk -F'\t' '$3=="status"{print $4}')" OK "CHECK TABLE ck.seq"
expect_eq "$(sql copy 'SELECT COUNT(*) FROM ck.seq')" "$EXPECTED" \
  "rows in the copy vs the primary's binlog at $RFILE:$RPOS"
expect_eq "$(sql copy 'SELECT @@GLOBAL.gtid_slave_pos')" "$RGTID" "gtid_slave_pos of the copy"
