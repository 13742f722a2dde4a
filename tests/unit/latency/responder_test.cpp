// The responder and prober against each other on loopback (ports from the
// kernel), including the abuse a responder on a real network sees.
#include "latency/responder.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <thread>

#include "latency/control.h"
#include "latency/prober.h"
#include "latency/throughput.h"
#include "latency/wire.h"

namespace cloudkeep::latency {
namespace {

class ResponderTest : public ::testing::Test {
 protected:
  void StartWith(ResponderOptions o) {
    o.listen = {"127.0.0.1:0"};
    o.name = "unit";
    o.zone = "zone-a";
    auto r = Responder::Start(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    responder_ = std::move(*r);
    target_ = responder_->bound()[0];
    thread_ = std::thread([this] { (void)responder_->Run(); });
  }
  void SetUp() override {
    ResponderOptions o;
    o.token = "s3cret";
    StartWith(o);
  }
  void TearDown() override {
    responder_->Stop();
    thread_.join();
  }
  SockAddr Addr() { return *Resolve(*ParseHostPort(target_, "t")); }

  // Sends a raw datagram; returns what came back within 200 ms (empty: nothing).
  std::vector<uint8_t> Exchange(const std::vector<uint8_t>& msg) {
    SockAddr a = Addr();
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
    connect(fd.get(), a.sa(), a.len);
    send(fd.get(), msg.data(), msg.size(), 0);
    pollfd p{fd.get(), POLLIN, 0};
    std::vector<uint8_t> out(70000);
    if (poll(&p, 1, 200) <= 0) return {};
    ssize_t n = recv(fd.get(), out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  std::unique_ptr<Responder> responder_;
  std::string target_;
  std::thread thread_;
};

TEST_F(ResponderTest, UdpProbeWithNameAndZone) {
  ProbeOptions o;
  o.count = 5;
  o.interval = Micros(1000);
  o.keep_samples = true;
  TargetResult r = ProbeTarget(target_, o);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.rtt.sent, 5u);
  EXPECT_EQ(r.rtt.received, 5u);
  EXPECT_EQ(r.name, "unit");
  EXPECT_EQ(r.zone, "zone-a");
  EXPECT_EQ(r.samples_us.size(), 5u);
  EXPECT_GT(r.rtt.min_us, 0);
}

TEST_F(ResponderTest, TcpProbe) {
  ProbeOptions o;
  o.proto = Proto::kTcp;
  o.count = 5;
  o.interval = Micros(0);
  o.size = 200;
  TargetResult r = ProbeTarget(target_, o);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.rtt.received, 5u);
  EXPECT_TRUE(r.connect_us.has_value());
  EXPECT_EQ(r.zone, "zone-a");
}

TEST_F(ResponderTest, GarbageTruncatedOversizedGetNoReply) {
  EXPECT_TRUE(Exchange({'h', 'e', 'l', 'l', 'o'}).empty());
  std::vector<uint8_t> probe(64);
  wire::Probe p;
  p.length = 64;
  wire::EncodeProbe(p, probe);
  auto truncated = probe;
  truncated.resize(40);
  EXPECT_TRUE(Exchange(truncated).empty());
  std::vector<uint8_t> big(20000, 0);
  std::copy(probe.begin(), probe.begin() + 32, big.begin());
  EXPECT_TRUE(Exchange(big).empty());
  auto reply = probe;
  reply[5] = static_cast<uint8_t>(wire::Type::kReply);
  EXPECT_TRUE(Exchange(reply).empty());
  // Still alive and answering, with exactly as many bytes as it received.
  auto answer = Exchange(probe);
  EXPECT_EQ(answer.size(), probe.size());
  EXPECT_GE(responder_->counters().malformed.load(), 4u);
}

TEST_F(ResponderTest, ControlWithWrongTokenIsRefused) {
  auto ok = ControlCall(Addr(), {{"op", "hello"}}, "s3cret", std::chrono::seconds(2));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ((*ok)["zone"], "zone-a");
  auto bad = ControlCall(Addr(), {{"op", "hello"}}, "wrong", std::chrono::seconds(2));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("authentication failed"), std::string::npos) << bad.status().message();
}

TEST_F(ResponderTest, RunProbesForTheMesh) {
  Json req = {{"op", "run"}, {"targets", {target_}}, {"count", 3}, {"interval_us", 1000}};
  auto r = ControlCall(Addr(), req, "s3cret", std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ((*r)["results"].size(), 1u);
  EXPECT_EQ((*r)["results"][0]["received"], 3);
  EXPECT_EQ((*r)["results"][0]["samples_us"].size(), 3u);
}

TEST_F(ResponderTest, Throughput) {
  ThroughputOptions o;
  o.token = "s3cret";
  o.streams = 2;
  o.duration = std::chrono::milliseconds(200);
  auto up = RunThroughput(target_, o);
  ASSERT_TRUE(up.ok()) << up.status().message();
  EXPECT_GT(up->bytes, 0u);
  EXPECT_EQ(up->streams.size(), 2u);
  o.reverse = true;
  auto down = RunThroughput(target_, o);
  ASSERT_TRUE(down.ok()) << down.status().message();
  EXPECT_GT(down->bits_per_second, 0);
}

TEST(ReplayGuardTest, RefusesReplayAndStale) {
  ReplayGuard g;
  Json req = {{"nonce", "0123456789abcdef01"}, {"time", 1000}};
  EXPECT_TRUE(g.Check(req, 1000).ok());
  EXPECT_FALSE(g.Check(req, 1001).ok());
  Json old = {{"nonce", "fedcba9876543210fe"}, {"time", 1000}};
  EXPECT_FALSE(g.Check(old, 1000 + 301).ok());
  EXPECT_FALSE(g.Check(Json{{"time", 1000}}, 1000).ok());
}

TEST(TokenBucketTest, LimitsRate) {
  TokenBucket b(1000, 10);  // 1000/s, burst 10
  uint64_t t = 1'000'000'000;
  int ok = 0;
  for (int i = 0; i < 100; i++) ok += b.Take(t);
  EXPECT_EQ(ok, 10);
  EXPECT_FALSE(b.Take(t + 500'000));   // 0.5 ms later: half a token
  EXPECT_TRUE(b.Take(t + 1'000'000));  // 1 ms later: one token
  TokenBucket unlimited(0, 0);
  for (int i = 0; i < 1000; i++) EXPECT_TRUE(unlimited.Take(t));
}

TEST(ProberTest, UnreachableTargetIsLostAfterTimeout) {
  // A port with nothing behind it on loopback: ICMP port unreachable, counted as loss.
  ProbeOptions o;
  o.count = 2;
  o.interval = Micros(1000);
  o.timeout = std::chrono::milliseconds(50);
  TargetResult r = ProbeTarget("127.0.0.1:9", o);
  EXPECT_EQ(r.rtt.sent, 2u);
  EXPECT_EQ(r.rtt.received, 0u);
}

}  // namespace
}  // namespace cloudkeep::latency
