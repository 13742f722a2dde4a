#!/bin/bash
# Every way `snapshot create --freeze --mysql` can fail leaves the filesystem
# thawed and the tables unlocked, runs the post hooks, and records no
# snapshot: the lock times out behind a long query, a pre hook fails, the
# capture fails, the freeze outlives --freeze-timeout, and cloudkeep is
# killed with SIGKILL while the filesystem is frozen.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/consistency_helpers.sh"
need_root
need mkfs.xfs losetup mariadbd mariadb fsfreeze

# The image sits on the root filesystem, which cannot reflink: the capture
# reads it in place while frozen (and can be made to fail by a full store).
mkfs_loop 1G xfs "$WORK/db"
IMG="$LOOP_IMG"
MNT="$WORK/db"
STORE="$WORK/store"
start_mariadb primary "$MNT/mysql" "$(free_port)" init
start_writer primary
CREATE=("$CK" --store "$STORE" snapshot create "$IMG" --freeze --mysql --mysql-defaults-file "$MY_CNF_primary")

snapshots() { "$CK" --json --store "$STORE" snapshot list | json_get 'len(d["snapshots"])'; }
after_failure() {  # after_failure MARKER: the run left nothing behind
  assert_writable "$MNT"
  assert_unlocked primary
  test -e "$WORK/$1" || fail "post hook did not run after: $1"
  # Not frozen any more: a FIFREEZE from outside succeeds (and is undone at once).
  fsfreeze --freeze "$MNT" && fsfreeze --unfreeze "$MNT"
}

# A baseline snapshot, so the store exists and "no new snapshot" can be counted.
expect_rc 0 "${CREATE[@]}"
BASE="$(snapshots)"

# 1. The lock times out behind a long query; the attempt is cancelled, never left queued.
# A long write holds off FLUSH TABLES WITH READ LOCK (a long SELECT does not, on MariaDB 10.11).
sql primary "UPDATE ck.seq SET pad = CONCAT('z', SLEEP(600)) WHERE n = 0" >/dev/null 2>&1 &
LONG=$!
defer "kill $LONG 2>/dev/null"
long_query_id() { sql primary "SELECT id FROM information_schema.processlist WHERE info LIKE 'UPDATE ck.seq SET pad%'"; }
long_query_running() { test -n "$(long_query_id)"; }
wait_for long_query_running
expect_rc 1 "${CREATE[@]}" --lock-timeout 1s --lock-tries 2 --post "touch '$WORK/post-lock'"
expect_contains "$ERR" "could not take the lock in 2 tries"
expect_contains "$ERR" "KILL QUERY"
expect_eq "$(sql primary "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'FLUSH%'")" 0 \
  "a FLUSH is still queued"
after_failure post-lock
sql primary "KILL QUERY $(long_query_id)"
wait "$LONG" 2>/dev/null || true

# 2. A pre hook fails: nothing is locked or frozen, post hooks still run.
expect_rc 1 "${CREATE[@]}" --pre "echo not today >&2; exit 3" --post "touch '$WORK/post-pre'"
expect_contains "$ERR" "pre hook 'echo not today >&2; exit 3' exited with status 3"
after_failure post-pre

# 3. The capture fails (the store's filesystem fills up while reading the frozen image).
mkdir -p "$WORK/tiny"
mount -t tmpfs -o size=8m tmpfs "$WORK/tiny"
defer "umount -l '$WORK/tiny'"
head -c 64M /dev/urandom >"$MNT/incompressible"
sync -f "$MNT/incompressible"
expect_rc 1 "$CK" --store "$WORK/tiny/store" snapshot create "$IMG" --freeze --mysql \
  --mysql-defaults-file "$MY_CNF_primary" --post "touch '$WORK/post-capture'"
after_failure post-capture
rm -f "$MNT/incompressible"

# 4. The freeze outlives --freeze-timeout: the watchdog thaws and the run is abandoned.
expect_rc 1 env CLOUDKEEP_TEST_PAUSE_FROZEN_MS=4000 "${CREATE[@]}" --freeze-timeout 1s \
  --post "touch '$WORK/post-timeout'"
expect_contains "$ERR" "cloudkeep watchdog: thawed $MNT: the freeze timeout (1s) was reached"
expect_contains "$ERR" "was abandoned"
after_failure post-timeout
expect_eq "$(snapshots)" "$BASE" "a snapshot was recorded by a failed run"

# 5. SIGKILL while frozen: the watchdog thaws at once, long before its 10 min timeout.
env CLOUDKEEP_TEST_PAUSE_FROZEN_MS=600000 "${CREATE[@]}" --freeze-timeout 10m 2>"$WORK/kill.err" &
CKPID=$!
defer "kill -9 $CKPID 2>/dev/null"
wait_for grep -q "pausing" "$WORK/kill.err"
# Frozen now: a second FIFREEZE is refused with EBUSY.
if fsfreeze --freeze "$MNT" 2>/dev/null; then
  fsfreeze --unfreeze "$MNT"
  fail "$MNT was not frozen during the pause"
fi
kill -9 "$CKPID"
wait "$CKPID" 2>/dev/null || true
touch "$WORK/post-kill"  # no post hook can run after SIGKILL
after_failure post-kill
wait_for grep -q "cloudkeep watchdog: thawed $MNT: cloudkeep exited while it was frozen" "$WORK/kill.err"
expect_eq "$(snapshots)" "$BASE" "a snapshot was recorded by a killed run"

# The lighter MariaDB lock works where the server has it.
expect_rc 0 "$CK" --json --store "$STORE" snapshot create "$IMG" --freeze --mysql \
  --mysql-defaults-file "$MY_CNF_primary" --mysql-lock backup-stage
expect_eq "$(json_get 'd["snapshots"][0]["consistency"]' <<<"$OUT")" application
expect_contains "$ERR" "BACKUP STAGE BLOCK_COMMIT"
assert_unlocked primary
