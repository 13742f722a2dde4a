// --deadline: when the overall deadline passes, the relay probe stops at
// once and reports the forms it did not test as untested — never "not an
// open relay" — while an open relay found before then is still one. The
// SMTP server here answers at once, except that it holds one chosen reply
// until the deadline has passed: the deadline, not a per-reply timeout, is
// what ends the wait. (The audit's side is in could_not_check_test.cpp.)
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "mail/relay_probe.h"

namespace cloudkeep::mail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A loopback SMTP server: 220, EHLO without STARTTLS, MAIL/RSET 250, RCPT
// 250 when it relays else 554, QUIT 221. The `stall_at`-th MAIL (from 1) is
// answered only after `deadline` has passed, by which time the client has
// given up on it. With `stall_tls` it offers STARTTLS, answers 220 and then
// says nothing until the deadline: the handshake never completes.
class StallingSmtp {
 public:
  StallingSmtp(bool relays, int stall_at, Deadline deadline, bool stall_tls = false)
      : relays_(relays), stall_at_(stall_at), deadline_(deadline), stall_tls_(stall_tls) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 8);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~StallingSmtp() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      Session(c);
      close(c);
    }
  }
  void Send(int c, const char* text) { (void)!send(c, text, strlen(text), MSG_NOSIGNAL); }
  void Session(int c) {
    Send(c, "220 mx.stall.test ESMTP\r\n");
    std::string buf;
    char chunk[512];
    while (!stop_) {
      ssize_t n = recv(c, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
      for (size_t eol; (eol = buf.find("\r\n")) != std::string::npos;) {
        std::string verb = buf.substr(0, std::min(buf.find(' '), eol));
        buf.erase(0, eol + 2);
        if (verb == "EHLO") {
          Send(c, stall_tls_ ? "250-mx.stall.test\r\n250 STARTTLS\r\n"
                             : "250-mx.stall.test\r\n250 8BITMIME\r\n");
        } else if (verb == "STARTTLS" && stall_tls_) {
          Send(c, "220 2.0.0 Ready to start TLS\r\n");
          StallUntilTheDeadline();
          return;
        } else if (verb == "MAIL" && ++mails_ == stall_at_) {
          StallUntilTheDeadline();
          return;  // answered never: the client gave up at the deadline
        } else if (verb == "MAIL" || verb == "RSET") {
          Send(c, "250 2.0.0 Ok\r\n");
        } else if (verb == "RCPT") {
          Send(c, relays_ ? "250 2.1.5 Ok\r\n" : "554 5.7.1 Relay access denied\r\n");
        } else if (verb == "QUIT") {
          Send(c, "221 2.0.0 Bye\r\n");
          return;
        } else {
          Send(c, "502 5.5.2 Error\r\n");
        }
      }
    }
  }

  void StallUntilTheDeadline() {
    while (!deadline_.expired() && !stop_) std::this_thread::sleep_for(milliseconds(5));
  }

  bool relays_;
  int stall_at_;
  Deadline deadline_;
  bool stall_tls_;
  int fd_ = -1;
  uint16_t port_ = 0;
  int mails_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

RelayOptions Options(Deadline deadline) {
  RelayOptions o;
  o.starttls = false;
  o.smtp.timeout_ms = 60'000;  // only the deadline can end a wait
  o.smtp.deadline = deadline;
  return o;
}

// Two seconds: ample for the few loopback round trips before the stall.
Deadline Soon() {
  return Deadline::After(seconds(2));
}

// The probe of a server that holds its `stall_at`-th MAIL past the deadline.
struct Stalled {
  Result<RelayReport> report;
  int connections;
};
Stalled ProbeStalling(bool relays, int stall_at) {
  Deadline d = Soon();
  StallingSmtp server(relays, stall_at, d);
  SmtpEndpoint ep{"mx.stall.test", "127.0.0.1", server.port()};
  auto report = ProbeRelay(ep, Options(d));
  return {std::move(report), server.connections()};
}

TEST(RelayDeadline, StopsAndReportsTheRestUntested) {
  auto [r, connections] = ProbeStalling(/*relays=*/false, /*stall_at=*/3);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->deadline_reached);
  EXPECT_EQ(r->tested(), 2);
  EXPECT_EQ(r->attempts.size(), 19u);
  EXPECT_FALSE(r->open_relay());
  EXPECT_FALSE(r->complete());
  EXPECT_EQ(r->error, "the deadline of 2s was reached");
  for (size_t i = 2; i < r->attempts.size(); ++i) EXPECT_FALSE(r->attempts[i].tested()) << i;
  // No reconnect and no retry once the deadline has passed.
  EXPECT_EQ(r->sessions, 1);
  EXPECT_EQ(connections, 1);
  Json j = RelayReportToJson(*r);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["deadline_reached"], true);
  EXPECT_EQ(j["verdict"], "unknown");
  EXPECT_EQ(j["tested"], 2);
}

TEST(RelayDeadline, OpenRelayFoundBeforeTheDeadlineIsStillOpen) {
  auto [r, connections] = ProbeStalling(/*relays=*/true, /*stall_at=*/2);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->deadline_reached);
  EXPECT_TRUE(r->open_relay());
  EXPECT_EQ(r->accepted(), 1);
  EXPECT_FALSE(r->complete());
  EXPECT_EQ(RelayReportToJson(*r)["verdict"], "open relay");
}

TEST(RelayDeadline, PassedBeforeTheStartTestsNothingAndConnectsNowhere) {
  Deadline d = Deadline::After(Micros(0));
  StallingSmtp server(false, 0, d);
  SmtpEndpoint ep{"mx.stall.test", "127.0.0.1", server.port()};
  RelayOptions o = Options(d);
  auto r = ProbeRelay(ep, o);
  ASSERT_FALSE(r.ok());
  RelayReport untested = NothingTested(ep, o, r.status().message());
  EXPECT_TRUE(untested.deadline_reached);
  EXPECT_EQ(untested.tested(), 0);
  EXPECT_EQ(untested.attempts.size(), 19u);
  EXPECT_FALSE(untested.complete());
  EXPECT_EQ(server.connections(), 0);
}

TEST(RelayDeadline, CutsAStalledTlsHandshakeWithoutAPlainTextRetry) {
  Deadline d = Soon();
  StallingSmtp server(false, 0, d, /*stall_tls=*/true);
  SmtpEndpoint ep{"mx.stall.test", "127.0.0.1", server.port()};
  RelayOptions o = Options(d);
  o.starttls = true;
  auto r = ProbeRelay(ep, o);
  // The first session never became usable: nothing tested, and no time for
  // the plain-text fallback session.
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the deadline was reached"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(server.connections(), 1);
  EXPECT_TRUE(NothingTested(ep, o, r.status().message()).deadline_reached);
}

}  // namespace
}  // namespace cloudkeep::mail
