#include "agent/history.h"

#include <fmt/format.h>

namespace cloudkeep::agent {

namespace {

int64_t Us(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
TimePoint FromUs(int64_t us) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(us)));
}

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& Bind(int i, int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindDouble(int i, double v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_double(s_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or an error as a Status through status().
  int Step() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW) return rc_;
    rc_ = sqlite3_step(s_);
    return rc_;
  }
  Status Done() {
    int rc = Step();
    return rc == SQLITE_DONE ? Status::Ok() : Error();
  }
  Status Error() const {
    return Status::Failure(fmt::format("history database: {}", sqlite3_errmsg(db_)));
  }
  int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  double Double(int c) const { return sqlite3_column_double(s_, c); }
  bool Null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string Text(int c) const {
    const unsigned char* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, job TEXT NOT NULL, slot_us INTEGER NOT NULL,
  started_us INTEGER NOT NULL, ended_us INTEGER, outcome TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_job_slot ON runs (job, slot_us);
CREATE TABLE IF NOT EXISTS counters (
  job TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (job, outcome));
CREATE TABLE IF NOT EXISTS volumes (
  volume TEXT PRIMARY KEY, last_success_us INTEGER, last_duration_s REAL NOT NULL DEFAULT 0,
  snapshot_count INTEGER);
CREATE TABLE IF NOT EXISTS reports (
  job TEXT PRIMARY KEY, at_us INTEGER NOT NULL, doc TEXT NOT NULL);
)";

Run RowToRun(const Stmt& s) {
  Run r;
  r.id = s.Int(0);
  r.job = s.Text(1);
  r.slot = FromUs(s.Int(2));
  r.started = FromUs(s.Int(3));
  if (!s.Null(4)) r.ended = FromUs(s.Int(4));
  r.outcome = s.Text(5);
  r.summary = s.Text(6);
  r.error = s.Text(7);
  return r;
}

constexpr const char* kRunColumns =
    "SELECT id, job, slot_us, started_us, ended_us, outcome, summary, error FROM runs ";

}  // namespace

Result<std::unique_ptr<History>> History::Open(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Failure(fmt::format("cannot open the history database {}: {}", path, msg));
  }
  std::unique_ptr<History> h(new History(db));
  sqlite3_busy_timeout(db, 5000);
  if (!read_only) {
    // WAL: readers (agent status) never block the agent's writes; synchronous=FULL
    // so that a row written before a job starts survives a power cut, not just SIGKILL.
    CK_RETURN_IF_ERROR(h->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
    CK_RETURN_IF_ERROR(h->Exec(kSchema));
  }
  return h;
}

History::~History() {
  sqlite3_close(db_);
}

Status History::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Failure("history database: " + msg);
  }
  return Status::Ok();
}

Status History::Count(const std::string& job, const std::string& outcome) {
  Stmt s(db_,
         "INSERT INTO counters (job, outcome, count) VALUES (?, ?, 1) "
         "ON CONFLICT (job, outcome) DO UPDATE SET count = count + 1");
  return s.Bind(1, job).Bind(2, outcome).Done();
}

Result<int64_t> History::Begin(const std::string& job, TimePoint slot, TimePoint started) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_, "INSERT INTO runs (job, slot_us, started_us, outcome) VALUES (?, ?, ?, 'running')");
  CK_RETURN_IF_ERROR(s.Bind(1, job).Bind(2, Us(slot)).Bind(3, Us(started)).Done());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status History::Finish(int64_t id, TimePoint ended, const std::string& outcome,
                       const std::string& summary, const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  CK_RETURN_IF_ERROR(Exec("BEGIN"));
  Stmt s(db_, "UPDATE runs SET ended_us = ?, outcome = ?, summary = ?, error = ? WHERE id = ?");
  Status st =
      s.Bind(1, Us(ended)).Bind(2, outcome).Bind(3, summary).Bind(4, error).Bind(5, id).Done();
  std::string job;
  if (st.ok()) {
    Stmt q(db_, "SELECT job FROM runs WHERE id = ?");
    if (q.Bind(1, id).Step() == SQLITE_ROW) job = q.Text(0);
  }
  if (st.ok() && !job.empty()) st = Count(job, outcome);
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Status History::Skip(const std::string& job, TimePoint slot, TimePoint at, const std::string& why) {
  std::lock_guard<std::mutex> l(mu_);
  CK_RETURN_IF_ERROR(Exec("BEGIN"));
  Stmt s(db_,
         "INSERT INTO runs (job, slot_us, started_us, ended_us, outcome, summary) "
         "VALUES (?, ?, ?, ?, 'skipped', ?)");
  Status st = s.Bind(1, job).Bind(2, Us(slot)).Bind(3, Us(at)).Bind(4, Us(at)).Bind(5, why).Done();
  if (st.ok()) st = Count(job, "skipped");
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Result<int> History::MarkInterrupted(TimePoint now, const std::string& why) {
  std::lock_guard<std::mutex> l(mu_);
  CK_RETURN_IF_ERROR(Exec("BEGIN"));
  std::vector<std::string> jobs;
  {
    Stmt q(db_, "SELECT job FROM runs WHERE outcome = 'running'");
    while (q.Step() == SQLITE_ROW) jobs.push_back(q.Text(0));
  }
  Stmt s(db_,
         "UPDATE runs SET ended_us = ?, outcome = 'interrupted', error = ? "
         "WHERE outcome = 'running'");
  Status st = s.Bind(1, Us(now)).Bind(2, why).Done();
  for (const auto& j : jobs)
    if (st.ok()) st = Count(j, "interrupted");
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  CK_RETURN_IF_ERROR(Exec("COMMIT"));
  return static_cast<int>(jobs.size());
}

Status History::Prune(TimePoint now, std::chrono::microseconds max_age, int max_runs) {
  std::lock_guard<std::mutex> l(mu_);
  {
    Stmt s(db_, "DELETE FROM runs WHERE outcome != 'running' AND started_us < ?");
    CK_RETURN_IF_ERROR(s.Bind(1, Us(now) - max_age.count()).Done());
  }
  // The newest row per job is kept whatever the count: it holds the last slot.
  Stmt s(db_,
         "DELETE FROM runs WHERE outcome != 'running' AND id IN (SELECT id FROM (SELECT id, "
         "ROW_NUMBER() OVER (PARTITION BY job ORDER BY slot_us DESC, id DESC) AS n FROM runs) "
         "WHERE n > ?)");
  return s.Bind(1, std::max(1, max_runs)).Done();
}

Result<std::optional<TimePoint>> History::LastSlot(const std::string& job) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_, "SELECT MAX(slot_us) FROM runs WHERE job = ?");
  int rc = s.Bind(1, job).Step();
  if (rc != SQLITE_ROW) return s.Error();
  if (s.Null(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromUs(s.Int(0)));
}

Result<std::vector<Run>> History::Runs(const std::string& job, int limit) {
  std::lock_guard<std::mutex> l(mu_);
  std::string sql = std::string(kRunColumns) + (job.empty() ? "" : "WHERE job = ? ") +
                    "ORDER BY started_us DESC, id DESC LIMIT ?";
  Stmt s(db_, sql.c_str());
  int i = 1;
  if (!job.empty()) s.Bind(i++, job);
  s.Bind(i, limit);
  std::vector<Run> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(RowToRun(s));
  if (rc != SQLITE_DONE) return s.Error();
  return out;
}

Result<std::optional<Run>> History::LastRun(const std::string& job) {
  CK_ASSIGN_OR_RETURN(auto runs, Runs(job, 1));
  if (runs.empty()) return std::optional<Run>();
  return std::optional<Run>(runs[0]);
}

Result<std::optional<TimePoint>> History::LastSuccess(const std::string& job) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_, "SELECT MAX(ended_us) FROM runs WHERE job = ? AND outcome = 'success'");
  if (s.Bind(1, job).Step() != SQLITE_ROW) return s.Error();
  if (s.Null(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromUs(s.Int(0)));
}

Result<std::map<std::string, std::map<std::string, int64_t>>> History::Counters() {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_, "SELECT job, outcome, count FROM counters");
  std::map<std::string, std::map<std::string, int64_t>> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out[s.Text(0)][s.Text(1)] = s.Int(2);
  if (rc != SQLITE_DONE) return s.Error();
  return out;
}

Status History::RecordSnapshot(const std::string& volume, TimePoint at, double duration_seconds) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_,
         "INSERT INTO volumes (volume, last_success_us, last_duration_s) VALUES (?, ?, ?) "
         "ON CONFLICT (volume) DO UPDATE SET last_success_us = excluded.last_success_us, "
         "last_duration_s = excluded.last_duration_s");
  return s.Bind(1, volume).Bind(2, Us(at)).BindDouble(3, duration_seconds).Done();
}

Status History::RecordSnapshotCount(const std::string& volume, int64_t count) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_,
         "INSERT INTO volumes (volume, snapshot_count) VALUES (?, ?) "
         "ON CONFLICT (volume) DO UPDATE SET snapshot_count = excluded.snapshot_count");
  return s.Bind(1, volume).Bind(2, count).Done();
}

Result<std::vector<VolumeRecord>> History::Volumes() {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_,
         "SELECT volume, last_success_us, last_duration_s, snapshot_count FROM volumes "
         "ORDER BY volume");
  std::vector<VolumeRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    VolumeRecord v;
    v.volume = s.Text(0);
    if (!s.Null(1)) v.last_success = FromUs(s.Int(1));
    v.last_duration_seconds = s.Double(2);
    if (!s.Null(3)) v.snapshot_count = s.Int(3);
    out.push_back(v);
  }
  if (rc != SQLITE_DONE) return s.Error();
  return out;
}

Status History::SaveReport(const std::string& job, TimePoint at, const std::string& doc) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_,
         "INSERT INTO reports (job, at_us, doc) VALUES (?, ?, ?) "
         "ON CONFLICT (job) DO UPDATE SET at_us = excluded.at_us, doc = excluded.doc");
  return s.Bind(1, job).Bind(2, Us(at)).Bind(3, doc).Done();
}

Result<std::vector<Report>> History::Reports() {
  std::lock_guard<std::mutex> l(mu_);
  Stmt s(db_, "SELECT job, at_us, doc FROM reports ORDER BY job");
  std::vector<Report> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), FromUs(s.Int(1)), s.Text(2)});
  if (rc != SQLITE_DONE) return s.Error();
  return out;
}

}  // namespace cloudkeep::agent
