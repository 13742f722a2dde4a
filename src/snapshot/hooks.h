// Hooks: the --pre and --post shell commands of `snapshot create`.
//
// Pre hooks run in the order given, before anything is locked or frozen;
// the first failure stops the run. Post hooks run after the thaw and unlock,
// in reverse order, on every path — also when a pre hook, the lock, the
// freeze or the capture failed — so that whatever a pre hook stopped is
// started again. Each hook runs through /bin/sh -c in its own process group,
// killed with everything it started after the hook timeout, and sees
// CLOUDKEEP_HOOK=pre or post in its environment.
//
// Stateless functions; safe to call from any thread.
#pragma once

#include <string>
#include <vector>

#include "core/duration.h"
#include "core/status.h"

namespace cloudkeep::snapshot {

struct HookReport {
  std::string command;
  bool ok = false;
  std::string outcome;  // "exited with status 3", "timed out after 5s"
  std::string output;   // last lines of what it printed
  Micros elapsed{0};
};

// Runs the pre hooks in order; stops at the first failure, whose Status names
// the hook and how it failed. `reports` receives one entry per hook run.
Status RunPreHooks(const std::vector<std::string>& hooks, Micros timeout,
                   std::vector<HookReport>* reports);

// Runs every post hook, last one first, even after one of them failed.
// Returns the first failure (after running them all).
Status RunPostHooks(const std::vector<std::string>& hooks, Micros timeout,
                    std::vector<HookReport>* reports);

}  // namespace cloudkeep::snapshot
