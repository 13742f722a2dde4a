// The prober: round-trip times from this host to one or more targets.
//
// UDP (default) sends kProbe datagrams to a `latency serve` responder, one
// at a time, and reads the RTT from kernel software timestamps
// (SO_TIMESTAMPING, Documentation/networking/timestamping.rst): the send
// time is taken when the packet reaches the device queue and the receive
// time when it arrives, so time spent waiting for this process to be
// scheduled is not counted. The user-space RTT (clock_gettime around
// send/recv) is reported beside it; `kernel_timestamps = false` measures
// only that. TCP keeps one connection and exchanges
// frames on it (plus the connect time); ICMP sends echo requests (RFC 792,
// RFC 4443 section 4.1) through an unprivileged ping socket where
// net.ipv4.ping_group_range allows, else a raw socket (root).
//
// A probe is lost when no answer arrives within the timeout; the prober
// never waits longer than (warmup + count) × max(interval, timeout) plus one
// timeout for the hello, whatever the target does.
//
// Thread safety: ProbeTarget is reentrant; ProbeTargets runs one thread per target.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/output.h"
#include "core/status.h"
#include "latency/stats.h"

namespace cloudkeep::latency {

enum class Proto { kUdp, kTcp, kIcmp };
Result<Proto> ParseProto(const std::string& text);
const char* ProtoName(Proto p);

struct ProbeOptions {
  Proto proto = Proto::kUdp;
  int count = 10;
  Micros interval{std::chrono::milliseconds(200)};
  int warmup = 1;    // the first probe pays for ARP, route and cache misses; the original author
                     // dropped it too
  size_t size = 64;  // bytes of probe payload (UDP/TCP message; ICMP echo data + header)
  Micros timeout{std::chrono::seconds(1)};
  bool keep_samples = false;  // return every sample (the mesh pools them per zone)
  // UDP and ICMP: ask the kernel for send and receive timestamps. Off, the
  // RTT is the user-space one only, and sending costs a little less (no
  // timestamp copy of each packet to queue): what sockperf measures.
  bool kernel_timestamps = true;
};
// Checks ranges; errors name the flag.
Status ValidateProbeOptions(const ProbeOptions& o);

struct TargetResult {
  std::string target;      // as given
  std::string address;     // resolved
  std::string name, zone;  // as the responder announces them (UDP/TCP), else empty
  std::string timestamps;  // "kernel" or "user": which clock `rtt` comes from
  Summary rtt;
  std::optional<Summary> user_rtt;   // when rtt is from kernel timestamps
  std::optional<double> connect_us;  // TCP handshake
  std::vector<double> samples_us;    // with keep_samples
  std::string
      error;  // why nothing could be sent (resolve, socket, connect); probes then count as lost
};

TargetResult ProbeTarget(const std::string& target, const ProbeOptions& opts);
std::vector<TargetResult> ProbeTargets(const std::vector<std::string>& targets,
                                       const ProbeOptions& opts);

Json TargetResultToJson(const TargetResult& r);
TargetResult TargetResultFromJson(const Json& j);  // for the mesh: what an agent sent back

}  // namespace cloudkeep::latency
