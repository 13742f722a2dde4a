// ConsistencySession: makes a capture application-consistent.
//
// It brackets Provider::Capture() as docs/design.md's data flow says:
//   Begin(): pre hooks -> MySQL FLUSH LOCAL TABLES, FLUSH TABLES WITH READ LOCK
//            (positions recorded) -> FIFREEZE of the mountpoints, watchdog armed
//   End():   thaw (reverse order) -> UNLOCK TABLES -> post hooks (reverse order)
// End() must be called after Begin() on every path, also when Begin() failed
// half way: it undoes exactly what Begin() did. The metadata passed to both
// receives the consistency level actually reached, database coordinates and
// the measured freeze and lock windows.
//
// Not thread-safe; one session per snapshot run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/fs.h"
#include "snapshot/model.h"
#include "snapshot/provider.h"

namespace cloudkeep::snapshot {

struct ConsistencyOptions {
  // Filesystem freeze.
  bool freeze = false;                          // --freeze given
  std::vector<std::string> freeze_mountpoints;  // empty: every mountpoint of the captured volumes
  bool freeze_root = false;
  Micros freeze_timeout = std::chrono::seconds(10);
  // MySQL / MariaDB.
  bool mysql = false;
  std::string mysql_defaults_file;   // empty: ~/.my.cnf
  std::string mysql_lock = "flush";  // flush | backup-stage
  Micros lock_timeout = std::chrono::seconds(5);
  int lock_tries = 3;
  std::string mysql_status_file;
  // Hooks.
  std::vector<std::string> pre_hooks;
  std::vector<std::string> post_hooks;
  Micros hook_timeout = std::chrono::seconds(60);
  // Where the mount table is read to resolve the mountpoints to freeze.
  SystemPaths paths;
  // CLOUDKEEP_TEST_PAUSE_FROZEN_MS: the integration tests need a deterministic
  // moment at which the filesystems are frozen (to kill cloudkeep there).
  Micros test_pause_frozen{0};

  bool any() const { return freeze || mysql || !pre_hooks.empty() || !post_hooks.empty(); }
};

// What CreateSnapshots brackets the capture with. ConsistencySession is the
// one implementation cloudkeep runs; the interface is the seam through which
// tests inject a freeze that fails half way, a thaw that fails or a watchdog
// that fired (as LevelDB's Env lets its tests fail the file system), which a
// real session can only produce as root on a frozen filesystem.
class ConsistencyBracket {
 public:
  virtual ~ConsistencyBracket() = default;
  // Checks the options against the volumes before anything is touched
  // (e.g. freezing "/" without --freeze-root): kUsage on bad input.
  virtual Status Validate(const std::vector<Volume>& volumes) const = 0;
  virtual Status Begin(const std::vector<Volume>& volumes, SnapshotMetadata* metadata) = 0;
  virtual Status End(SnapshotMetadata* metadata) = 0;
  // Human lines for the report ("froze /srv/db for 12.3ms", "tables locked 20ms").
  virtual const std::vector<std::string>& notes() const = 0;
  // Why a post hook failed after End(), empty if they all ran. The snapshot
  // is sound either way; the caller reports it and exits 1 so that cron sees
  // a service that may not have come back.
  virtual const std::string& post_hook_error() const = 0;
};

class ConsistencySession final : public ConsistencyBracket {
 public:
  explicit ConsistencySession(ConsistencyOptions options);
  ~ConsistencySession() override;
  ConsistencySession(const ConsistencySession&) = delete;
  ConsistencySession& operator=(const ConsistencySession&) = delete;

  Status Validate(const std::vector<Volume>& volumes) const override;
  Status Begin(const std::vector<Volume>& volumes, SnapshotMetadata* metadata) override;
  Status End(SnapshotMetadata* metadata) override;
  const std::vector<std::string>& notes() const override { return notes_; }
  const std::string& post_hook_error() const override { return post_hook_error_; }

 private:
  struct State;
  ConsistencyOptions options_;
  std::unique_ptr<State> state_;
  std::vector<std::string> notes_;
  std::string post_hook_error_;
};

}  // namespace cloudkeep::snapshot
