// The agent's dashboard: one self-contained page at `/` (its style and
// script inline, nothing fetched from anywhere but the agent) and the
// read-only JSON it reads at `/api/state`, refreshed every 15 seconds.
//
// The state holds what the history holds: each job's name, kind, volumes,
// last and next run; every volume's last snapshot; the newest runs with
// their outcome and one-line error; the last report of each mesh and
// mail-check job as that command printed it (--json). It never holds a
// job's command line, environment or any token.
//
// Pure functions: safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "agent/history.h"
#include "agent/metrics.h"

namespace cloudkeep::agent {

struct DashboardInput {
  MetricsInput metrics;
  std::string host;
  TimePoint now;
  std::vector<std::vector<std::string>> job_volumes;  // parallel to metrics.jobs
  std::vector<Run> runs;                              // newest first
  std::vector<Report> reports;
};

std::string DashboardStateJson(const DashboardInput& in);
const std::string& DashboardHtml();

}  // namespace cloudkeep::agent
