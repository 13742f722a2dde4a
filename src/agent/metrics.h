// /metrics in the Prometheus text exposition format (version 0.0.4), named by
// Prometheus' conventions: base units in the name (_seconds), _total for
// counters, timestamps as Unix seconds. Label values are escaped as the
// format requires; nothing secret (commands, environments, tokens) is exported.
// The last mesh and mail-check reports become series of their own: each
// pair's round-trip quantiles and loss, and the mail findings by rule and level.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/history.h"

namespace cloudkeep::agent {

struct JobMetrics {
  std::string name;
  std::string kind;
  bool running = false;
  std::optional<TimePoint> next_run;
  std::optional<Run> last_run;
  std::optional<TimePoint> last_success;
};

struct MetricsInput {
  std::string version;
  TimePoint start_time;
  std::vector<JobMetrics> jobs;
  std::map<std::string, std::map<std::string, int64_t>> counters;  // job → outcome → count
  std::vector<VolumeRecord> volumes;
  // The last report of each mesh and mail-check job (History::Reports).
  std::vector<Report> reports;
};

std::string RenderMetrics(const MetricsInput& in);

}  // namespace cloudkeep::agent
