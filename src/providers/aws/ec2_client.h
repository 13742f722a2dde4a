// An EC2 Query API client: form-encoded POSTs signed with SigV4, XML back.
//
// Call() retries what AWS documents as retryable — RequestLimitExceeded,
// Throttling, 5xx and lost connections — with capped exponential backoff and
// full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog), and
// hands every other API error back to the caller as an Ec2Error so that
// DeleteSnapshot can tell "in use" from "not found". ErrorStatus() turns an
// error into the one-line message and exit class the CLI prints.
//
// On top of Call(), typed calls for moving a service address between
// instances (the mirror's address takeover) and for an Elastic IP's reverse
// DNS (`mail ptr --set`); see "Network interfaces and Elastic IPs" below.
//
// Thread safety: Call() and every typed call may run on many threads at once
// (the delete pool); the client holds no per-call state.
#pragma once

#include <atomic>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "aws/backoff.h"
#include "aws/credentials.h"
#include "core/status.h"
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

bool IsRetryable(const std::string& code, long http_status);

// What DescribeNetworkInterfaces selects; the fields are ANDed, empty ones
// are not sent. All empty lists every interface of the region.
struct NetworkInterfaceQuery {
  std::vector<std::string> ids{};  // NetworkInterfaceId.N: an unknown one fails
  std::string instance_id{};       // filter attachment.instance-id
  std::string private_ip{};        // filter addresses.private-ip-address (primary or secondary)
};

// AssociateAddress of an Elastic IP with an instance's primary interface or
// with one private address of a given interface.
struct AssociateAddressRequest {
  std::string allocation_id{};         // eipalloc-...: required
  std::string network_interface_id{};  // one of these two
  std::string instance_id{};
  std::string private_ip{};  // empty: the interface's primary address
  // Move the address away from wherever it is associated now. Without it EC2
  // refuses an associated address with Resource.AlreadyAssociated.
  bool allow_reassociation = false;
};

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

  // --- Network interfaces and Elastic IPs ---------------------------------
  //
  // Each typed call is one EC2 action through Call() (so throttling and 5xx
  // are retried) and returns its result parsed. Errors: an API error becomes
  // ErrorStatus() (one line naming the action and the AWS code; kUsage for a
  // malformed or unknown id, kFailure otherwise) and, when `api_error` is not
  // null, is also stored there so that a caller can act on the code
  // (InvalidNetworkInterfaceID.NotFound, InvalidIPAddress.InUse,
  // Resource.AlreadyAssociated, ...); `api_error->code` stays empty when the
  // failure was not an API answer (network, credentials, retries exhausted).
  // Transport failures are kFailure. None of these calls is retried on an API
  // error: EC2 applies them once or not at all.

  // DescribeNetworkInterfaces, following NextToken to the end.
  Result<std::vector<Ec2NetworkInterface>> DescribeNetworkInterfaces(
      const NetworkInterfaceQuery& query, Ec2Error* api_error = nullptr);
  // AssignPrivateIpAddresses of the given secondary addresses to `eni`. With
  // allow_reassignment an address that another interface holds is moved here
  // (and an Elastic IP associated with it moves along, as EC2 documents);
  // without it EC2 refuses with InvalidIPAddress.InUse. An address outside
  // the interface's subnet is InvalidParameterValue. EC2 applies the move
  // asynchronously: the answer means accepted, and the instance's metadata
  // (network/interfaces/macs/MAC/local-ipv4s) shows when it is done.
  // Returns the addresses EC2 reports as assigned.
  Result<std::vector<std::string>> AssignPrivateIpAddresses(const std::string& eni,
                                                            const std::vector<std::string>& ips,
                                                            bool allow_reassignment,
                                                            Ec2Error* api_error = nullptr);
  // UnassignPrivateIpAddresses: the addresses must be secondary addresses of
  // `eni` (InvalidParameterValue otherwise); an Elastic IP associated with
  // one of them is disassociated by EC2.
  Status UnassignPrivateIpAddresses(const std::string& eni, const std::vector<std::string>& ips,
                                    Ec2Error* api_error = nullptr);
  // AssociateAddress; returns the new association id.
  Result<std::string> AssociateAddress(const AssociateAddressRequest& request,
                                       Ec2Error* api_error = nullptr);
  // DescribeAddresses of the given public IPs (an address that is not an
  // Elastic IP of this account is InvalidAddress.NotFound), or, with none
  // given, those associated with `instance_id` (every one of the account and
  // region when that is empty too).
  Result<std::vector<Ec2Address>> DescribeAddresses(const std::vector<std::string>& public_ips,
                                                    const std::string& instance_id,
                                                    Ec2Error* api_error = nullptr);
  // The reverse DNS of an Elastic IP. ModifyAddressAttribute sets it to
  // `domain_name` (EC2 first checks that the name's A record is this address,
  // refusing otherwise); the update is asynchronous and DescribeAddressesAttribute
  // reports it PENDING, then SUCCESSFUL (or FAILED with a reason).
  // ResetAddressAttribute returns it to EC2's default name.
  Result<Ec2AddressAttribute> ModifyAddressDomainName(const std::string& allocation_id,
                                                      const std::string& domain_name,
                                                      Ec2Error* api_error = nullptr);
  Result<Ec2AddressAttribute> DescribeAddressDomainName(const std::string& allocation_id,
                                                        Ec2Error* api_error = nullptr);
  Result<Ec2AddressAttribute> ResetAddressDomainName(const std::string& allocation_id,
                                                     Ec2Error* api_error = nullptr);
  // Sends `action` with DryRun=true: Ok when EC2 answers DryRunOperation (the
  // identity may call it), the UnauthorizedOperation line of ErrorStatus()
  // when it may not, and any other API error as it came (a bad argument is
  // reported before the permission is).
  Status DryRun(const std::string& action, const Params& params, Ec2Error* api_error = nullptr);
  // Calls that were throttled or failed with 5xx and then retried.
  uint64_t retries() const { return retries_.load(); }

 private:
  // Call() with an API error turned into ErrorStatus() and stored in `api_error`.
  Result<XmlNode> Typed(const std::string& action, const Params& params, Ec2Error* api_error);
  Ec2Options options_;
  CredentialChain* credentials_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace cloudkeep::aws
