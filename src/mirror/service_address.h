// ServiceAddress: the one address a mirror's client connects to, held by
// whichever node is primary (issue 13; docs/mirror.md, "The service
// address"). The Fencer takes it after it wins the leader key and before
// the export starts, and releases it when the node stops being the leader.
//
// Two ways to hold it:
//   - on a local interface: `ip addr add CIDR dev IFACE` and two gratuitous
//     ARPs, for hosts on one layer-2 segment (and network namespaces);
//   - in a cloud first (on AWS, AssignPrivateIpAddresses with
//     AllowReassignment, which takes the address away from the old
//     primary's interface even when that host is dead), then on the local
//     interface, so that this host's kernel answers for it.
// The cloud call is a function given by the caller (src/cli wires the EC2
// client), so that the mirror module does not depend on a provider.
//
// A failed Take() means this node cannot serve its clients: the Fencer
// gives the leader key up rather than run a primary nobody can reach.
//
// Thread contract: not thread-safe; the Fencer calls it from one thread at
// a time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

namespace cloudkeep::mirror {

class ServiceAddress {
 public:
  virtual ~ServiceAddress() = default;
  // Makes this host answer for the address. Idempotent: an address this
  // host already has is success.
  virtual Status Take() = 0;
  // Stops answering for it locally (best effort, logged). Idempotent.
  // True when the address was on this host and is gone now.
  virtual bool Release() = 0;
  // "10.0.5.10/24 on eth0", for log lines and status.
  virtual std::string Describe() const = 0;
};

// `cidr` ("10.0.5.10/24") on interface `iface`; `tag` prefixes log lines.
std::unique_ptr<ServiceAddress> MakeInterfaceAddress(std::string cidr, std::string iface,
                                                     std::string tag);

// `cloud_take` moves the address to this host in the cloud (returning what
// went wrong), then the address goes on the local interface as above.
// `cloud_name` names it in log lines ("AWS private IP on eni-…").
std::unique_ptr<ServiceAddress> MakeCloudAddress(std::string cidr, std::string iface,
                                                 std::string tag, std::string cloud_name,
                                                 std::function<Status()> cloud_take);

}  // namespace cloudkeep::mirror
