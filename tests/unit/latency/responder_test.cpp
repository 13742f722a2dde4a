// The responder and prober against each other on loopback (ports from the
// kernel), including the abuse a responder on a real network sees.
#include "latency/responder.h"

#include <arpa/inet.h>
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

TEST_F(ResponderTest, StoppingCountsNoMalformedProbe) {
  ProbeOptions po;
  po.count = 3;
  po.interval = Micros(100);
  TargetResult r = ProbeTarget(target_, po);
  EXPECT_EQ(r.rtt.received, 3u);
  responder_->Stop();
  thread_.join();
  // The shutdown that wakes the UDP thread is not a datagram.
  EXPECT_EQ(responder_->counters().malformed.load(), 0u);
  EXPECT_EQ(responder_->counters().answered.load(), 5u);  // hello, warmup, 3 probes
  // A running responder again, for TearDown.
  SetUp();
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
  EXPECT_NE(bad.status().message().find("authentication failed"), std::string::npos)
      << bad.status().message();
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

// A source address as recvmmsg reports it: sockaddr_in, or sockaddr_in6 for text with a colon.
sockaddr_storage Source(const std::string& text) {
  sockaddr_storage ss{};
  if (text.find(':') == std::string::npos) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, text.c_str(), &in.sin_addr);
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr);
  }
  return ss;
}

TEST(SourceRateLimiterTest, EachSourceHasItsOwnBudget) {
  SourceRateLimiter l(1000, 5);
  uint64_t t = 1'000'000'000;
  int a = 0, b = 0;
  for (int i = 0; i < 50; i++) a += l.Take(Source("10.0.0.1"), t);
  for (int i = 0; i < 50; i++) b += l.Take(Source("10.0.0.2"), t);
  EXPECT_EQ(a, 5);
  EXPECT_EQ(b, 5);  // the busy first source did not use up the second's
  EXPECT_FALSE(l.Take(Source("10.0.0.1"), t + 500'000));
  EXPECT_TRUE(l.Take(Source("10.0.0.1"), t + 1'000'000));
}

TEST(SourceRateLimiterTest, MappedIpv4IsTheSameSourceAndV6CountsPerSlash64) {
  SourceRateLimiter l(1000, 3);
  uint64_t t = 1'000'000'000;
  int n = 0;
  for (int i = 0; i < 3; i++) n += l.Take(Source("192.0.2.7"), t);
  n += l.Take(Source("::ffff:192.0.2.7"), t);  // through a dual-stack socket
  EXPECT_EQ(n, 3);
  int v6 = 0;
  // Rotating the interface identifier within one /64 does not buy more replies.
  for (int i = 0; i < 10; i++) v6 += l.Take(Source("2001:db8:1:2::" + std::to_string(i + 1)), t);
  EXPECT_EQ(v6, 3);
  EXPECT_TRUE(l.Take(Source("2001:db8:1:3::1"), t));  // the next /64 is another source
}

TEST(SourceRateLimiterTest, ZeroRateIsUnlimited) {
  SourceRateLimiter l(0, 0);
  for (int i = 0; i < 10000; i++) ASSERT_TRUE(l.Take(Source("10.0.0.1"), 1));
}

TEST_F(ResponderTest, PerSourceLimitDropsTheExcessOverUdp) {
  responder_->Stop();
  thread_.join();
  ResponderOptions o;
  o.rate_per_source = 0.01;  // a burst of 5, then nothing for this test's second: the rest are lost
  o.burst_per_source = 5;
  StartWith(o);
  ProbeOptions po;
  po.count = 20;
  po.warmup = 0;
  po.interval = Micros(0);
  po.timeout = std::chrono::milliseconds(50);
  TargetResult r = ProbeTarget(target_, po);
  EXPECT_EQ(r.rtt.sent, 20u);
  EXPECT_EQ(r.rtt.received, 4u);  // the hello took the first token
  EXPECT_GE(responder_->counters().rate_limited.load(), 16u);
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
