// Chooses the snapshot provider from --provider / the config file.
#include <fmt/format.h>

#include "cli/app.h"
#include "core/env.h"
#include "providers/aws/aws_provider.h"
#include "providers/local/local_provider.h"

namespace cloudkeep::cli {

Result<std::unique_ptr<snapshot::Provider>> MakeProvider(const Context& ctx) {
  const auto& g = ctx.global;
  CK_ASSIGN_OR_RETURN(Environment env, ReadEnvironment());
  if (g.provider == "local") {
    local::LocalProviderOptions opts;
    opts.store_root = g.store;
    opts.endpoint_url = g.endpoint_url;
    opts.region = g.region;
    opts.profile = g.profile;
    opts.threads = env.threads;
    opts.reread = env.reread;
    return std::unique_ptr<snapshot::Provider>(std::make_unique<local::LocalProvider>(opts));
  }
  if (g.provider == "aws") {
    aws::AwsProviderOptions opts;
    opts.region = g.region;
    opts.profile = g.profile;
    opts.endpoint_url = g.endpoint_url;
    // Where the EBS NVMe links are looked for; the integration tests point it at a fixture.
    if (!env.aws_by_id_dir.empty()) opts.paths.by_id = env.aws_by_id_dir;
    return std::unique_ptr<snapshot::Provider>(std::make_unique<aws::AwsProvider>(opts));
  }
  return Status::Usage(fmt::format("unknown provider '{}': expected local or aws", g.provider));
}

}  // namespace cloudkeep::cli
