// The agent's configuration file (TOML, docs/manual/cloudkeep-agent.md):
// an [agent] table, [[job]] tables and [[alert]] tables.
//
// The keys of a snapshot, mesh or mail-check job are the flags of the command
// it runs, with underscores. This module does not know those flags: it hands
// each such job to a StepBuilder (the CLI's, which checks the keys against the
// commands' own options and validators) that turns them into the command
// lines the job runs. Every problem is collected, each one line naming the
// file, line, job, key and bad value, so that one check-config run shows all.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/alerts.h"
#include "agent/schedule.h"
#include "core/duration.h"

namespace cloudkeep::agent {

// A command key of a job as written: `keep_daily = 7`, `freeze = true`,
// `volumes = ["/a", "/b"]`.
struct CommandKey {
  std::string key;
  std::vector<std::string> values;  // one for a scalar, each element of a list
  bool is_bool = false;             // values[0] is "true" or "false"
  bool is_list = false;
  int line = 0;
};

struct JobConfig {
  std::string name;
  std::string kind;  // snapshot | mesh | mail-check | exec
  std::optional<Schedule> schedule;
  Micros timeout{std::chrono::hours(1)};
  int line = 0;
  // exec
  std::vector<std::string> command;
  std::vector<std::string> env;  // "NAME=value", added to the agent's environment
  // snapshot, mesh, mail-check: the keys as written, for the StepBuilder
  std::vector<CommandKey> keys;
  // Filled by the StepBuilder: each step is one child process, the arguments
  // after the program (the agent runs them with its own binary, in order,
  // stopping at the first failure).
  std::vector<std::vector<std::string>> steps;
  // Volumes the job snapshots, as the CLI resolves them; "*" for every
  // attached volume. Two jobs sharing one never run at once.
  std::vector<std::string> locks;
};

struct AgentConfig {
  std::string path;
  std::string listen = "127.0.0.1:7480";
  std::string state_dir = "/var/lib/cloudkeep/agent";
  std::string bearer_token_file;  // required unless listen is a loopback address
  std::string timezone;           // IANA name for cron schedules; "" keeps the process's TZ
  Micros history_max_age{std::chrono::hours(24 * 90)};
  int history_max_runs = 1000;  // per job
  Micros shutdown_timeout{std::chrono::seconds(60)};
  std::vector<JobConfig> jobs;
  std::vector<AlertTarget> alerts;  // [[alert]] tables
  const JobConfig* Find(const std::string& name) const;
};

// Fills job.steps and job.locks from job.keys, or appends one line per bad
// key to `errors` (prefixed by the caller with FILE:LINE and the job).
using StepBuilder =
    std::function<void(JobConfig& job, std::vector<std::pair<int, std::string>>* errors)>;

struct ConfigLoad {
  std::optional<AgentConfig> config;  // set when errors is empty
  std::vector<std::string> errors;    // "FILE:LINE: job 'x': key = value: why"
};

ConfigLoad LoadConfig(const std::string& path, const StepBuilder& build);

}  // namespace cloudkeep::agent
