#include "providers/aws/ec2_client.h"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "providers/aws/http.h"
#include "providers/aws/sigv4.h"

namespace cloudkeep::aws {

namespace {

constexpr const char* kApiVersion = "2016-11-15";
// Transport failures (refused, reset) are retried fewer times than throttling:
// a wrong --endpoint-url should fail in seconds, not minutes.
constexpr int kMaxTransportAttempts = 3;

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace

int BackoffMs(int attempt, int base_ms, int cap_ms, std::mt19937_64& rng) {
  int64_t ceiling = base_ms;
  for (int i = 0; i < attempt && ceiling < cap_ms; ++i) ceiling *= 2;
  if (ceiling > cap_ms) ceiling = cap_ms;
  return static_cast<int>(std::uniform_int_distribution<int64_t>(0, ceiling)(rng));
}

bool IsRetryable(const std::string& code, long http_status) {
  if (code == "RequestLimitExceeded" || code == "Throttling" || code == "ThrottlingException" ||
      code == "RequestThrottled" || code == "InternalError" || code == "InternalFailure" ||
      code == "ServiceUnavailable" || code == "Unavailable")
    return true;
  return http_status >= 500;
}

Ec2Client::Ec2Client(Ec2Options options, CredentialChain* credentials)
    : options_(std::move(options)), credentials_(credentials) {}

Result<Ec2Reply> Ec2Client::Call(const std::string& action, const Params& params) {
  CK_ASSIGN_OR_RETURN(Url url, ParseUrl(options_.endpoint));
  std::string body = "Action=" + UriEncode(action, false) + "&Version=" + kApiVersion;
  for (const auto& [k, v] : params) body += "&" + UriEncode(k, false) + "=" + UriEncode(v, false);
  int transport_failures = 0;
  bool renewed = false;
  Status last = Status::Failure(action + ": no attempt made");
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      retries_++;
      std::this_thread::sleep_for(std::chrono::milliseconds(
          BackoffMs(attempt - 1, options_.base_backoff_ms, options_.max_backoff_ms, Rng())));
    }
    // Credentials are fetched per attempt: instance-role keys may be renewed between retries.
    CK_ASSIGN_OR_RETURN(Credentials creds, credentials_->Get());
    SignableRequest sr;
    sr.method = "POST";
    sr.path = url.path;
    sr.headers = {{"Host", url.host},
                  {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    sr.body = body;
    SigningParams sp;
    sp.region = options_.region;
    sp.service = "ec2";
    sp.time = SystemClock::Default().Now();
    SignHeaders(sr, creds, sp);
    HttpRequest req;
    req.method = "POST";
    req.url = url.scheme + "://" + url.host + url.path;
    req.headers = sr.headers;
    req.body = body;
    auto t0 = std::chrono::steady_clock::now();
    auto resp = HttpSend(req);
    long ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    if (!resp.ok()) {
      log::Debug("ec2 {}: {} (attempt {})", action, resp.status().message(), attempt + 1);
      last = resp.status();
      if (++transport_failures >= kMaxTransportAttempts) return last;
      continue;
    }
    Ec2Reply reply;
    reply.http_status = resp->status;
    auto doc = ParseXml(resp->body);
    if (resp->status == 200) {
      if (!doc.ok()) return doc.status().Annotate(action);
      log::Debug("ec2 {}: HTTP 200 in {} ms", action, ms);
      reply.ok = true;
      reply.doc = std::move(doc).value();
      return reply;
    }
    std::optional<Ec2Error> err;
    if (doc.ok()) err = ParseError(*doc);
    reply.error =
        err ? *err : Ec2Error{fmt::format("HTTP{}", resp->status), "no EC2 error document", ""};
    log::Debug("ec2 {}: HTTP {} {} in {} ms (attempt {})", action, resp->status, reply.error.code,
               ms, attempt + 1);
    if (reply.error.code == "ExpiredToken" && !renewed) {
      // Instance-role keys can lapse between our refresh check and EC2's; renew once.
      renewed = true;
      credentials_->Invalidate();
      continue;
    }
    if (!IsRetryable(reply.error.code, resp->status)) return reply;
    last = Status::Failure(fmt::format("{} failed after {} attempts: {}: {}", action, attempt + 1,
                                       reply.error.code, reply.error.message));
    if (attempt + 1 == options_.max_attempts) return reply;
  }
  return last;
}

Result<XmlNode> Ec2Client::CallOrError(const std::string& action, const Params& params) {
  CK_ASSIGN_OR_RETURN(Ec2Reply reply, Call(action, params));
  if (!reply.ok) return ErrorStatus(action, reply.error);
  return std::move(reply.doc);
}

Status Ec2Client::ErrorStatus(const std::string& action, const Ec2Error& e) const {
  const std::string& c = e.code;
  if (c == "AuthFailure" && e.message.find("region") != std::string::npos)
    return Status::Usage(fmt::format(
        "unknown AWS region '{}': EC2 rejected it; pass a valid --region (e.g. us-east-1)",
        options_.region));
  if (c == "AuthFailure" || c == "InvalidClientTokenId" || c == "UnrecognizedClientException")
    return Status::Failure(
        fmt::format("AWS rejected the credentials ({}): check the access key id, --profile / "
                    "AWS_PROFILE, or the instance role",
                    c));
  if (c == "SignatureDoesNotMatch")
    return Status::Failure(
        "AWS rejected the request signature (SignatureDoesNotMatch): the secret access key does "
        "not match the "
        "access key id; check the credentials");
  if (c == "ExpiredToken" ||
      (c == "RequestExpired" && e.message.find("token") != std::string::npos))
    return Status::Failure(
        "the AWS session token has expired (ExpiredToken): obtain fresh credentials (for example "
        "'aws sso login' "
        "or a new STS session) and retry");
  if (c == "RequestExpired")
    return Status::Failure(
        "AWS says the request expired (RequestExpired): this machine's clock is off; sync it "
        "(chrony/ntp) and retry");
  if (c == "UnauthorizedOperation")
    return Status::Failure(
        fmt::format("not authorized to call ec2:{} (UnauthorizedOperation): add ec2:{} to the IAM "
                    "policy of this identity",
                    action, action));
  if (c.ends_with(".Malformed") || c == "InvalidParameterValue" || c == "InvalidVolume.NotFound" ||
      c == "InvalidSnapshot.NotFound" || c == "InvalidInstanceID.NotFound")
    return Status::Usage(fmt::format("{}: {} ({})", action, e.message, c));
  return Status::Failure(fmt::format("{} failed: {}: {}", action, c, e.message));
}

}  // namespace cloudkeep::aws
