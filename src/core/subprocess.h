// Running other programs: hooks (--pre/--post), mkfs in the demo, helpers.
//
// A command runs in its own process group so that a timeout kills it and
// everything it started. Output is captured (bounded) or passed through.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace cloudkeep {

struct SubprocessResult {
  int exit_code = -1;      // valid when !timed_out and signal == 0
  int signal = 0;          // terminating signal, 0 if it exited
  bool timed_out = false;  // killed after the timeout
  std::string output;      // stdout and stderr interleaved, at most 64 KiB kept
  std::string errors;      // with split_stderr: stderr alone (output is then stdout alone)
  bool cancelled = false;  // killed because *cancel became true
  std::chrono::microseconds elapsed{0};
  bool success() const { return !timed_out && signal == 0 && exit_code == 0; }
  // "exited with status 3", "killed by signal 9", "timed out after 5s".
  std::string Describe() const;
};

struct SubprocessOptions {
  std::chrono::microseconds timeout{0};  // 0: no timeout
  bool capture = true;                   // false: inherit stdout/stderr
  std::vector<std::string> extra_env;    // "NAME=value" added to the environment
  // Keep stderr apart from stdout (a child's one JSON document on stdout, its
  // log lines on stderr), each bounded like `output`.
  bool split_stderr = false;
  // When set and it becomes true, the process group is killed as at a timeout
  // (a daemon shutting down that cannot wait for its children any longer).
  const std::atomic<bool>* cancel = nullptr;
};

// Runs argv[0] with arguments (no shell).
Result<SubprocessResult> RunProcess(const std::vector<std::string>& argv,
                                    const SubprocessOptions& opts);
// Runs `command` through /bin/sh -c, as hooks are written.
Result<SubprocessResult> RunShell(const std::string& command, const SubprocessOptions& opts);

}  // namespace cloudkeep
