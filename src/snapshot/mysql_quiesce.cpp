#include "snapshot/mysql_quiesce.h"

#include <fmt/format.h>
#include <mysql.h>
#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/log.h"
#include "core/output.h"

namespace cloudkeep::snapshot {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Error(MYSQL* c) {
  return fmt::format("{} ({})", mysql_error(c), mysql_errno(c));
}

bool FileExists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

Result<MYSQL*> Open(const std::string& defaults_file) {
  MYSQL* c = mysql_init(nullptr);
  if (c == nullptr) return Status::Failure("mysql: out of memory");
  unsigned int connect_timeout = 10;
  mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (!defaults_file.empty()) mysql_options(c, MYSQL_READ_DEFAULT_FILE, defaults_file.c_str());
  mysql_options(c, MYSQL_READ_DEFAULT_GROUP, "client");
  // All connection parameters (socket or host/port, user, password) come from the defaults file.
  if (mysql_real_connect(c, nullptr, nullptr, nullptr, nullptr, 0, nullptr, 0) == nullptr) {
    std::string why = Error(c);
    mysql_close(c);
    return Status::Failure(
        fmt::format("mysql: cannot connect{}: {}",
                    defaults_file.empty() ? "" : " with the settings of " + defaults_file, why));
  }
  return c;
}

}  // namespace

Result<MysqlLockMode> ParseMysqlLockMode(const std::string& text) {
  if (text == "flush") return MysqlLockMode::kFlush;
  if (text == "backup-stage") return MysqlLockMode::kBackupStage;
  return Status::Usage(fmt::format("--mysql-lock: '{}' is not flush or backup-stage", text));
}

Result<std::string> ChooseDefaultsFile(const std::string& explicit_path, const std::string& home) {
  if (!explicit_path.empty()) {
    if (!FileExists(explicit_path))
      return Status::Usage(
          fmt::format("--mysql-defaults-file: '{}' does not exist", explicit_path));
    return explicit_path;
  }
  if (!home.empty() && FileExists(home + "/.my.cnf")) return home + "/.my.cnf";
  return std::string();
}

bool SupportsBackupStage(const std::string& server_info, unsigned long version) {
  return server_info.find("MariaDB") != std::string::npos && version >= 100400;
}

std::map<std::string, std::string> PositionsFromStatus(
    const std::map<std::string, std::string>& master,
    const std::map<std::string, std::string>& slave,
    const std::map<std::string, std::string>& gtid) {
  std::map<std::string, std::string> out;
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  put("binlog_file", Get(master, "File"));
  put("binlog_position", Get(master, "Position"));
  put("gtid_executed", Get(master, "Executed_Gtid_Set"));  // MySQL
  put("gtid_binlog_pos", Get(gtid, "gtid_binlog_pos"));    // MariaDB
  put("gtid_current_pos", Get(gtid, "gtid_current_pos"));
  if (!slave.empty()) {
    put("master_host", Get(slave, "Master_Host"));
    put("master_port", Get(slave, "Master_Port"));
    put("relay_master_log_file", Get(slave, "Relay_Master_Log_File"));
    put("exec_master_log_pos", Get(slave, "Exec_Master_Log_Pos"));
    put("gtid_slave_pos", Get(gtid, "gtid_slave_pos"));
    put("slave_sql_running", Get(slave, "Slave_SQL_Running"));
  }
  return out;
}

std::string FormatStatusFile(const std::map<std::string, std::string>& positions,
                             const std::string& server, const std::string& taken_at) {
  Json doc = {{"taken_at", taken_at}, {"server", server}, {"positions", Json::object()}};
  for (const auto& [k, v] : positions) doc["positions"][k] = v;
  return doc.dump(2) + "\n";
}

Result<std::unique_ptr<MysqlQuiescer>> MysqlQuiescer::Connect(const MysqlOptions& options) {
  std::unique_ptr<MysqlQuiescer> q(new MysqlQuiescer());
  q->options_ = options;
  const char* home = std::getenv("HOME");
  CK_ASSIGN_OR_RETURN(std::string file,
                      ChooseDefaultsFile(options.defaults_file, home ? home : ""));
  CK_ASSIGN_OR_RETURN(q->conn_, Open(file));
  // Opened now, not when needed: a server that is busy enough to stall the
  // lock may also be slow to accept a connection.
  CK_ASSIGN_OR_RETURN(q->killer_, Open(file));
  q->server_ = mysql_get_server_info(q->conn_);
  q->mariadb_ = q->server_.find("MariaDB") != std::string::npos;
  if (options.lock_mode == MysqlLockMode::kBackupStage &&
      !SupportsBackupStage(q->server_, mysql_get_server_version(q->conn_))) {
    return Status::Usage(
        fmt::format("--mysql-lock backup-stage needs MariaDB 10.4 or later; the server is '{}' "
                    "(use --mysql-lock flush)",
                    q->server_));
  }
  return q;
}

MysqlQuiescer::~MysqlQuiescer() {
  Status s = Unlock();
  if (!s.ok()) log::Error("{}", s.message());
  if (conn_) mysql_close(conn_);
  if (killer_) mysql_close(killer_);
}

Status MysqlQuiescer::Query(const std::string& sql) {
  if (mysql_real_query(conn_, sql.data(), sql.size()) != 0)
    return Status::Failure(fmt::format("mysql: {}: {}", sql, Error(conn_)));
  if (MYSQL_RES* r = mysql_store_result(conn_)) mysql_free_result(r);
  return Status::Ok();
}

Result<std::vector<std::map<std::string, std::string>>> MysqlQuiescer::Rows(
    const std::string& sql) {
  if (mysql_real_query(conn_, sql.data(), sql.size()) != 0)
    return Status::Failure(fmt::format("mysql: {}: {}", sql, Error(conn_)));
  std::vector<std::map<std::string, std::string>> rows;
  MYSQL_RES* res = mysql_store_result(conn_);
  if (res == nullptr) return rows;
  unsigned n = mysql_num_fields(res);
  MYSQL_FIELD* fields = mysql_fetch_fields(res);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    unsigned long* len = mysql_fetch_lengths(res);
    std::map<std::string, std::string> m;
    for (unsigned i = 0; i < n; ++i)
      m[fields[i].name] = row[i] ? std::string(row[i], len[i]) : std::string();
    rows.push_back(std::move(m));
  }
  mysql_free_result(res);
  return rows;
}

Status MysqlQuiescer::TimedQuery(const std::string& sql, bool* timed_out) {
  *timed_out = false;
  if (mysql_send_query(conn_, sql.data(), sql.size()) != 0)
    return Status::Failure(fmt::format("mysql: {}: {}", sql, Error(conn_)));
  pollfd pfd{static_cast<int>(mysql_get_socket(conn_)), POLLIN, 0};
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.lock_timeout).count();
  int r;
  do {
    r = ::poll(&pfd, 1, static_cast<int>(ms));
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    *timed_out = true;
    std::string kill = fmt::format("KILL QUERY {}", mysql_thread_id(conn_));
    if (mysql_real_query(killer_, kill.data(), kill.size()) != 0)
      return Status::Failure(fmt::format("mysql: cannot cancel '{}' after {}: {}", sql,
                                         FormatDuration(options_.lock_timeout), Error(killer_)));
  }
  if (mysql_read_query_result(conn_) != 0) {
    if (*timed_out)
      return Status::Failure(
          fmt::format("mysql: {} did not finish within {} (cancelled with KILL QUERY)", sql,
                      FormatDuration(options_.lock_timeout)));
    return Status::Failure(fmt::format("mysql: {}: {}", sql, Error(conn_)));
  }
  // Won the race against KILL QUERY: the statement completed after all.
  *timed_out = false;
  if (MYSQL_RES* res = mysql_store_result(conn_)) mysql_free_result(res);
  return Status::Ok();
}

Status MysqlQuiescer::AttemptLock(bool* timed_out) {
  if (options_.lock_mode == MysqlLockMode::kFlush) {
    CK_RETURN_IF_ERROR(TimedQuery("FLUSH LOCAL TABLES", timed_out));
    lock_start_ = SteadyClock::now();
    Status s = TimedQuery("FLUSH TABLES WITH READ LOCK", timed_out);
    // A cancelled FTWRL holds nothing, but UNLOCK TABLES is harmless and makes sure.
    if (!s.ok())
      (void)Query("UNLOCK TABLES");
    else
      locked_ = true;
    return s;
  }
  lock_start_ = SteadyClock::now();
  in_backup_stage_ = true;
  for (const char* stage : {"BACKUP STAGE START", "BACKUP STAGE FLUSH", "BACKUP STAGE BLOCK_DDL",
                            "BACKUP STAGE BLOCK_COMMIT"}) {
    Status s = TimedQuery(stage, timed_out);
    if (!s.ok()) {
      (void)Query("BACKUP STAGE END");
      in_backup_stage_ = false;
      return s;
    }
  }
  locked_ = true;
  return Status::Ok();
}

Status MysqlQuiescer::Lock() {
  Status last;
  for (int attempt = 1; attempt <= options_.lock_tries; ++attempt) {
    bool timed_out = false;
    last = AttemptLock(&timed_out);
    if (last.ok()) return last;
    if (!timed_out) return last;
    notes_.push_back(
        fmt::format("lock attempt {} of {}: {}", attempt, options_.lock_tries, last.message()));
    log::Warn("{}", notes_.back());
    // Let the queries the attempt held up go through before the next one.
    if (attempt < options_.lock_tries) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Status::Failure(fmt::format("mysql: could not take the lock in {} tries of {} each: {}",
                                     options_.lock_tries, FormatDuration(options_.lock_timeout),
                                     last.message()));
}

Result<std::map<std::string, std::string>> MysqlQuiescer::Positions() {
  CK_ASSIGN_OR_RETURN(auto master, Rows("SHOW MASTER STATUS"));
  CK_ASSIGN_OR_RETURN(auto slave, Rows("SHOW SLAVE STATUS"));
  std::map<std::string, std::string> gtid;
  if (mariadb_) {
    CK_ASSIGN_OR_RETURN(auto g, Rows("SELECT @@GLOBAL.gtid_binlog_pos AS gtid_binlog_pos, "
                                     "@@GLOBAL.gtid_current_pos AS gtid_current_pos, "
                                     "@@GLOBAL.gtid_slave_pos AS gtid_slave_pos"));
    if (!g.empty()) gtid = g.front();
  }
  return PositionsFromStatus(master.empty() ? std::map<std::string, std::string>{} : master.front(),
                             slave.empty() ? std::map<std::string, std::string>{} : slave.front(),
                             gtid);
}

Status MysqlQuiescer::Unlock() {
  if (!locked_ && !in_backup_stage_) return Status::Ok();
  Status s = in_backup_stage_ ? Query("BACKUP STAGE END") : Query("UNLOCK TABLES");
  locked_for_ = std::chrono::duration_cast<Micros>(SteadyClock::now() - lock_start_);
  locked_ = false;
  in_backup_stage_ = false;
  if (!s.ok()) {
    // Closing the session drops the lock for sure.
    mysql_close(conn_);
    conn_ = nullptr;
    return Status::Failure(s.message() + "; closed the connection, which releases the lock");
  }
  return s;
}

}  // namespace cloudkeep::snapshot
