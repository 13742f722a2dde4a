#include "core/env.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "core/strings.h"

namespace cloudkeep {

const std::vector<EnvVarInfo>& EnvironmentVariables() {
  // {name, test_only, read_here}
  static const std::vector<EnvVarInfo> kTable = {
      {"CLOUDKEEP_PROVIDER", false, false},  // CLI11 --provider's envname (cli/app.cpp)
      {"CLOUDKEEP_STORE", false, false},     // providers/local/store.cpp
      {"XDG_DATA_HOME", false, false},       // providers/local/store.cpp
      {"HOME", false, false},                // store.cpp, snapshot/mysql_quiesce.cpp
      {"XDG_RUNTIME_DIR", false, false},     // cli/mirror_cmd.cpp
      {"CLOUDKEEP_MESH_TOKEN", false, true},
      {"CLOUDKEEP_HOOK", false, false},  // set by cloudkeep for its hooks, not read
      {"CLOUDKEEP_THREADS", false, true},
      {"CLOUDKEEP_CHUNK_SIZE", false, false},  // providers/local/store.cpp, at store creation
      {"CLOUDKEEP_REREAD", false, true},
      {"CLOUDKEEP_S3_ADDRESSING", false, false},  // providers/local, an S3 store's addressing
      {"CLOUDKEEP_TEST_PAUSE_FROZEN_MS", true, true},
      {"CLOUDKEEP_AWS_BY_ID_DIR", true, true},
      {"CLOUDKEEP_MAIL_EGRESS_TARGETS", false, false},  // mail/egress.cpp
      // The AWS credential and endpoint chain (providers/aws, latency/imds.cpp).
      {"AWS_ACCESS_KEY_ID", false, false},
      {"AWS_SECRET_ACCESS_KEY", false, false},
      {"AWS_SESSION_TOKEN", false, false},
      {"AWS_PROFILE", false, false},
      {"AWS_REGION", false, false},
      {"AWS_DEFAULT_REGION", false, false},
      {"AWS_SHARED_CREDENTIALS_FILE", false, false},
      {"AWS_CONFIG_FILE", false, false},
      {"AWS_ENDPOINT_URL_EC2", false, false},
      {"AWS_ENDPOINT_URL", false, false},
      {"AWS_EC2_METADATA_DISABLED", false, false},
      {"AWS_EC2_METADATA_SERVICE_ENDPOINT", false, false},
  };
  return kTable;
}

namespace {

// A whole number in [lo, hi], or kUsage naming the variable and the value.
Result<long long> Number(const char* name, std::string_view value, long long lo, long long hi,
                         std::string_view what) {
  long long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < lo || v > hi)
    return Status::Usage(fmt::format("invalid {} '{}': {}", name, value, what));
  return v;
}

}  // namespace

Result<Environment> ReadEnvironment(const EnvLookup& lookup) {
  auto get = [&](const char* name) -> const char* {
    return lookup ? lookup(name) : std::getenv(name);
  };
  Environment env;
  if (const char* v = get("CLOUDKEEP_THREADS"); v && *v) {
    CK_ASSIGN_OR_RETURN(long long n, Number("CLOUDKEEP_THREADS", v, 0, 1024,
                                            "a whole number from 0 to 1024 (0: one per core)"));
    env.threads = static_cast<int>(n);
  }
  // Set at all, even empty, as the local provider has always taken it.
  env.reread = get("CLOUDKEEP_REREAD") != nullptr;
  if (const char* v = get("CLOUDKEEP_TEST_PAUSE_FROZEN_MS"); v && *v) {
    CK_ASSIGN_OR_RETURN(long long ms, Number("CLOUDKEEP_TEST_PAUSE_FROZEN_MS", v, 0, 3600000,
                                             "milliseconds from 0 to 3600000"));
    env.test_pause_frozen = std::chrono::milliseconds(ms);
  }
  if (const char* v = get("CLOUDKEEP_AWS_BY_ID_DIR"); v && *v) env.aws_by_id_dir = v;
  if (const char* v = get("CLOUDKEEP_MESH_TOKEN"); v && *v) env.mesh_token = Trim(v);
  return env;
}

}  // namespace cloudkeep
