// An EC2 Query API client: form-encoded POSTs signed with SigV4, XML back.
//
// Call() retries what AWS documents as retryable — RequestLimitExceeded,
// Throttling, 5xx and lost connections — with capped exponential backoff and
// full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog), and
// hands every other API error back to the caller as an Ec2Error so that
// DeleteSnapshot can tell "in use" from "not found". ErrorStatus() turns an
// error into the one-line message and exit class the CLI prints.
//
// Thread safety: Call() may run on many threads at once (the delete pool).
#pragma once

#include <atomic>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "providers/aws/credentials.h"
#include "providers/aws/ec2_xml.h"

namespace cloudkeep::aws {

using Params = std::vector<std::pair<std::string, std::string>>;

struct Ec2Options {
  std::string endpoint;  // https://ec2.REGION.amazonaws.com unless --endpoint-url
  std::string region;
  int max_attempts = 12;
  int base_backoff_ms = 50;
  int max_backoff_ms = 5000;
};

struct Ec2Reply {
  bool ok = false;
  XmlNode doc;     // when ok
  Ec2Error error;  // when !ok
  long http_status = 0;
};

// Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)] milliseconds.
int BackoffMs(int attempt, int base_ms, int cap_ms, std::mt19937_64& rng);
bool IsRetryable(const std::string& code, long http_status);

class Ec2Client {
 public:
  Ec2Client(Ec2Options options, CredentialChain* credentials);
  // kFailure/kUsage only when no API answer came back (network, credentials
  // unavailable, retries exhausted on throttling); API errors are in the reply.
  Result<Ec2Reply> Call(const std::string& action, const Params& params);
  // Call(), with any API error turned into ErrorStatus().
  Result<XmlNode> CallOrError(const std::string& action, const Params& params);
  Status ErrorStatus(const std::string& action, const Ec2Error& error) const;
  const std::string& region() const { return options_.region; }
  // Calls that were throttled or failed with 5xx and then retried.
  uint64_t retries() const { return retries_.load(); }

 private:
  Ec2Options options_;
  CredentialChain* credentials_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace cloudkeep::aws
