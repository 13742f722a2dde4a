// Chooses the snapshot provider from --provider / the config file.
#include <fmt/format.h>

#include "cli/app.h"
#include "providers/local/local_provider.h"

namespace cloudkeep::cli {

Result<std::unique_ptr<snapshot::Provider>> MakeProvider(const Context& ctx) {
  const auto& g = ctx.global;
  if (g.provider == "local") {
    local::LocalProviderOptions opts;
    opts.store_root = g.store;
    if (const char* t = std::getenv("CLOUDKEEP_THREADS")) opts.threads = std::atoi(t);
    return std::unique_ptr<snapshot::Provider>(std::make_unique<local::LocalProvider>(opts));
  }
  return Status::Usage(fmt::format("unknown provider '{}': expected local or aws", g.provider));
}

}  // namespace cloudkeep::cli
