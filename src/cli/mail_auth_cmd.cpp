// Filled in by the mail work: see mail_cmd.h.
#include "cli/mail_cmd.h"

namespace cloudkeep::cli {
void AddMailAuthCommands(CLI::App*, Context&) {}
}  // namespace cloudkeep::cli
