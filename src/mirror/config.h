// ResourceConfig: one mirrored resource as the operator describes it in TOML.
//
// A resource has a name, a replication protocol, how the link authenticates
// (a pre-shared key file, or a certificate, key and CA), and exactly two
// nodes, each with its replication address, backing device (block device or
// image file) and external metadata file. The contract names are those of
// issue 12 (docs/mirror.md, "Configuration"):
//
//   [resource.web]
//   protocol = "sync"                  # or "async"
//   psk_file = "/etc/cloudkeep/web.psk"
//   [[resource.web.node]]
//   name = "a"  address = "10.0.0.1:7789"  device = "…"  meta = "…"
//
// Loading checks the file alone (syntax, names, keys); ValidateLocal checks
// it against this machine (the node exists, devices readable, sizes agree
// where both devices are visible). Every error is a kUsage Status naming the
// bad value, so the command exits 2 and writes nothing.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/fs.h"
#include "core/status.h"

namespace cloudkeep::mirror {

enum class Protocol { kSync, kAsync };  // DRBD protocol C and A
enum class Fencing { kNone, kEtcd };
enum class StandbyLoss { kContinue, kSuspend };

struct NodeConfig {
  std::string name;
  std::string address;  // replication address HOST:PORT
  std::string device;
  std::string meta;
  // service_address_cloud = "aws": this node's elastic network interface
  // (eni-…), which the address is assigned to when this node is primary.
  std::string aws_network_interface;
};

struct ResourceConfig {
  std::string name;
  Protocol protocol = Protocol::kSync;
  std::string psk_file;
  std::string tls_cert, tls_key, tls_ca;
  // Bytes of the device one bit of the dirty bitmap stands for. 64 KiB by
  // measurement (docs/mirror.md, "Dirty bitmap"): the finest at which a
  // 16 TiB device's bitmap fits one BITMAP frame.
  uint64_t bitmap_granularity = 64 * 1024;
  // Activity log: extents of this size, at most al_extents of them hot.
  uint64_t al_extent_size = 4 * 1024 * 1024;
  uint32_t al_extents = 127;
  // A peer that has not acknowledged a write, or sent anything, for this long is disconnected.
  Micros peer_timeout{5'000'000};
  Micros connect_interval{1'000'000};
  // Protocol A: writes queued to the peer beyond this many bytes wait (the bounded loss).
  uint64_t async_max_queued_bytes = 64 * 1024 * 1024;
  // Resync: bytes in flight to the peer at once.
  uint64_t resync_window_bytes = 16 * 1024 * 1024;
  std::vector<NodeConfig> nodes;

  // Fencing and automatic failover (issue 13; docs/mirror.md, "Fencing and
  // automatic failover"). With kEtcd the daemons elect the primary through
  // a leader key under a lease in etcd.
  Fencing fencing = Fencing::kNone;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/cloudkeep/mirror";
  std::string etcd_ca, etcd_cert, etcd_key;
  // Defaults measured with bench/failover.sh (docs/mirror.md, "Defaults").
  Micros lease_ttl{3'000'000};       // whole seconds (etcd's TTL unit)
  Micros renew_interval{500'000};    // keepalive / campaign period
  Micros suspend_margin{1'250'000};  // stop acknowledging this long before the lease could expire
  Micros etcd_timeout{500'000};      // bound of every etcd request
  StandbyLoss on_standby_loss = StandbyLoss::kContinue;
  std::string service_address;    // "10.0.5.10/24": moved to the primary; empty: none
  std::string service_interface;  // the interface it goes on (required with service_address)
  // Where else the address must move: "" (only the local interface) or
  // "aws": AssignPrivateIpAddresses with AllowReassignment to the new
  // primary's network interface (each node's aws_network_interface), and,
  // with aws_elastic_ip (eipalloc-…), AssociateAddress with
  // AllowReassociation of that Elastic IP to it. aws_region and
  // aws_endpoint_url override the AWS credential chain's region and the
  // EC2 endpoint (as --region / --endpoint-url do for --provider aws).
  std::string service_address_cloud;
  std::string aws_elastic_ip;
  std::string aws_region, aws_endpoint_url;
  std::string on_promote;  // argv[0] of a hook run after a promotion; empty: none
  std::vector<std::string> on_promote_args;

  const NodeConfig* FindNode(const std::string& node) const;
  // The other node of a two-node resource.
  const NodeConfig* PeerOf(const std::string& node) const;
};

// Parses `path` and returns resource `resource` from it.
Result<ResourceConfig> LoadResourceConfig(const std::string& path, const std::string& resource);
Result<ResourceConfig> ParseResourceConfig(const std::string& text, const std::string& source,
                                           const std::string& resource);

// Checks the config for `node` on this machine: the node is known, its
// device exists and is a regular file or block device, and where the
// peer's device is visible too (both nodes on one machine) the sizes agree.
// Returns the local device size.
Result<uint64_t> ValidateLocal(const ResourceConfig& cfg, const std::string& node);

// Size of a regular file or block device, kUsage naming it when it is neither.
Result<uint64_t> DeviceSize(const std::string& path);

// Takes the exclusive lock that marks `path` as in use by one cloudkeep
// mirror (flock on the file; a block device is also opened O_EXCL, which
// fails while it is mounted or held by another exclusive user). kUsage
// naming the device when it is in use. The returned descriptor holds the
// lock until it is closed.
Result<UniqueFd> LockDevice(const std::string& path);

}  // namespace cloudkeep::mirror
