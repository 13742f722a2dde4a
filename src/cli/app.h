// The command line: global options, the per-group registration functions and
// the helpers every command file shares. Command files only parse flags,
// call a module and print; logic a test would want lives in the modules.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/duration.h"
#include "core/output.h"
#include "core/status.h"
#include "snapshot/consistency.h"
#include "snapshot/provider.h"

namespace cloudkeep::cli {

struct GlobalOptions {
  bool json = false;
  int verbose = 0;
  bool quiet = false;
  std::string provider = "local";
  // local provider
  std::string store;
  // aws provider (as the AWS CLI spells them)
  std::string region;
  std::string profile;
  std::string endpoint_url;
};

struct Context {
  GlobalOptions global;
  // Set by the callback of the command that was chosen; returns the exit code.
  std::function<int()> action;
};

void AddVolumesCommand(CLI::App& app, Context& ctx);
void AddSnapshotCommands(CLI::App& app, Context& ctx);
void AddLatencyCommands(CLI::App& app, Context& ctx);
void AddMailCommands(CLI::App& app, Context& ctx);
// snapshot serve, mount, umount (snapshot_serve_cmd.cpp), into the snapshot group.
void AddSnapshotServeCommands(CLI::App* snapshot_group, Context& ctx);
void AddMirrorCommands(CLI::App& app, Context& ctx);
void AddAgentCommands(CLI::App& app, Context& ctx);
// The whole command line: global options and every group. `agent` builds a
// second one to check its jobs' keys with the commands' own options.
void BuildApp(CLI::App& app, Context& ctx);
// The consistency flags of `snapshot create`.
void AddConsistencyFlags(CLI::App* create, snapshot::ConsistencyOptions* options);

// Prints a failed Status as one line on stderr (and as {"error": …} on stdout
// with --json) and returns its exit code; returns 0 for an ok Status.
int Report(const Context& ctx, const Status& status);

// The provider chosen by --provider (or the config file).
Result<std::unique_ptr<snapshot::Provider>> MakeProvider(const Context& ctx);

// Wraps a command body so exceptions from libraries still end in one line.
std::function<void()> Action(Context& ctx, std::function<Status()> body);

// Parses a duration flag value, reporting the flag name on error.
Result<Micros> DurationFlag(const std::string& text, BareNumber bare, const std::string& flag);

}  // namespace cloudkeep::cli
