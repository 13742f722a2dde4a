// Reverse DNS (the PTR record) of an Elastic IP, set through EC2: what
// `cloudkeep --provider aws mail ptr HOSTNAME --set|--reset` does before it
// verifies forward-confirmed reverse DNS through DNS.
//
// AWS sets a PTR only for an Elastic IP of the caller's account, and only to a
// name whose A record already points at the address (ModifyAddressAttribute
// refuses otherwise); the update is asynchronous (PENDING, then SUCCESSFUL or
// FAILED in DescribeAddressesAttribute). So: find the Elastic IP (the one
// given, or the one on this instance), have the caller confirm the forward
// record first (this module does not resolve names; the mail module's
// resolver does), then modify or reset, then optionally wait.
//
// Thread safety: functions only; the Ec2Client may be shared (it is thread-safe).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/deadline.h"
#include "core/status.h"
#include "providers/aws/ec2_client.h"

namespace cloudkeep::aws {

// The Elastic IP to work on. `public_ip` given: that address, which must be an
// Elastic IP of this account (a one-line kFailure saying what to do when it is
// not). Otherwise the Elastic IP associated with `instance_id`; when the
// instance has none, the line names its auto-assigned public address, if any,
// and the two aws commands that give it an Elastic IP; when it has several,
// it lists them and asks for --address.
Result<Ec2Address> FindElasticIp(Ec2Client& ec2, const std::string& public_ip,
                                 const std::string& instance_id);

// What the caller's resolver found for HOSTNAME's A record.
struct ForwardLookup {
  bool failed = false;  // timeout or SERVFAIL: nothing is known
  std::string status;   // the DNS status for the message ("NXDOMAIN", "NOERROR", "timeout")
  std::string error;    // the resolver's detail, if any
  std::vector<std::string> addresses;  // the A records (empty: none)
};

// AWS refuses ModifyAddressAttribute unless `hostname` resolves to
// `address`, so this is decided before EC2 is asked: Ok when one of the A
// records is the address; otherwise one kFailure line with the record to
// publish ("mail.example.com resolves to 198.51.100.9, not to 203.0.113.10:
// ... 'mail.example.com. IN A 203.0.113.10'"), or, when the lookup failed,
// that it could not be checked.
Status CheckForwardRecord(const std::string& hostname, const std::string& address,
                          const ForwardLookup& forward);

// ModifyAddressAttribute DomainName=hostname (only once CheckForwardRecord
// passes: otherwise its line, and EC2 is not called), or
// ResetAddressAttribute when hostname is empty (`forward` unused). Errors
// are ErrorStatus() lines, with AWS's refusal of the forward record turned
// into the fix (the A record to publish).
Result<Ec2AddressAttribute> RequestPtrChange(Ec2Client& ec2, const Ec2Address& address,
                                             const std::string& hostname,
                                             const ForwardLookup& forward);

// DryRun of the same call (the forward record checked first in the same
// way): Ok when the identity may make it; the UnauthorizedOperation line
// (naming the IAM action to add) when not.
Status DryRunPtrChange(Ec2Client& ec2, const Ec2Address& address, const std::string& hostname,
                       const ForwardLookup& forward);

// Polls DescribeAddressesAttribute every `poll` until the update is no longer
// PENDING or `deadline` passes, calling `progress` with each answer that
// differs from the last. Returns the last answer; kFailure when it is FAILED
// (with AWS's reason) or when the deadline passed with it still PENDING
// ("still pending after 10m: run the command again with --wait").
Result<Ec2AddressAttribute> WaitForPtrChange(
    Ec2Client& ec2, const std::string& allocation_id, Deadline deadline,
    std::chrono::milliseconds poll,
    const std::function<void(const Ec2AddressAttribute&)>& progress);

// True when `attr` shows `hostname` as the PTR (case and trailing dot ignored)
// with no update pending.
bool PtrIs(const Ec2AddressAttribute& attr, const std::string& hostname);

}  // namespace cloudkeep::aws
