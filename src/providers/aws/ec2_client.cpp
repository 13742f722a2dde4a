#include "providers/aws/ec2_client.h"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "aws/http.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/log.h"

namespace cloudkeep::aws {

namespace {

constexpr const char* kApiVersion = "2016-11-15";
// Transport failures (refused, reset) are retried fewer times than throttling:
// a wrong --endpoint-url should fail in seconds, not minutes.
constexpr int kMaxTransportAttempts = 3;

}  // namespace

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
          BackoffMs(attempt - 1, options_.base_backoff_ms, options_.max_backoff_ms, BackoffRng())));
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

Result<XmlNode> Ec2Client::Typed(const std::string& action, const Params& params,
                                 Ec2Error* api_error) {
  if (api_error) *api_error = Ec2Error{};
  CK_ASSIGN_OR_RETURN(Ec2Reply reply, Call(action, params));
  if (reply.ok) return std::move(reply.doc);
  if (api_error) *api_error = reply.error;
  return ErrorStatus(action, reply.error);
}

namespace {

void AddList(Params* p, const std::string& prefix, const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i)
    p->emplace_back(fmt::format("{}.{}", prefix, i + 1), values[i]);
}

void AddFilter(Params* p, int* n, const std::string& name, const std::string& value) {
  if (value.empty()) return;
  ++*n;
  p->emplace_back(fmt::format("Filter.{}.Name", *n), name);
  p->emplace_back(fmt::format("Filter.{}.Value.1", *n), value);
}

}  // namespace

Result<std::vector<Ec2NetworkInterface>> Ec2Client::DescribeNetworkInterfaces(
    const NetworkInterfaceQuery& query, Ec2Error* api_error) {
  Params base;
  AddList(&base, "NetworkInterfaceId", query.ids);
  int filters = 0;
  AddFilter(&base, &filters, "attachment.instance-id", query.instance_id);
  AddFilter(&base, &filters, "addresses.private-ip-address", query.private_ip);
  std::vector<Ec2NetworkInterface> out;
  std::string token;
  do {
    Params p = base;
    // EC2 refuses MaxResults together with explicit ids.
    if (query.ids.empty()) p.emplace_back("MaxResults", "1000");
    if (!token.empty()) p.emplace_back("NextToken", token);
    CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("DescribeNetworkInterfaces", p, api_error));
    CK_ASSIGN_OR_RETURN(NetworkInterfacePage page, ParseDescribeNetworkInterfaces(doc));
    for (auto& e : page.interfaces) out.push_back(std::move(e));
    token = page.next_token;
  } while (!token.empty());
  return out;
}

Result<std::vector<std::string>> Ec2Client::AssignPrivateIpAddresses(
    const std::string& eni, const std::vector<std::string>& ips, bool allow_reassignment,
    Ec2Error* api_error) {
  Params p{{"NetworkInterfaceId", eni}};
  AddList(&p, "PrivateIpAddress", ips);
  if (allow_reassignment) p.emplace_back("AllowReassignment", "true");
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("AssignPrivateIpAddresses", p, api_error));
  return ParseAssignPrivateIpAddresses(doc);
}

Status Ec2Client::UnassignPrivateIpAddresses(const std::string& eni,
                                             const std::vector<std::string>& ips,
                                             Ec2Error* api_error) {
  Params p{{"NetworkInterfaceId", eni}};
  AddList(&p, "PrivateIpAddress", ips);
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("UnassignPrivateIpAddresses", p, api_error));
  return ParseReturnTrue(doc, "UnassignPrivateIpAddressesResponse");
}

Result<std::string> Ec2Client::AssociateAddress(const AssociateAddressRequest& r,
                                                Ec2Error* api_error) {
  Params p{{"AllocationId", r.allocation_id}};
  if (!r.network_interface_id.empty()) p.emplace_back("NetworkInterfaceId", r.network_interface_id);
  if (!r.instance_id.empty()) p.emplace_back("InstanceId", r.instance_id);
  if (!r.private_ip.empty()) p.emplace_back("PrivateIpAddress", r.private_ip);
  if (r.allow_reassociation) p.emplace_back("AllowReassociation", "true");
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("AssociateAddress", p, api_error));
  return ParseAssociateAddress(doc);
}

Result<std::vector<Ec2Address>> Ec2Client::DescribeAddresses(
    const std::vector<std::string>& public_ips, const std::string& instance_id,
    Ec2Error* api_error) {
  Params p;
  AddList(&p, "PublicIp", public_ips);
  int filters = 0;
  if (public_ips.empty()) AddFilter(&p, &filters, "instance-id", instance_id);
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("DescribeAddresses", p, api_error));
  return ParseDescribeAddresses(doc);
}

Result<Ec2AddressAttribute> Ec2Client::ModifyAddressDomainName(const std::string& allocation_id,
                                                               const std::string& domain_name,
                                                               Ec2Error* api_error) {
  Params p{{"AllocationId", allocation_id}, {"DomainName", domain_name}};
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("ModifyAddressAttribute", p, api_error));
  return ParseAddressAttributeChange(doc, "ModifyAddressAttributeResponse");
}

Result<Ec2AddressAttribute> Ec2Client::DescribeAddressDomainName(const std::string& allocation_id,
                                                                 Ec2Error* api_error) {
  Params p{{"AllocationId.1", allocation_id}, {"Attribute", "domain-name"}};
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("DescribeAddressesAttribute", p, api_error));
  CK_ASSIGN_OR_RETURN(AddressAttributePage page, ParseDescribeAddressesAttribute(doc));
  for (auto& a : page.addresses)
    if (a.allocation_id == allocation_id) return std::move(a);
  return Status::Failure(fmt::format(
      "DescribeAddressesAttribute did not list {}, the address it was asked about", allocation_id));
}

Result<Ec2AddressAttribute> Ec2Client::ResetAddressDomainName(const std::string& allocation_id,
                                                              Ec2Error* api_error) {
  Params p{{"AllocationId", allocation_id}, {"Attribute", "domain-name"}};
  CK_ASSIGN_OR_RETURN(XmlNode doc, Typed("ResetAddressAttribute", p, api_error));
  return ParseAddressAttributeChange(doc, "ResetAddressAttributeResponse");
}

Status Ec2Client::DryRun(const std::string& action, const Params& params, Ec2Error* api_error) {
  if (api_error) *api_error = Ec2Error{};
  Params p = params;
  p.emplace_back("DryRun", "true");
  CK_ASSIGN_OR_RETURN(Ec2Reply reply, Call(action, p));
  if (reply.ok)
    return Status::Failure(
        fmt::format("{} with DryRun=true was carried out instead of checked: "
                    "the endpoint does not honour DryRun",
                    action));
  if (api_error) *api_error = reply.error;
  if (reply.error.code == "DryRunOperation") return Status::Ok();
  return ErrorStatus(action, reply.error);
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
      c == "InvalidSnapshot.NotFound" || c == "InvalidInstanceID.NotFound" ||
      c == "InvalidNetworkInterfaceID.NotFound" || c == "InvalidAllocationID.NotFound" ||
      c == "InvalidAddress.NotFound")
    return Status::Usage(fmt::format("{}: {} ({})", action, e.message, c));
  return Status::Failure(fmt::format("{} failed: {}: {}", action, c, e.message));
}

}  // namespace cloudkeep::aws
