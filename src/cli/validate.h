// Checks of the command line and the config file that CLI11 does not make
// the way operators need: an unknown group or command named as typed, a
// config file validated against the options it may set (FILE:LINE and the
// key), and options given an empty value where a value is needed.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/status.h"

namespace cloudkeep::cli {

// kUsage "unknown command 'snapshto'" (or "unknown snapshot command 'lst'")
// when a word in a command position names no group or command.
Status CheckCommandWords(CLI::App& app, int argc, char** argv);

// The config file this command line reads: --config's value, else the
// default path when it exists, else "".
std::string ConfigPathOf(CLI::App& app, int argc, char** argv, const std::string& default_path);

// kUsage "FILE:LINE: …" for a TOML syntax error, a key that names no option
// (of the root, or of the group/command its table names), or a value of the
// wrong kind (a table or array where one value goes, a non-boolean for a flag).
Status ValidateConfigFile(CLI::App& app, const std::string& path);

// After parsing: kUsage naming the option when one that needs a value was
// given an empty one ("--store ''", an unset variable under cron).
Status CheckEmptyValues(CLI::App& app);

}  // namespace cloudkeep::cli
