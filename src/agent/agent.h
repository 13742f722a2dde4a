// `cloudkeep agent run`: the long-running process. It owns the scheduler,
// runs each job's command lines as child processes (a crash or hang in a job
// never takes the agent down; each child has its own process group, killed at
// the job's timeout), records every run in the history, and serves /metrics.
//
// Signals: SIGHUP reloads the config (a bad one is refused, logged, and the
// old one keeps running); SIGTERM and SIGINT stop starting jobs, wait for the
// running ones up to shutdown_timeout, then kill them and record them as
// interrupted. Log lines, one per event, go to stderr.
#pragma once

#include <functional>
#include <string>

#include "agent/config.h"
#include "agent/history.h"
#include "core/clock.h"

namespace cloudkeep::agent {

// Sets TZ for the whole process, before any thread starts. One zone per agent:
// GCC 12's libstdc++ has no std::chrono::tzdb, and the C library's
// localtime_r/mktime under a fixed TZ need no new dependency and read the same
// /usr/share/zoneinfo; the children (prune's daily buckets are local days)
// inherit the same zone. kUsage when the zone does not exist.
Status ApplyTimezone(const std::string& zone);

// The history database under the state directory, created when `create`.
Result<std::unique_ptr<History>> OpenHistory(const AgentConfig& config, bool create);

struct AgentOptions {
  std::string self_exe = "/proc/self/exe";  // what runs snapshot, mesh and mail-check steps
  std::string version;
  // Reloads the config file on SIGHUP.
  std::function<ConfigLoad()> reload;
  // Delivers one alert; SendAlert when empty (tests inject their own).
  AlertSender send_alert;
};

// Runs until SIGTERM or SIGINT. Exit status: Ok after a clean stop.
Status RunAgent(AgentConfig config, const AgentOptions& options, const Clock& clock);

}  // namespace cloudkeep::agent
