// `cloudkeep snapshot serve|mount|umount`: a snapshot as an NBD export or a
// mounted file system, without restoring it. Flags in, module calls, output out.
#include "cli/app.h"

namespace cloudkeep::cli {

void AddSnapshotServeCommands(CLI::App* /*group*/, Context& /*ctx*/) {}

}  // namespace cloudkeep::cli
