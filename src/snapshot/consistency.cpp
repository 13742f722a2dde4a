#include "snapshot/consistency.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/output.h"
#include "core/strings.h"
#include "snapshot/block_devices.h"
#include "snapshot/freeze.h"
#include "snapshot/hooks.h"
#include "snapshot/mysql_quiesce.h"
#include "snapshot/watchdog.h"

namespace cloudkeep::snapshot {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Micro(Micros d) {
  return FormatMicrosHuman(static_cast<double>(d.count()));
}

}  // namespace

struct ConsistencySession::State {
  bool begun = false;
  bool ended = false;
  bool begin_failed = false;
  std::vector<std::string> mountpoints;
  std::vector<UniqueFd> fds;
  size_t frozen = 0;  // mountpoints[0..frozen) are frozen by us
  std::unique_ptr<FreezeWatchdog> watchdog;
  SteadyClock::time_point freeze_start;  // before the first FIFREEZE
  SteadyClock::time_point frozen_at;     // after the last one returned
  std::unique_ptr<MysqlQuiescer> mysql;
};

ConsistencySession::ConsistencySession(ConsistencyOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {}

ConsistencySession::~ConsistencySession() = default;

Status ConsistencySession::Validate(const std::vector<Volume>& volumes) const {
  if (!options_.freeze && (options_.freeze_root || !options_.freeze_mountpoints.empty()))
    return Status::Usage("--freeze-root needs --freeze");
  if (options_.freeze) {
    if (options_.freeze_timeout <= Micros(0))
      return Status::Usage(fmt::format("--freeze-timeout: '{}' must be positive",
                                       FormatDuration(options_.freeze_timeout)));
    FreezeRequest req{options_.freeze_mountpoints, options_.freeze_root};
    CK_ASSIGN_OR_RETURN(
        auto targets, ResolveFreezeTargets(req, volumes, ReadMountInfo(options_.paths.mountinfo)));
    CK_RETURN_IF_ERROR(CheckNothingWrittenToFrozen(targets, volumes));
  }
  if (!options_.mysql) {
    if (!options_.mysql_status_file.empty())
      return Status::Usage("--mysql-status-file needs --mysql");
    if (!options_.mysql_defaults_file.empty())
      return Status::Usage("--mysql-defaults-file needs --mysql");
  }
  CK_ASSIGN_OR_RETURN(auto mode, ParseMysqlLockMode(options_.mysql_lock));
  (void)mode;
  if (options_.lock_tries < 1)
    return Status::Usage(fmt::format("--lock-tries: '{}' must be at least 1", options_.lock_tries));
  if (options_.lock_timeout <= Micros(0)) return Status::Usage("--lock-timeout must be positive");
  if (options_.hook_timeout <= Micros(0)) return Status::Usage("--hook-timeout must be positive");
  return Status::Ok();
}

Status ConsistencySession::Begin(const std::vector<Volume>& volumes, SnapshotMetadata* metadata) {
  State& st = *state_;
  st.begun = true;
  st.begin_failed = true;  // until the end of this function
  metadata->consistency = Consistency::kCrash;

  std::vector<HookReport> hooks;
  Status s = RunPreHooks(options_.pre_hooks, options_.hook_timeout, &hooks);
  for (const auto& h : hooks)
    if (h.ok)
      notes_.push_back(
          fmt::format("pre hook '{}' ran in {}", h.command, FormatDuration(h.elapsed)));
  CK_RETURN_IF_ERROR(s);

  if (options_.freeze) {
    FreezeRequest req{options_.freeze_mountpoints, options_.freeze_root};
    CK_ASSIGN_OR_RETURN(
        auto targets, ResolveFreezeTargets(req, volumes, ReadMountInfo(options_.paths.mountinfo)));
    // Write back what is dirty while writers still run and before the lock,
    // so that the freeze (which must flush all of it) and the reflink (which
    // flushes the image file) find little left to do inside the windows.
    for (const auto& m : targets) {
      UniqueFd fd(::open(m.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (fd.valid()) ::syncfs(fd.get());
    }
    for (const auto& v : volumes) {
      if (v.kind != "file") continue;
      UniqueFd img(::open(v.device.c_str(), O_RDONLY | O_CLOEXEC));
      if (img.valid()) ::fdatasync(img.get());
    }
  }

  if (options_.mysql) {
    MysqlOptions mo;
    mo.defaults_file = options_.mysql_defaults_file;
    CK_ASSIGN_OR_RETURN(mo.lock_mode, ParseMysqlLockMode(options_.mysql_lock));
    mo.lock_timeout = options_.lock_timeout;
    mo.lock_tries = options_.lock_tries;
    CK_ASSIGN_OR_RETURN(st.mysql, MysqlQuiescer::Connect(mo));
    Status locked = st.mysql->Lock();
    for (const auto& n : st.mysql->notes()) notes_.push_back("mysql: " + n);
    CK_RETURN_IF_ERROR(locked);
    CK_ASSIGN_OR_RETURN(metadata->database, st.mysql->Positions());
    if (metadata->database.count("binlog_file") == 0)
      notes_.push_back("mysql: the binary log is disabled; no binlog position recorded");
    if (!options_.mysql_status_file.empty()) {
      // Written before the freeze, so that it is inside the snapshot.
      std::string text = FormatStatusFile(metadata->database, st.mysql->server(),
                                          FormatRfc3339(SystemClock::Default().Now(), true));
      Status w = WriteFileAtomic(options_.mysql_status_file, text, 0600);
      if (!w.ok()) return w.Annotate("--mysql-status-file");
    }
  }

  if (options_.freeze) {
    FreezeRequest req{options_.freeze_mountpoints, options_.freeze_root};
    CK_ASSIGN_OR_RETURN(st.mountpoints, ResolveFreezeTargets(
                                            req, volumes, ReadMountInfo(options_.paths.mountinfo)));
    std::vector<int> raw;
    for (const auto& m : st.mountpoints) {
      CK_ASSIGN_OR_RETURN(UniqueFd fd, OpenMountpoint(m));
      raw.push_back(fd.get());
      st.fds.push_back(std::move(fd));
    }
    CK_ASSIGN_OR_RETURN(st.watchdog,
                        FreezeWatchdog::Start(raw, st.mountpoints, options_.freeze_timeout));
    st.freeze_start = SteadyClock::now();
    // From here until End() nothing is logged: stderr may be a file on a frozen filesystem.
    for (size_t i = 0; i < st.mountpoints.size(); ++i) {
      CK_RETURN_IF_ERROR(st.watchdog->Freezing(i));
      Status f = Freeze(st.fds[i].get(), st.mountpoints[i]);
      Status told = st.watchdog->Frozen(i, f.ok());
      if (f.ok()) st.frozen = i + 1;
      CK_RETURN_IF_ERROR(f);
      CK_RETURN_IF_ERROR(told);
    }
    st.frozen_at = SteadyClock::now();
    metadata->consistency = st.mysql ? Consistency::kApplication : Consistency::kFilesystem;
    Micros pause = options_.test_pause_frozen;
    if (pause > Micros(0)) {
      // The one line written while frozen, and only under the test variable: the tests wait for it.
      log::Warn("CLOUDKEEP_TEST_PAUSE_FROZEN_MS: pausing {} while frozen", FormatDuration(pause));
      std::this_thread::sleep_for(pause);
    }
  } else if (st.mysql) {
    notes_.push_back(
        "mysql: tables were locked, but without --freeze the snapshot is only crash-consistent");
  }
  st.begin_failed = false;
  return Status::Ok();
}

Status ConsistencySession::End(SnapshotMetadata* metadata) {
  State& st = *state_;
  if (!st.begun || st.ended) return Status::Ok();
  st.ended = true;
  Status result;

  if (st.watchdog) {
    auto thaw_start = SteadyClock::now();
    bool thawed_by_other = false;
    Status thaw_error;
    for (size_t i = st.frozen; i-- > 0;) {
      bool not_frozen = false;
      Status t = Thaw(st.fds[i].get(), st.mountpoints[i], &not_frozen);
      if (not_frozen)
        thawed_by_other = true;
      else if (!t.ok() && thaw_error.ok())
        thaw_error = t;
    }
    auto window = std::chrono::duration_cast<Micros>(SteadyClock::now() - st.freeze_start);
    bool fired = thawed_by_other;
    if (!thaw_error.ok()) {
      // Let the watchdog try: closing its socket makes it thaw everything announced.
      st.watchdog.reset();
      result = thaw_error;
    } else {
      auto verdict = st.watchdog->Finish();
      st.watchdog.reset();
      if (!verdict.ok())
        log::Warn("{}", verdict.status().message());
      else
        fired = fired || *verdict;
    }
    st.fds.clear();
    if (st.frozen > 0) {
      metadata->freeze_us = window.count();
      std::vector<std::string> frozen(st.mountpoints.begin(), st.mountpoints.begin() + st.frozen);
      auto freezing = st.frozen == st.mountpoints.size()
                          ? std::chrono::duration_cast<Micros>(st.frozen_at - st.freeze_start)
                          : window;
      auto held = st.frozen == st.mountpoints.size()
                      ? std::chrono::duration_cast<Micros>(thaw_start - st.frozen_at)
                      : Micros(0);
      notes_.push_back(fmt::format("froze {} for {} (FIFREEZE {}, capture {}, FITHAW {})",
                                   Join(frozen, ", "), Micro(window), Micro(freezing), Micro(held),
                                   Micro(window - freezing - held)));
    }
    if (fired && result.ok()) {
      result = Status::Failure(fmt::format(
          "the freeze watchdog thawed {} after --freeze-timeout {} before the capture was done; "
          "the snapshot would not be consistent and was abandoned (raise --freeze-timeout)",
          Join(st.mountpoints, ", "), FormatDuration(options_.freeze_timeout)));
    }
  }

  if (st.mysql) {
    bool was_locked = st.mysql->locked();
    Status u = st.mysql->Unlock();
    if (was_locked) {
      metadata->lock_us = st.mysql->locked_for().count();
      notes_.push_back(
          fmt::format("mysql: tables locked for {} ({})", Micro(st.mysql->locked_for()),
                      options_.mysql_lock == "backup-stage" ? "BACKUP STAGE BLOCK_COMMIT"
                                                            : "FLUSH TABLES WITH READ LOCK"));
      if (metadata->database.count("binlog_file"))
        notes_.push_back(fmt::format("mysql: binlog position {}:{}",
                                     metadata->database["binlog_file"],
                                     metadata->database["binlog_position"]));
    }
    st.mysql.reset();
    if (!u.ok() && result.ok()) result = u;
  }
  if (!result.ok() || st.begin_failed) metadata->consistency = Consistency::kCrash;

  std::vector<HookReport> hooks;
  Status post = RunPostHooks(options_.post_hooks, options_.hook_timeout, &hooks);
  for (const auto& h : hooks)
    if (h.ok)
      notes_.push_back(
          fmt::format("post hook '{}' ran in {}", h.command, FormatDuration(h.elapsed)));
  // The snapshot itself is sound; a failing post hook is for the operator to see (exit 1), not a
  // reason to drop it.
  if (!post.ok()) post_hook_error_ = post.message();
  return result;
}

}  // namespace cloudkeep::snapshot
