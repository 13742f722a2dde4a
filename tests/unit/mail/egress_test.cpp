// mail egress: how one outbound SMTP attempt is classified, against real
// loopback sockets that behave as the outside world does — a silent drop (a
// listener whose accept queue is full: the kernel drops the SYN, as a
// provider's port-25 block does), a refusal (nothing listens: RST), a reset
// after connect, a transparent proxy's own banner, a rejecting greeting, a
// silent server, and a genuine greeting — and how the verdict becomes the
// findings and advice of `mail check`'s first group.
#include "mail/egress.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mail/check.h"
#include "mail/check_render.h"

namespace cloudkeep::mail {
namespace {

enum class Behaviour { kGreet, kForeignBanner, kReject, kSilent, kCloseAtOnce, kResetAtOnce };

int Listener(int backlog, uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd, backlog), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A loopback "mail server" that treats every connection the same way and
// records every command it is sent.
class FakeServer {
 public:
  explicit FakeServer(Behaviour b) : b_(b) {
    fd_ = Listener(8, &port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  // What the server was sent, once the connection is over (the client
  // does not wait for the 221 to its QUIT, so the server may still be reading).
  std::vector<std::string> commands() {
    for (int i = 0; i < 200 && !done_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard<std::mutex> l(mu_);
    return commands_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Handle(c);
      close(c);
      done_ = true;
    }
  }
  void Say(int c, const std::string& s) { send(c, s.data(), s.size(), MSG_NOSIGNAL); }
  void Handle(int c) {
    switch (b_) {
      case Behaviour::kCloseAtOnce:
        return;
      case Behaviour::kResetAtOnce: {
        linger l{1, 0};  // close() sends RST
        setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        return;
      }
      case Behaviour::kSilent:
        break;
      case Behaviour::kReject:
        Say(c, "554 mx.target.test no service for you\r\n");
        break;
      case Behaviour::kGreet:
        Say(c, "220 mx.target.test ESMTP\r\n");
        break;
      case Behaviour::kForeignBanner:
        Say(c, "220 proxy.intercept.example ESMTP ready\r\n");
        break;
    }
    std::string buf;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char tmp[512];
      ssize_t n = recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return;
      buf.append(tmp, static_cast<size_t>(n));
      for (size_t eol; (eol = buf.find("\r\n")) != std::string::npos;) {
        std::string cmd = buf.substr(0, eol);
        buf.erase(0, eol + 2);
        {
          std::lock_guard<std::mutex> l(mu_);
          commands_.push_back(cmd);
        }
        const std::string name =
            b_ == Behaviour::kForeignBanner ? "proxy.intercept.example" : "mx.target.test";
        if (cmd.rfind("EHLO", 0) == 0) {
          Say(c, "250-" + name + "\r\n250 PIPELINING\r\n");
        } else if (cmd == "QUIT") {
          Say(c, "221 bye\r\n");
          return;
        } else {
          Say(c, "502 unexpected\r\n");
        }
      }
    }
  }

  Behaviour b_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false}, done_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> commands_;
};

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    z_.Add("mx.target.test", RrType::kA, "127.0.0.1");
    z_.Add("target.test", RrType::kMX, "10 mx.target.test");
  }
  EgressReport Probe(const std::string& target) {
    auto t = ParseEgressTarget(target);
    EXPECT_TRUE(t.ok()) << t.status().message();
    EgressOptions o;
    o.timeout_ms = 400;
    return ProbeEgress(z_, {*t}, o);
  }
  static std::string Target(uint16_t port) { return "mx.target.test:" + std::to_string(port); }
  StaticResolver z_;
};

TEST_F(EgressTest, GenuineGreetingIsOpenAndOnlyEhloAndQuitAreSent) {
  FakeServer s(Behaviour::kGreet);
  EgressReport r = Probe(Target(s.port()));
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kOpen) << r.probes[0].detail;
  EXPECT_EQ(r.probes[0].banner, "220 mx.target.test ESMTP");
  // A HOST:PORT target that is not 587/465 is a direct SMTP session, as 25.
  EXPECT_EQ(r.port25, EgressVerdict::kOpen);
  EXPECT_EQ(r.relay, EgressVerdict::kNotTested);
  EXPECT_EQ(s.commands(),
            (std::vector<std::string>{"EHLO egress-check.cloudkeep.invalid", "QUIT"}));
}

TEST_F(EgressTest, ForeignBannerIsAProxy) {
  FakeServer s(Behaviour::kForeignBanner);
  EgressReport r = Probe(Target(s.port()));
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kProxy);
  EXPECT_NE(r.probes[0].detail.find("names proxy.intercept.example, not mx.target.test"),
            std::string::npos)
      << r.probes[0].detail;
  for (const auto& c : s.commands()) {
    EXPECT_EQ(c.find("MAIL"), std::string::npos) << c;
    EXPECT_EQ(c.find("DATA"), std::string::npos) << c;
  }
}

TEST_F(EgressTest, AnAddressTargetIsNeverCalledAProxy) {
  FakeServer s(Behaviour::kForeignBanner);
  EgressReport r = Probe("127.0.0.1:" + std::to_string(s.port()));
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kOpen);
}

TEST_F(EgressTest, NothingListeningIsARefusal) {
  uint16_t port = 0;
  int fd = Listener(1, &port);
  close(fd);  // the port is free again: a connect gets RST
  EgressReport r = Probe(Target(port));
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kRefused) << r.probes[0].detail;
}

TEST_F(EgressTest, FullAcceptQueueIsASilentDrop) {
  // backlog 0 holds one finished handshake; with it taken the kernel drops
  // further SYNs without an answer, which is what a provider's block looks like.
  uint16_t port = 0;
  int fd = Listener(0, &port);
  int filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EgressReport r = Probe(Target(port));
  close(filler);
  close(fd);
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kDropped) << r.probes[0].detail;
  EXPECT_NE(r.probes[0].detail.find("silently dropped"), std::string::npos);
  EXPECT_GE(r.probes[0].elapsed_ms, 350);
}

TEST_F(EgressTest, AcceptedThenResetOrClosedIsAReset) {
  for (Behaviour b : {Behaviour::kResetAtOnce, Behaviour::kCloseAtOnce}) {
    FakeServer s(b);
    EgressReport r = Probe(Target(s.port()));
    ASSERT_EQ(r.probes.size(), 1u);
    EXPECT_EQ(r.probes[0].result, EgressResult::kReset) << r.probes[0].detail;
  }
}

TEST_F(EgressTest, NoGreetingIsSilentAndA554IsRejected) {
  {
    FakeServer s(Behaviour::kSilent);
    EgressReport r = Probe(Target(s.port()));
    ASSERT_EQ(r.probes.size(), 1u);
    EXPECT_EQ(r.probes[0].result, EgressResult::kSilent);
  }
  FakeServer s(Behaviour::kReject);
  EgressReport r = Probe(Target(s.port()));
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kRejected);
  EXPECT_EQ(r.probes[0].banner, "554 mx.target.test no service for you");
}

TEST_F(EgressTest, NoAddressIsNotRunAndNeverOpen) {
  EgressReport r = Probe("nowhere.test:25");
  ASSERT_EQ(r.probes.size(), 1u);
  EXPECT_EQ(r.probes[0].result, EgressResult::kNotRun);
  EXPECT_EQ(r.port25, EgressVerdict::kUnknown);
}

// --- the verdict as mail check's first group -------------------------------

EgressProbe P(uint16_t port, EgressResult result, const std::string& host = "mx.example.net") {
  EgressProbe p;
  p.target = host;
  p.host = host;
  p.address = "192.0.2.25";
  p.port = port;
  p.result = result;
  return p;
}

EgressReport Report(std::vector<EgressProbe> probes, EgressVerdict port25, EgressVerdict relay) {
  EgressReport r;
  r.probes = std::move(probes);
  r.port25 = port25;
  r.relay = relay;
  return r;
}

TEST(EgressFindings, OpenPortIsOnePass) {
  auto f = EgressFindings(
      Report({P(25, EgressResult::kOpen)}, EgressVerdict::kOpen, EgressVerdict::kNotTested), {});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].group, CheckGroup::kEgress);
  EXPECT_EQ(f[0].level, CheckLevel::kPass);
  EXPECT_NE(f[0].message.find("mx.example.net greeted"), std::string::npos) << f[0].message;
  EXPECT_TRUE(f[0].fix.empty());
}

TEST(EgressFindings, DroppedIsAFailWithTheSmarthostAdviceAndTheRelayPorts) {
  auto r = Report({P(25, EgressResult::kDropped), P(587, EgressResult::kOpen)},
                  EgressVerdict::kBlocked, EgressVerdict::kOpen);
  auto f = EgressFindings(r, {});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].level, CheckLevel::kFail);
  EXPECT_NE(f[0].message.find("blocked"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].message.find("mx.example.net dropped"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].fix.find("smarthost on 587"), std::string::npos) << f[0].fix;
  EXPECT_EQ(f[1].subject, "587/465");
  EXPECT_EQ(f[1].level, CheckLevel::kPass);
}

TEST(EgressFindings, OnAwsTheAdviceIsTheRequestToLiftTheLimitation) {
  CloudInfo aws{"aws", "eu-west-1", "i-0123456789abcdef0"};
  auto f = EgressFindings(
      Report({P(25, EgressResult::kDropped)}, EgressVerdict::kBlocked, EgressVerdict::kNotTested),
      aws);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].fix.find("Request to remove email sending limitations"), std::string::npos)
      << f[0].fix;
  EXPECT_NE(f[0].fix.find("email-smtp.eu-west-1.amazonaws.com:587"), std::string::npos);
  EXPECT_EQ(f[0].fix.find("smarthost on 587"), std::string::npos);
}

TEST(EgressFindings, InterceptedIsAFailNotAPass) {
  auto f = EgressFindings(
      Report({P(25, EgressResult::kProxy)}, EgressVerdict::kBlocked, EgressVerdict::kBlocked), {});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].level, CheckLevel::kFail);
  EXPECT_NE(f[0].message.find("intercepted"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].fix.find("transparent proxy"), std::string::npos);
  EXPECT_EQ(f[1].level, CheckLevel::kFail);
}

TEST(EgressFindings, CouldNotRunIsUnknownNeverPass) {
  EgressProbe p = P(25, EgressResult::kNotRun);
  p.detail = "MX lookup of gmail.com failed: timeout";
  auto f = EgressFindings(Report({p}, EgressVerdict::kUnknown, EgressVerdict::kNotTested), {});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].level, CheckLevel::kUnknown);
  EXPECT_NE(f[0].message.find("MX lookup of gmail.com failed"), std::string::npos);
  auto none = EgressFindings(Report({}, EgressVerdict::kNotTested, EgressVerdict::kNotTested), {});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].level, CheckLevel::kUnknown);
}

// In mail check, 587/465 are asked only when port 25 fails, after every
// target's port 25; `mail egress` tries 25, 587, 465 target by target.
TEST_F(EgressTest, RelayPortsOnlyWhenPort25Fails) {
  auto a = ParseEgressTarget("nowhere.test");
  auto b = ParseEgressTarget("elsewhere.test");
  ASSERT_TRUE(a.ok() && b.ok());
  auto ports = [](const EgressReport& r) {
    std::vector<std::pair<std::string, int>> out;
    for (const auto& p : r.probes) out.push_back({p.target, p.port});
    return out;
  };
  EgressOptions o;
  o.timeout_ms = 400;
  EgressReport plain = ProbeEgress(z_, {*a, *b}, o);
  using V = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(ports(plain), (V{{"nowhere.test", 25},
                             {"nowhere.test", 587},
                             {"nowhere.test", 465},
                             {"elsewhere.test", 25},
                             {"elsewhere.test", 587},
                             {"elsewhere.test", 465}}));
  o.relay_ports_when_needed = true;
  EgressReport check = ProbeEgress(z_, {*a, *b}, o);
  EXPECT_EQ(ports(check), (V{{"nowhere.test", 25},
                             {"elsewhere.test", 25},
                             {"nowhere.test", 587},
                             {"nowhere.test", 465},
                             {"elsewhere.test", 587},
                             {"elsewhere.test", 465}}));
  EXPECT_EQ(check.port25, EgressVerdict::kUnknown);
  EXPECT_EQ(check.relay, EgressVerdict::kUnknown);
}

TEST(EgressCheckGroup, FirstAfterTheDeadlineInTextAndJson) {
  MailCheckReport r;
  r.domain = "example.test";
  r.findings.push_back({CheckGroup::kEgress, "port 25", CheckLevel::kFail,
                        "outbound port 25 is blocked from this host (mx.example.net dropped)",
                        "relay through a smarthost on 587"});
  r.findings.push_back(
      {CheckGroup::kMx, "example.test", CheckLevel::kPass, "MX: mx.example.test", ""});
  r.egress =
      Report({P(25, EgressResult::kDropped)}, EgressVerdict::kBlocked, EgressVerdict::kNotTested);
  std::string text = MailCheckToText(r);
  auto egress = text.find("Before the rules: outbound port 25 from this host");
  auto mx = text.find("Mail hosts");
  ASSERT_NE(egress, std::string::npos) << text;
  EXPECT_LT(egress, mx) << text;
  EXPECT_NE(text.find("fix: relay through a smarthost on 587"), std::string::npos) << text;
  Json j = MailCheckToJson(r);
  EXPECT_EQ(j["findings"][0]["group"], "egress");
  EXPECT_EQ(j["egress"]["port25"], "blocked");
  EXPECT_EQ(j["egress"]["probes"][0]["result"], "dropped");
  EXPECT_EQ(j["failed"], true);
  MailCheckReport none;
  none.domain = "example.test";
  EXPECT_TRUE(MailCheckToJson(none)["egress"].is_null());  // not run is not a pass
}

}  // namespace
}  // namespace cloudkeep::mail
