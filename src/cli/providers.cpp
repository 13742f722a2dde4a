// Chooses the snapshot provider from --provider / the config file.
#include <fmt/format.h>

#include "cli/app.h"
#include "providers/aws/aws_provider.h"
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
  if (g.provider == "aws") {
    aws::AwsProviderOptions opts;
    opts.region = g.region;
    opts.profile = g.profile;
    opts.endpoint_url = g.endpoint_url;
    // Where the EBS NVMe links are looked for; the integration tests point it at a fixture.
    if (const char* d = std::getenv("CLOUDKEEP_AWS_BY_ID_DIR")) opts.paths.by_id = d;
    return std::unique_ptr<snapshot::Provider>(std::make_unique<aws::AwsProvider>(opts));
  }
  return Status::Usage(fmt::format("unknown provider '{}': expected local or aws", g.provider));
}

}  // namespace cloudkeep::cli
