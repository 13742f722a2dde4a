// MysqlQuiescer: holds a MySQL / MariaDB server still while its volume is
// captured, and records where its binary log and replication stood.
//
// Lock (mode "flush"), the sequence of ec2-consistent-snapshot without its
// failure modes:
//   FLUSH LOCAL TABLES        — flushes while writers still run, so the
//                               locked flush that follows has little to do
//   FLUSH TABLES WITH READ LOCK
// Each statement is sent asynchronously and given --lock-timeout; one that
// has not returned by then is cancelled with KILL QUERY from a second
// connection, because a FLUSH waiting behind a long query blocks every writer
// that arrives after it ("piles up"). The attempt is retried --lock-tries
// times. Mode "backup-stage" (MariaDB >= 10.4) uses BACKUP STAGE START …
// BLOCK_COMMIT instead: DML keeps running until commit, so the lock is
// lighter for InnoDB-only servers.
// Under the lock: SHOW MASTER STATUS, the GTID positions and, on a replica,
// SHOW SLAVE STATUS (Relay_Master_Log_File / Exec_Master_Log_Pos, which name
// the primary's coordinates of the last applied event — not Read_Master_*).
// Unlock() (UNLOCK TABLES or BACKUP STAGE END) runs on every path; closing
// the connection also drops the lock should cloudkeep die.
//
// Not thread-safe: one quiescer per snapshot run.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/status.h"

struct st_mysql;

namespace cloudkeep::snapshot {

enum class MysqlLockMode { kFlush, kBackupStage };
Result<MysqlLockMode> ParseMysqlLockMode(const std::string& text);

struct MysqlOptions {
  std::string defaults_file;  // empty: ~/.my.cnf when it exists, else the [client] defaults
  MysqlLockMode lock_mode = MysqlLockMode::kFlush;
  Micros lock_timeout = std::chrono::seconds(5);
  int lock_tries = 3;
};

// The defaults file to read: `explicit_path` (kUsage when missing), else
// $HOME/.my.cnf when it exists, else "" (libmariadb's own search).
Result<std::string> ChooseDefaultsFile(const std::string& explicit_path, const std::string& home);

// "10.11.6-MariaDB-0+deb12u1" + 101106 -> whether BACKUP STAGE exists (MariaDB >= 10.4).
bool SupportsBackupStage(const std::string& server_info, unsigned long version);

// Database coordinates from the rows of SHOW MASTER STATUS and SHOW SLAVE
// STATUS (empty maps when absent) and the GTID variables.
std::map<std::string, std::string> PositionsFromStatus(
    const std::map<std::string, std::string>& master,
    const std::map<std::string, std::string>& slave,
    const std::map<std::string, std::string>& gtid);

// The --mysql-status-file content: one JSON object.
std::string FormatStatusFile(const std::map<std::string, std::string>& positions,
                             const std::string& server, const std::string& taken_at);

class MysqlQuiescer {
 public:
  static Result<std::unique_ptr<MysqlQuiescer>> Connect(const MysqlOptions& options);
  ~MysqlQuiescer();
  MysqlQuiescer(const MysqlQuiescer&) = delete;
  MysqlQuiescer& operator=(const MysqlQuiescer&) = delete;

  // Takes the lock; notes() tells about timed-out attempts.
  Status Lock();
  // Valid while locked.
  Result<std::map<std::string, std::string>> Positions();
  // Releases the lock if held; safe to call more than once.
  Status Unlock();

  bool locked() const { return locked_; }
  // From the start of the statement that took the lock to the end of the unlock.
  Micros locked_for() const { return locked_for_; }
  const std::string& server() const { return server_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  MysqlQuiescer() = default;
  // Sends `sql`; past the lock timeout kills it. *timed_out tells the two failures apart.
  Status TimedQuery(const std::string& sql, bool* timed_out);
  Status Query(const std::string& sql);
  Result<std::vector<std::map<std::string, std::string>>> Rows(const std::string& sql);
  Status AttemptLock(bool* timed_out);

  MysqlOptions options_;
  st_mysql* conn_ = nullptr;
  st_mysql* killer_ = nullptr;  // second connection for KILL QUERY
  bool mariadb_ = false;
  bool locked_ = false;
  bool in_backup_stage_ = false;
  std::string server_;
  std::chrono::steady_clock::time_point lock_start_;
  Micros locked_for_{0};
  std::vector<std::string> notes_;
};

}  // namespace cloudkeep::snapshot
