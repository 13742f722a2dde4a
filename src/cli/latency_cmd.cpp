// `cloudkeep latency …`: registered when the latency module lands.
#include "cli/app.h"

namespace cloudkeep::cli {
void AddLatencyCommands(CLI::App&, Context&) {}
}  // namespace cloudkeep::cli
