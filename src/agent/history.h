// The agent's run history and counters, in SQLite (state_dir/history.db).
//
// A run's row is written, with its slot, before the job starts: an agent
// killed mid-run and restarted finds the slot taken and does not run it
// again (the row is then marked "interrupted"). Counters for /metrics live in
// their own table so that pruning old runs never makes a _total go down.
// One History per process, used from several threads: calls are serialized.
// `agent status` and `agent history` open the same file read-only while the
// agent writes (WAL mode).
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace cloudkeep::agent {

// Outcomes as stored and exported: running, success, failure, timeout,
// skipped (overlap), interrupted (the agent died or was stopped mid-run).
struct Run {
  int64_t id = 0;
  std::string job;
  TimePoint slot;
  TimePoint started;
  std::optional<TimePoint> ended;
  std::string outcome;
  std::string summary;
  std::string error;
};

struct VolumeRecord {
  std::string volume;
  std::optional<TimePoint> last_success;
  double last_duration_seconds = 0;
  std::optional<int64_t> snapshot_count;
};

// The last JSON report a mesh or mail-check job printed, for the dashboard.
struct Report {
  std::string job;
  TimePoint at;
  std::string doc;
};

class History {
 public:
  static Result<std::unique_ptr<History>> Open(const std::string& path, bool read_only);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // A row in state "running"; returns its id.
  Result<int64_t> Begin(const std::string& job, TimePoint slot, TimePoint started);
  Status Finish(int64_t id, TimePoint ended, const std::string& outcome, const std::string& summary,
                const std::string& error);
  // A slot that did not run (overlap): a finished row of its own.
  Status Skip(const std::string& job, TimePoint slot, TimePoint at, const std::string& why);
  // Rows left "running" by an agent that died: "interrupted". Returns how many.
  Result<int> MarkInterrupted(TimePoint now, const std::string& why);
  // Drops finished runs older than max_age and all but the newest max_runs per job.
  Status Prune(TimePoint now, std::chrono::microseconds max_age, int max_runs);

  Result<std::optional<TimePoint>> LastSlot(const std::string& job);
  // Newest first; job "" for all.
  Result<std::vector<Run>> Runs(const std::string& job, int limit);
  Result<std::optional<Run>> LastRun(const std::string& job);
  Result<std::optional<TimePoint>> LastSuccess(const std::string& job);
  // job → outcome → count, never decreasing.
  Result<std::map<std::string, std::map<std::string, int64_t>>> Counters();

  Status RecordSnapshot(const std::string& volume, TimePoint at, double duration_seconds);
  Status RecordSnapshotCount(const std::string& volume, int64_t count);
  Result<std::vector<VolumeRecord>> Volumes();

  // One report per job, replaced by each new one.
  Status SaveReport(const std::string& job, TimePoint at, const std::string& doc);
  Result<std::vector<Report>> Reports();

 private:
  explicit History(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status Count(const std::string& job, const std::string& outcome);
  sqlite3* db_;
  std::mutex mu_;
};

}  // namespace cloudkeep::agent
