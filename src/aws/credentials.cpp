#include "aws/credentials.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "aws/http.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/strings.h"

namespace cloudkeep::aws {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string HomeFile(const char* env, const char* rel) {
  std::string v = Env(env);
  if (!v.empty()) return v;
  std::string home = Env("HOME");
  return home.empty() ? "" : home + "/.aws/" + rel;
}

constexpr int kImdsTokenTtl = 21600;

}  // namespace

ImdsOptions ImdsOptions::FromEnvironment() {
  ImdsOptions o;
  std::string ep = Env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (!ep.empty()) {
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    o.endpoint = ep;
  }
  o.disabled = EqualsIgnoreCase(Env("AWS_EC2_METADATA_DISABLED"), "true");
  return o;
}

Result<std::string> Imds::Token() {
  auto now = std::chrono::steady_clock::now();
  if (!token_.empty() && now < token_expiry_) return token_;
  HttpRequest req;
  req.method = "PUT";
  req.url = options_.endpoint + "/latest/api/token";
  req.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(kImdsTokenTtl)}};
  req.timeout_ms = 2000;
  req.connect_timeout_ms = 1000;
  auto resp = HttpSend(req);
  if (!resp.ok())
    return Status::Failure("instance metadata service (IMDSv2) unreachable at " +
                           options_.endpoint +
                           ": not on EC2? pass --region and credentials explicitly");
  if (resp->status != 200)
    return Status::Failure(
        fmt::format("instance metadata service refused a session token (HTTP {})", resp->status));
  token_ = resp->body;
  // Renew a minute early so a request never carries a token about to lapse.
  token_expiry_ = now + std::chrono::seconds(kImdsTokenTtl - 60);
  return token_;
}

Result<std::string> Imds::Get(const std::string& path) {
  if (options_.disabled)
    return Status::Failure(
        "the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED=true)");
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    CK_ASSIGN_OR_RETURN(std::string token, Token());
    HttpRequest req;
    req.url = options_.endpoint + path;
    req.headers = {{"X-aws-ec2-metadata-token", token}};
    req.timeout_ms = 2000;
    req.connect_timeout_ms = 1000;
    CK_ASSIGN_OR_RETURN(HttpResponse resp, HttpSend(req));
    if (resp.status == 200) return resp.body;
    if (resp.status == 401) {  // token expired or revoked: get a new one once
      token_.clear();
      continue;
    }
    return Status::Failure(fmt::format("instance metadata {}: HTTP {}", path, resp.status));
  }
  return Status::Failure("instance metadata service keeps rejecting its own session token");
}

IniFile ParseIni(const std::string& text) {
  IniFile out;
  std::string section;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = Trim(text.substr(pos, e - pos));
    pos = e + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trim(line.substr(1, line.size() - 2));
      out[section];
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || section.empty()) continue;
    out[section][Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
  return out;
}

CredentialChain::CredentialChain(ChainOptions options, Imds* imds)
    : options_(std::move(options)), imds_(imds) {
  profile_ = options_.profile;
  profile_explicit_ = !profile_.empty();
  if (profile_.empty()) {
    profile_ = Env("AWS_PROFILE");
    profile_explicit_ = !profile_.empty();
  }
  if (profile_.empty()) profile_ = "default";
  credentials_path_ = options_.credentials_file.empty()
                          ? HomeFile("AWS_SHARED_CREDENTIALS_FILE", "credentials")
                          : options_.credentials_file;
  config_path_ =
      options_.config_file.empty() ? HomeFile("AWS_CONFIG_FILE", "config") : options_.config_file;
}

Status CredentialChain::LoadFiles() {
  if (files_loaded_) return Status::Ok();
  files_loaded_ = true;
  if (!credentials_path_.empty() && std::filesystem::exists(credentials_path_)) {
    CK_ASSIGN_OR_RETURN(std::string text, ReadFile(credentials_path_));
    credentials_ = ParseIni(text);
  }
  if (!config_path_.empty() && std::filesystem::exists(config_path_)) {
    CK_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path_));
    IniFile raw = ParseIni(text);
    // The config file names sections "profile NAME", except "default".
    for (auto& [name, kv] : raw) {
      std::string n = name.rfind("profile ", 0) == 0 ? Trim(name.substr(8)) : name;
      config_[n] = kv;
    }
  }
  if (profile_explicit_ && !credentials_.count(profile_) && !config_.count(profile_)) {
    return Status::Usage(
        fmt::format("AWS profile '{}' not found in {} or {}: check --profile / AWS_PROFILE",
                    profile_, credentials_path_, config_path_));
  }
  return Status::Ok();
}

Result<Credentials> CredentialChain::FetchRole() {
  if (!imds_ || imds_->disabled())
    return Status::Failure(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, configure a profile "
        "in "
        "~/.aws/credentials, or run on an instance with a role (the metadata service is disabled)");
  auto role = imds_->Get("/latest/meta-data/iam/security-credentials/");
  if (!role.ok())
    return Status::Failure(
        "no AWS credentials: none in the environment or ~/.aws, and no instance role (" +
        role.status().message() + ")");
  std::string name = Trim(role->substr(0, role->find('\n')));
  CK_ASSIGN_OR_RETURN(std::string doc,
                      imds_->Get("/latest/meta-data/iam/security-credentials/" + name));
  nlohmann::json j = nlohmann::json::parse(doc, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("Code", "") != "Success")
    return Status::Failure("the instance role '" + name +
                           "' has no usable credentials in the metadata service");
  Credentials c{j.value("AccessKeyId", ""), j.value("SecretAccessKey", ""), j.value("Token", "")};
  if (c.empty())
    return Status::Failure("the instance role '" + name + "' returned incomplete credentials");
  expiration_.reset();
  auto exp = ParseRfc3339(j.value("Expiration", ""));
  if (exp.ok()) expiration_ = *exp;
  source_ = "instance role " + name;
  log::Debug("aws credentials: instance role {} (expires {})", name, j.value("Expiration", "?"));
  return c;
}

Result<Credentials> CredentialChain::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_) {
    if (!expiration_ || std::chrono::system_clock::now() + options_.refresh_margin < *expiration_)
      return *cached_;
    log::Debug("aws credentials: {} expire soon; refreshing", source_);
    CK_ASSIGN_OR_RETURN(Credentials fresh, FetchRole());
    cached_ = fresh;
    return fresh;
  }
  Credentials env{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), Env("AWS_SESSION_TOKEN")};
  // An explicit --profile wins over the environment, as in the AWS CLI.
  if (!env.empty() && options_.profile.empty()) {
    source_ = "environment";
    cached_ = env;
    return env;
  }
  CK_RETURN_IF_ERROR(LoadFiles());
  for (IniFile* f : {&credentials_, &config_}) {
    auto it = f->find(profile_);
    if (it == f->end()) continue;
    auto& kv = it->second;
    if (kv.count("aws_access_key_id") && kv.count("aws_secret_access_key")) {
      Credentials c{kv["aws_access_key_id"], kv["aws_secret_access_key"],
                    kv.count("aws_session_token") ? kv["aws_session_token"] : ""};
      source_ = fmt::format("{} (profile {})",
                            f == &credentials_ ? credentials_path_ : config_path_, profile_);
      cached_ = c;
      return c;
    }
  }
  if (profile_explicit_)
    return Status::Failure(
        fmt::format("AWS profile '{}' has no aws_access_key_id / aws_secret_access_key", profile_));
  CK_ASSIGN_OR_RETURN(Credentials role, FetchRole());
  cached_ = role;
  return role;
}

Result<std::string> CredentialChain::Region() {
  std::lock_guard<std::mutex> lock(mu_);
  if (region_) return *region_;
  std::string r = options_.region;
  if (r.empty()) r = Env("AWS_REGION");
  if (r.empty()) r = Env("AWS_DEFAULT_REGION");
  if (r.empty()) {
    CK_RETURN_IF_ERROR(LoadFiles());
    auto it = config_.find(profile_);
    if (it != config_.end() && it->second.count("region")) r = it->second["region"];
  }
  if (r.empty() && imds_ && !imds_->disabled()) {
    auto from_imds = imds_->Get("/latest/meta-data/placement/region");
    if (from_imds.ok()) r = Trim(*from_imds);
  }
  if (r.empty())
    return Status::Usage(
        "no AWS region: pass --region, set AWS_REGION, or add 'region' to the profile in "
        "~/.aws/config");
  region_ = r;
  return r;
}

void CredentialChain::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  if (expiration_) expiration_ = std::chrono::system_clock::now();
}

std::string CredentialChain::source() {
  std::lock_guard<std::mutex> lock(mu_);
  return source_;
}

}  // namespace cloudkeep::aws
