// Where AWS credentials and the region come from, in the AWS CLI's order.
//
// Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN;
// then the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
// ~/.aws/credentials) and config file (AWS_CONFIG_FILE, else ~/.aws/config)
// for the profile (--profile, AWS_PROFILE, else "default"); then the instance
// role through IMDSv2, refreshed before it expires. Region: --region,
// AWS_REGION, AWS_DEFAULT_REGION, the profile's region, then IMDS.
//
// Imds speaks IMDSv2 only: PUT /latest/api/token with a TTL header, then GETs
// carrying the token. It honours AWS_EC2_METADATA_SERVICE_ENDPOINT and
// AWS_EC2_METADATA_DISABLED as the AWS SDKs do, and is contacted only when a
// value is actually needed from it.
//
// Thread safety: Imds and CredentialChain are safe for concurrent use (a
// mutex guards their caches). Secrets are never logged.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "aws/sigv4.h"
#include "core/status.h"

namespace cloudkeep::aws {

struct ImdsOptions {
  std::string endpoint = "http://169.254.169.254";
  bool disabled = false;
  // From AWS_EC2_METADATA_SERVICE_ENDPOINT and AWS_EC2_METADATA_DISABLED.
  static ImdsOptions FromEnvironment();
};

class Imds {
 public:
  explicit Imds(ImdsOptions options) : options_(std::move(options)) {}
  // GET of a metadata path ("/latest/meta-data/instance-id").
  Result<std::string> Get(const std::string& path);
  bool disabled() const { return options_.disabled; }

 private:
  Result<std::string> Token();
  ImdsOptions options_;
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expiry_{};
};

// One INI section per profile: {"default": {"region": "eu-west-1", …}}.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile ParseIni(const std::string& text);

struct ChainOptions {
  std::string profile;  // --profile; empty: AWS_PROFILE, else "default"
  std::string region;   // --region
  // Overridable for tests; empty = environment / home directory.
  std::string credentials_file;
  std::string config_file;
  // Refresh instance-role credentials this long before they expire.
  std::chrono::seconds refresh_margin{300};
};

class CredentialChain {
 public:
  CredentialChain(ChainOptions options, Imds* imds);
  // Credentials to sign the next request with; refreshes expiring role ones.
  Result<Credentials> Get();
  // After EC2 said the token expired: role credentials are fetched anew on
  // the next Get() (static keys cannot be renewed and stay as they are).
  void Invalidate();
  // The region, resolved once. kUsage when no source has one.
  Result<std::string> Region();
  // "environment", "shared credentials file (profile p)", "instance role r".
  std::string source();
  const std::string& profile() const { return profile_; }

 private:
  Status LoadFiles();
  Result<Credentials> FetchRole();
  ChainOptions options_;
  Imds* imds_;
  std::string profile_;
  bool profile_explicit_ = false;
  std::mutex mu_;
  bool files_loaded_ = false;
  IniFile credentials_, config_;
  std::string credentials_path_, config_path_;
  std::optional<Credentials> cached_;
  std::optional<std::chrono::system_clock::time_point> expiration_;
  std::string source_;
  std::optional<std::string> region_;
};

}  // namespace cloudkeep::aws
