#include "coord/lease.h"

#include <fmt/format.h>

#include <algorithm>

namespace cloudkeep::coord {

TimePoint MonotonicClock::Now() const {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::steady_clock::now().time_since_epoch()));
}

const MonotonicClock& MonotonicClock::Default() {
  static const MonotonicClock clock;
  return clock;
}

TimePoint CertainlyValidUntil(TimePoint sent, std::chrono::seconds ttl,
                              std::chrono::milliseconds margin) {
  if (ttl.count() <= 0) return TimePoint{};
  return sent + ttl - margin;
}

Result<Lease> Lease::Grant(EtcdClient& etcd, const LeaseOptions& options, Timeout timeout) {
  if (options.margin.count() < 0 ||
      options.margin >= std::chrono::seconds(std::max<int64_t>(options.ttl_seconds, 0)))
    return Status::Usage(fmt::format("lease margin {} ms: must be less than the ttl {} s",
                                     options.margin.count(), options.ttl_seconds));
  const TimePoint sent = options.clock->Now();
  CK_ASSIGN_OR_RETURN(LeaseGrantResponse g, etcd.LeaseGrant(options.ttl_seconds, timeout));
  Lease lease(g.id, g.ttl_seconds, options);
  lease.RecordRenewal(sent, g.ttl_seconds);
  return lease;
}

Lease Lease::Adopt(int64_t id, const LeaseOptions& options) {
  return Lease(id, options.ttl_seconds, options);
}

Result<int64_t> Lease::KeepAliveOnce(EtcdClient& etcd, Timeout timeout) {
  // The send time, taken before the request leaves: see the header.
  const TimePoint sent = options_.clock->Now();
  CK_ASSIGN_OR_RETURN(int64_t ttl, etcd.LeaseKeepAliveOnce(id_, timeout));
  RecordRenewal(sent, ttl);
  return ttl;
}

Status Lease::Revoke(EtcdClient& etcd, Timeout timeout) {
  valid_until_ = TimePoint{};
  return etcd.LeaseRevoke(id_, timeout);
}

Result<LeaseTimeToLive> Lease::TimeToLive(EtcdClient& etcd, Timeout timeout) const {
  return etcd.LeaseTimeToLiveOf(id_, /*with_keys=*/true, timeout);
}

std::chrono::milliseconds Lease::Remaining() const {
  auto left = valid_until_ - options_.clock->Now();
  if (left <= TimePoint::duration::zero()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(left);
}

void Lease::RecordRenewal(TimePoint sent, int64_t ttl_seconds) {
  if (ttl_seconds <= 0) {
    valid_until_ = TimePoint{};  // etcd says the lease is gone
    return;
  }
  granted_ttl_ = ttl_seconds;
  // The latest proof replaces the earlier one (it is the later bound in any
  // configuration where etcd only extends leases).
  valid_until_ = CertainlyValidUntil(sent, std::chrono::seconds(ttl_seconds), options_.margin);
}

}  // namespace cloudkeep::coord
