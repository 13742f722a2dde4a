// Lease: an etcd lease held by this process, and how long it is certainly valid.
//
// A primary may acknowledge writes only while it certainly holds its leader
// key, and the key lives exactly as long as its lease. etcd expires a lease
// TTL seconds after the last keepalive it *processed*, on etcd's clock. This
// process cannot know when that was, but it knows when it *sent* the
// request: etcd processed it later, so the lease's expiry is at least
// sent + ttl. Using the reply's arrival time instead would be unsafe: a
// reply delayed by d would stretch the estimate by d beyond the real expiry.
// So, with a margin for clock-rate differences between the two machines and
// for the time this process needs to stop acknowledging:
//
//     certainly valid until  sent + ttl - margin
//
// The rule needs a clock that does not jump: MonotonicClock below (steady
// time, expressed as a core TimePoint so that the core Clock seam and
// FixedClock can drive it in tests). A wall clock stepped by NTP would
// break it. A failed renewal never shortens or extends the validity: it
// stays what the last successful one proved; a renewal that etcd answers
// with "lease gone" ends it at once.
//
// Thread safety: a Lease is not synchronized; one thread renews it, or the
// owner serializes access.
#pragma once

#include <chrono>
#include <cstdint>

#include "coord/etcd_client.h"
#include "core/clock.h"
#include "core/status.h"

namespace cloudkeep::coord {

// steady_clock time as a TimePoint: only differences mean anything.
class MonotonicClock final : public Clock {
 public:
  TimePoint Now() const override;
  static const MonotonicClock& Default();
};

// The validity rule, alone: sent + ttl - margin.
TimePoint CertainlyValidUntil(TimePoint sent, std::chrono::seconds ttl,
                              std::chrono::milliseconds margin);

struct LeaseOptions {
  int64_t ttl_seconds = 10;
  // Subtracted from every validity: covers clock-rate drift (ppm, negligible
  // for seconds), scheduling delay of the thread that stops acknowledging,
  // and the time in-flight writes take to be refused. Must be < the TTL.
  std::chrono::milliseconds margin{1000};
  const Clock* clock = &MonotonicClock::Default();
};

class Lease {
 public:
  // Grants a new lease; its validity starts from the time the grant was sent.
  static Result<Lease> Grant(EtcdClient& etcd, const LeaseOptions& options, Timeout timeout);
  // An existing lease id with no proven validity yet (after a restart):
  // CertainlyValid() is false until a KeepAliveOnce succeeds.
  static Lease Adopt(int64_t id, const LeaseOptions& options);

  // Renews the lease; returns the TTL etcd granted from the time it was sent.
  // 0 means etcd says the lease is gone (validity ends now). An unreachable
  // etcd returns the error and leaves the validity as it was.
  Result<int64_t> KeepAliveOnce(EtcdClient& etcd, Timeout timeout);
  // Revokes the lease (its keys are deleted); validity ends before the request.
  Status Revoke(EtcdClient& etcd, Timeout timeout);
  // What etcd says about the lease now.
  Result<LeaseTimeToLive> TimeToLive(EtcdClient& etcd, Timeout timeout) const;

  int64_t id() const { return id_; }
  int64_t granted_ttl_seconds() const { return granted_ttl_; }
  // The local time until which the lease is certainly valid; the epoch
  // (TimePoint{}) when nothing has been proven.
  TimePoint valid_until() const { return valid_until_; }
  bool CertainlyValid() const { return options_.clock->Now() < valid_until_; }
  // How long until CertainlyValid() turns false (zero if it is already).
  std::chrono::milliseconds Remaining() const;

  // Records a successful renewal sent at `sent` that etcd answered with
  // `ttl_seconds` (0: the lease is gone). Exposed for tests of the rule.
  void RecordRenewal(TimePoint sent, int64_t ttl_seconds);

 private:
  Lease(int64_t id, int64_t ttl, LeaseOptions options)
      : id_(id), granted_ttl_(ttl), options_(options) {}
  int64_t id_ = 0;
  int64_t granted_ttl_ = 0;
  LeaseOptions options_;
  TimePoint valid_until_{};
};

}  // namespace cloudkeep::coord
