# Helpers shared by test_consistency_*.sh (sourced after lib.sh): a real
# MariaDB on a loop-mounted XFS, and a steady writer of sequence numbers.

# start_mariadb NAME DATADIR PORT [init] [SERVER_ID]: a private mariadbd with its own
# socket and port (PORT from lib.sh free_port), binary log on, stopped at exit. With "init"
# the data directory is created first. Sets MY_SOCK_<NAME> and MY_CNF_<NAME>
# (a client defaults file) and echoes nothing.
start_mariadb() {
  local name=$1 datadir=$2 port=$3 init=${4:-} server_id=${5:-1}
  need mariadbd mariadb-install-db mariadb mariadb-admin
  local run="$WORK/mysql-$name"
  # A private tmpdir: mariadbd deletes every #sql* file in its tmpdir when it
  # starts, which would remove another running server's temporary tables
  # (a bootstrap beside it fails with "Unknown table mysql.tmp_proxies_priv").
  mkdir -p "$run/tmp"
  if [ "$init" = init ]; then
    mkdir -p "$datadir"
    mariadb-install-db --no-defaults --datadir="$datadir" --user=root --auth-root-authentication-method=socket \
      --tmpdir="$run/tmp" --skip-test-db >"$run/install.log" 2>&1 || { cat "$run/install.log" >&2; fail "mariadb-install-db failed"; }
  fi
  # The binary log's path is relative to the data directory, so that a
  # restored copy reads its own binlog, not the primary's.
  mariadbd --no-defaults --datadir="$datadir" --user=root --socket="$run/sock" --port="$port" \
    --tmpdir="$run/tmp" --bind-address=127.0.0.1 --pid-file="$run/pid" --log-error="$run/error.log" \
    --log-bin=binlog --server-id="$server_id" --skip-slave-start --binlog-format=STATEMENT --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=48M --skip-name-resolve >"$run/stdout.log" 2>&1 &
  local pid=$!
  defer "stop_pid $pid"
  printf '[client]\nsocket=%s\nuser=root\n' "$run/sock" >"$run/my.cnf"
  eval "MY_SOCK_$name='$run/sock'; MY_CNF_$name='$run/my.cnf'; MY_PID_$name=$pid"
  local i
  for ((i = 0; i < 600; i++)); do
    mariadb --defaults-file="$run/my.cnf" -e 'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$run/error.log" >&2; fail "mariadbd $name exited"; }
    sleep 0.1
  done
  cat "$run/error.log" >&2
  fail "mariadbd $name did not start"
}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 60 s; waits for it.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# sql NAME STATEMENTS: runs SQL on server NAME, prints tab-separated rows.
sql() {
  local cnf
  eval "cnf=\$MY_CNF_$1"
  mariadb --defaults-file="$cnf" -N -B -e "$2"
}

# start_writer NAME: inserts 0,1,2,… into ck.seq (InnoDB) and ck.seq_aria
# (Aria, not transactional) over one connection, one autocommit statement
# each, until stopped at exit.
start_writer() {
  sql "$1" "CREATE DATABASE IF NOT EXISTS ck;
            CREATE TABLE IF NOT EXISTS ck.seq (n BIGINT PRIMARY KEY, pad CHAR(100)) ENGINE=InnoDB;
            CREATE TABLE IF NOT EXISTS ck.seq_aria (n BIGINT PRIMARY KEY, pad CHAR(100)) ENGINE=Aria;"
  local cnf
  eval "cnf=\$MY_CNF_$1"
  cat >"$WORK/writer-$1.sh" <<'WRITER'
i=0
while :; do
  echo "INSERT INTO ck.seq VALUES ($i, REPEAT('x', 100)); INSERT INTO ck.seq_aria VALUES ($i, 'y');"
  i=$((i + 1))
done | mariadb --defaults-file="$1" ck 2>/dev/null
WRITER
  # Its own process group, so that stopping it stops the whole pipeline.
  setsid bash "$WORK/writer-$1.sh" "$cnf" >/dev/null 2>&1 &
  WRITER_PID=$!
  defer "kill -- -$WRITER_PID 2>/dev/null"
  wait_for rows_above "$1" 100
}

# Succeeds when a write to directory $1 completes within 20 s: the
# filesystem is not frozen (a write to a frozen one blocks).
assert_writable() {
  timeout 20 sh -c "echo ok > '$1/.ck-write-probe' && sync -f '$1/.ck-write-probe' && rm -f '$1/.ck-write-probe'" ||
    fail "$1 is not writable: still frozen?"
}

# Succeeds when an INSERT on server $1 completes within 20 s: no read lock is left.
assert_unlocked() {
  timeout 20 mariadb --defaults-file="$(eval echo \$MY_CNF_$1)" -e \
    "CREATE TABLE IF NOT EXISTS ck.probe (x INT) ENGINE=InnoDB; INSERT INTO ck.probe VALUES (1)" ||
    fail "tables on $1 are still locked"
}

# rows_above NAME N: ck.seq on server NAME has more than N rows.
rows_above() { [ "$(sql "$1" 'SELECT COUNT(*) FROM ck.seq')" -gt "$2" ]; }
