// The lease-validity rule with a clock the test moves by hand.
#include "coord/lease.h"

#include <gtest/gtest.h>

namespace cloudkeep::coord {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(CertainlyValidUntil, SendTimePlusTtlMinusMargin) {
  TimePoint sent = TimePoint{} + seconds(1000);
  EXPECT_EQ(CertainlyValidUntil(sent, seconds(10), milliseconds(1500)), sent + milliseconds(8500));
  EXPECT_EQ(CertainlyValidUntil(sent, seconds(0), milliseconds(0)), TimePoint{});
}

class LeaseRule : public ::testing::Test {
 protected:
  FixedClock clock{TimePoint{} + seconds(5000)};
  LeaseOptions options() {
    LeaseOptions o;
    o.ttl_seconds = 6;
    o.margin = milliseconds(1000);
    o.clock = &clock;
    return o;
  }
  void Advance(milliseconds d) { clock.Set(clock.Now() + d); }
};

TEST_F(LeaseRule, AdoptedLeaseIsNotValidUntilRenewed) {
  Lease lease = Lease::Adopt(42, options());
  EXPECT_EQ(lease.id(), 42);
  EXPECT_FALSE(lease.CertainlyValid());
  EXPECT_EQ(lease.Remaining(), milliseconds(0));
}

TEST_F(LeaseRule, ValidityCountsFromTheSendTimeNotTheReply) {
  Lease lease = Lease::Adopt(42, options());
  const TimePoint sent = clock.Now();
  Advance(milliseconds(2000));  // the reply took 2 s to arrive
  lease.RecordRenewal(sent, 6);
  // 6 s from the send, less the 1 s margin: 3 s left now, not 5.
  EXPECT_EQ(lease.valid_until(), sent + milliseconds(5000));
  EXPECT_EQ(lease.Remaining(), milliseconds(3000));
  EXPECT_TRUE(lease.CertainlyValid());
  Advance(milliseconds(2999));
  EXPECT_TRUE(lease.CertainlyValid());
  Advance(milliseconds(1));
  EXPECT_FALSE(lease.CertainlyValid());  // suspends at sent + ttl - margin exactly
}

TEST_F(LeaseRule, RenewalsExtendAndLeaseGoneEndsAtOnce) {
  Lease lease = Lease::Adopt(42, options());
  lease.RecordRenewal(clock.Now(), 6);
  Advance(milliseconds(2000));
  lease.RecordRenewal(clock.Now(), 6);
  EXPECT_EQ(lease.Remaining(), milliseconds(5000));
  EXPECT_EQ(lease.granted_ttl_seconds(), 6);
  // etcd answers TTL 0: the lease is gone, whatever the earlier proof said.
  lease.RecordRenewal(clock.Now(), 0);
  EXPECT_FALSE(lease.CertainlyValid());
}

TEST_F(LeaseRule, AFailedRenewalKeepsTheLastProof) {
  // An unreachable etcd: KeepAliveOnce returns the error and records nothing,
  // so the validity runs out at the last proof's end and no later.
  EtcdOptions eo;
  eo.endpoints = {"http://127.0.0.1:1"};  // port 1: connection refused
  auto etcd = EtcdClient::Create(eo);
  ASSERT_TRUE(etcd.ok());
  Lease lease = Lease::Adopt(42, options());
  lease.RecordRenewal(clock.Now(), 6);
  const TimePoint until = lease.valid_until();
  auto r = lease.KeepAliveOnce(**etcd, milliseconds(500));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsUnreachable(r.status())) << r.status().message();
  EXPECT_EQ(lease.valid_until(), until);
  Advance(milliseconds(5000));
  EXPECT_FALSE(lease.CertainlyValid());
}

TEST_F(LeaseRule, MarginMustBeLessThanTheTtl) {
  EtcdOptions eo;
  eo.endpoints = {"http://127.0.0.1:1"};
  auto etcd = EtcdClient::Create(eo);
  ASSERT_TRUE(etcd.ok());
  LeaseOptions o = options();
  o.margin = seconds(6);
  auto r = Lease::Grant(**etcd, o, milliseconds(100));
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
}

TEST(MonotonicClock, NeverGoesBack) {
  const auto& c = MonotonicClock::Default();
  TimePoint a = c.Now();
  TimePoint b = c.Now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace cloudkeep::coord
