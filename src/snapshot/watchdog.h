// FreezeWatchdog: a separate process that thaws what cloudkeep froze.
//
// A frozen production filesystem is the worst failure cloudkeep can cause,
// so the thaw must not depend on cloudkeep staying alive. Before the first
// FIFREEZE the watchdog is forked; it holds its own descriptors of every
// mountpoint and a socket to cloudkeep, and thaws every filesystem that
// cloudkeep told it it froze (in reverse order) when
//   - the freeze timeout passes, or
//   - the socket reaches EOF: cloudkeep exited or was killed, SIGKILL included.
// It runs in its own process group and ignores SIGINT, SIGTERM and SIGHUP, so
// a Ctrl-C or a kill of cloudkeep's process group does not take it down
// before it has thawed. It writes nothing anywhere but stderr, and only after
// thawing (stderr may be a file on the frozen filesystem).
//
// The protocol is two-byte messages (op, index) over a SOCK_STREAM socketpair
// written with MSG_NOSIGNAL, so that a dead watchdog is an error, not a
// SIGPIPE that would kill cloudkeep while filesystems are frozen.
//
// Not thread-safe; owned by one ConsistencySession. Start() must be called
// while the process is single-threaded (the child only makes system calls).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/fs.h"
#include "core/status.h"

namespace cloudkeep::snapshot {

class FreezeWatchdog {
 public:
  // `fds[i]` is an open directory on `mountpoints[i]`; the child inherits
  // them. Returns once the watchdog is armed (signals ignored, descriptors
  // in place). The timeout counts from Start().
  static Result<std::unique_ptr<FreezeWatchdog>> Start(const std::vector<int>& fds,
                                                       const std::vector<std::string>& mountpoints,
                                                       Micros timeout);
  // Closes the socket (the watchdog thaws whatever is still announced) and
  // reaps the child.
  ~FreezeWatchdog();
  FreezeWatchdog(const FreezeWatchdog&) = delete;
  FreezeWatchdog& operator=(const FreezeWatchdog&) = delete;

  // Before FIFREEZE of mountpoint `index`: from now on the watchdog thaws it
  // when it fires, so a freeze that completes after the deadline is undone too.
  Status Freezing(size_t index);
  // After FIFREEZE: ok = false when it failed (nothing to thaw, and the
  // filesystem may be frozen by someone else, whom we must not thaw).
  Status Frozen(size_t index, bool ok);
  // After cloudkeep thawed everything itself: the watchdog exits. Returns
  // true when it had fired, i.e. the filesystems did not stay frozen for the
  // whole time cloudkeep relied on it.
  Result<bool> Finish();

  pid_t pid() const { return pid_; }

 private:
  FreezeWatchdog(pid_t pid, UniqueFd sock) : pid_(pid), sock_(std::move(sock)) {}
  Status Send(char op, size_t index);
  pid_t pid_;
  UniqueFd sock_;
  bool finished_ = false;
};

}  // namespace cloudkeep::snapshot
