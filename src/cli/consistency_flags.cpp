// Consistency flags of `snapshot create` (--freeze, --mysql, --pre, --post …).
// Registered when the consistency layer lands.
#include "cli/app.h"

namespace cloudkeep::cli {
void AddConsistencyFlags(CLI::App*, snapshot::ConsistencyOptions*) {}
}  // namespace cloudkeep::cli
