#!/bin/bash
# snapshot create --freeze --mysql on a live MariaDB under a steady write
# load, restored to a new image: the copy starts cleanly, CHECK TABLE is
# clean, and it holds exactly the rows the primary had at the recorded
# binlog position (counted by replaying the primary's binlog up to it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/consistency_helpers.sh"
need_root
need mkfs.xfs losetup mariadbd mariadb mariadb-binlog

# The image lives on an XFS filesystem (so the capture is an instant
# reflink); the database lives on the XFS inside the image.
mkfs_loop 3G xfs "$WORK/outer"
OUTER="$WORK/outer"
IMG="$OUTER/db.img"
truncate -s 1G "$IMG"
mkfs.xfs -q "$IMG"
DB_LOOP="$(losetup --find --show "$IMG")"
defer "detach_loop '$DB_LOOP' '$IMG'"
mkdir -p "$WORK/db"
mount "$DB_LOOP" "$WORK/db"
defer "umount -l '$WORK/db'"

start_mariadb primary "$WORK/db/mysql" "$(free_port)" init
start_writer primary

STORE="$WORK/store"
expect_rc 0 env PATH=/usr/bin:/bin "$CK" --json --store "$STORE" snapshot create "$IMG" --freeze --mysql \
  --mysql-defaults-file "$MY_CNF_primary" --mysql-status-file "$WORK/db/cloudkeep-mysql-status.json"
SNAP="$(json_get 'd["snapshots"][0]["id"]' <<<"$OUT")"
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" application
expect_contains "$ERR" "froze $WORK/db for"
expect_contains "$ERR" "tables locked for"
BINLOG_FILE="$(json_get 'd["snapshots"][0]["database"]["binlog_file"]' <<<"$OUT")"
BINLOG_POS="$(json_get 'd["snapshots"][0]["database"]["binlog_position"]' <<<"$OUT")"
GTID="$(json_get 'd["snapshots"][0]["database"]["gtid_binlog_pos"]' <<<"$OUT")"
json_get 'd["snapshots"][0]["freeze_us"] > 0 and d["snapshots"][0]["lock_us"] > 0' <<<"$OUT" | grep -qx True ||
  fail "freeze_us / lock_us missing: $OUT"

# show and list --json carry the level and the positions.
expect_rc 0 "$CK" --store "$STORE" snapshot show "$SNAP"
expect_contains "$OUT" "application"
expect_contains "$OUT" "$BINLOG_FILE"
expect_rc 0 "$CK" --json --store "$STORE" snapshot list
expect_eq "$(json_get 'd["snapshots"][0]["database"]["binlog_position"]' <<<"$OUT")" "$BINLOG_POS"

# The writer kept going; let it write well past the snapshot before comparing.
AT_SNAP="$(sql primary 'SELECT COUNT(*) FROM ck.seq')"
wait_for rows_above primary "$((AT_SNAP + 200))"

# Rows the primary had at the recorded position: replay its binlog up to it.
sql primary 'FLUSH BINARY LOGS' >/dev/null
EXPECTED_ROWS=0
EXPECTED_ARIA=0
for f in $(sed 's|^\./||' "$WORK/db/mysql/binlog.index"); do
  f="$(basename "$f")"
  if [ "$f" = "$BINLOG_FILE" ]; then
    mariadb-binlog --stop-position="$BINLOG_POS" "$WORK/db/mysql/$f" >"$WORK/replay.sql"
  else
    mariadb-binlog "$WORK/db/mysql/$f" >"$WORK/replay.sql"
  fi
  n="$(grep -c '^INSERT INTO ck.seq VALUES' "$WORK/replay.sql" || true)"
  EXPECTED_ROWS=$((EXPECTED_ROWS + n))
  n="$(grep -c '^INSERT INTO ck.seq_aria VALUES' "$WORK/replay.sql" || true)"
  EXPECTED_ARIA=$((EXPECTED_ARIA + n))
  [ "$f" = "$BINLOG_FILE" ] && break
done
[ "$EXPECTED_ROWS" -gt 100 ] || fail "binlog replay found only $EXPECTED_ROWS rows"

# Restore to a new image and run a second server on it.
expect_rc 0 "$CK" --store "$STORE" snapshot restore "$SNAP" --to "$OUTER/restored.img"
R_LOOP="$(losetup --find --show "$OUTER/restored.img")"
defer "detach_loop '$R_LOOP' '$OUTER/restored.img'"
mkdir -p "$WORK/restored"
# Same XFS UUID as the mounted original.
mount -o nouuid "$R_LOOP" "$WORK/restored"
defer "umount -l '$WORK/restored'"
test -s "$WORK/restored/cloudkeep-mysql-status.json" || fail "status file not in the snapshot"
grep -q "\"binlog_position\": \"$BINLOG_POS\"" "$WORK/restored/cloudkeep-mysql-status.json" ||
  fail "status file positions differ: $(cat "$WORK/restored/cloudkeep-mysql-status.json")"

start_mariadb copy "$WORK/restored/mysql" "$(free_port)"
for t in ck.seq ck.seq_aria; do
  RES="$(sql copy "CHECK TABLE $t EXTENDED" | awk -F'\t' '$3=="status"{print $4}')"
  expect_eq "$RES" "OK" "CHECK TABLE $t"
done
ROWS="$(sql copy 'SELECT COUNT(*) FROM ck.seq')"
ARIA_ROWS="$(sql copy 'SELECT COUNT(*) FROM ck.seq_aria')"
MAX="$(sql copy 'SELECT MAX(n) FROM ck.seq')"
expect_eq "$ROWS" "$EXPECTED_ROWS" "InnoDB rows in the copy vs the primary's binlog at $BINLOG_FILE:$BINLOG_POS"
# The lock may fall between the writer's two statements: each table is compared on its own.
expect_eq "$ARIA_ROWS" "$EXPECTED_ARIA" "Aria rows in the copy vs the primary's binlog"
expect_eq "$MAX" "$((EXPECTED_ROWS - 1))" "sequence without gaps"
expect_eq "$(sql copy 'SELECT @@GLOBAL.gtid_binlog_pos')" "$GTID" "GTID position of the copy"
