// Alerts: which runs raise one, the retry schedule, the queue's delivery
// and drain, a real webhook receiver (cpp-httplib on loopback) and a
// sendmail stand-in that keeps what it was given; the [[alert]] config.
#include "agent/alerts.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/config.h"

namespace cloudkeep::agent {
namespace {

using std::chrono::milliseconds;

Alert Sample(const std::string& event = "failure") {
  Alert a;
  a.event = event;
  a.job = "web-hourly";
  a.kind = "snapshot";
  a.outcome = event == "failure" ? "timeout" : "success";
  a.error = event == "failure" ? "killed at its timeout of 1h" : "";
  a.at = TimePoint(std::chrono::seconds(1796000000));
  a.host = "db1";
  return a;
}

TEST(AlertEvent, OnlyChangesOfStateRaiseOne) {
  EXPECT_EQ(AlertEventFor(std::nullopt, "failure"), "failure");
  EXPECT_EQ(AlertEventFor(std::nullopt, "success"), std::nullopt);
  EXPECT_EQ(AlertEventFor("success", "timeout"), "failure");
  EXPECT_EQ(AlertEventFor("failure", "failure"), std::nullopt);
  EXPECT_EQ(AlertEventFor("timeout", "failure"), std::nullopt);
  EXPECT_EQ(AlertEventFor("failure", "success"), "recovery");
  EXPECT_EQ(AlertEventFor("timeout", "success"), "recovery");
  EXPECT_EQ(AlertEventFor("success", "success"), std::nullopt);
  EXPECT_EQ(AlertEventFor("failure", "interrupted"), std::nullopt);
}

TEST(AlertRetry, FullJitterUnderACappedDoubling) {
  RetryPolicy p;
  p.first_backoff = Micros(1'000'000);
  p.max_backoff = Micros(10'000'000);
  EXPECT_EQ(RetryDelay(p, 1, 0.0).count(), 0);
  EXPECT_EQ(RetryDelay(p, 1, 0.5).count(), 500'000);
  EXPECT_EQ(RetryDelay(p, 3, 0.5).count(), 2'000'000);  // cap 4 s
  EXPECT_EQ(RetryDelay(p, 5, 0.5).count(), 5'000'000);  // cap 16 s → 10 s
  EXPECT_EQ(RetryDelay(p, 60, 0.999).count(), 9'990'000);
}

TEST(AlertMessage, HeadersStayOnOneLineAndTheBodySaysWhy) {
  Alert a = Sample();
  a.job = "evil\r\nBcc: victim@example.com";
  std::string m = a.EmailMessage("agent@db1", {"ops@example.com", "dba@example.com"});
  std::string head = m.substr(0, m.find("\r\n\r\n"));
  EXPECT_EQ(head.find("\r\nBcc:"), std::string::npos) << head;
  EXPECT_NE(head.find("To: ops@example.com, dba@example.com\r\n"), std::string::npos);
  EXPECT_NE(
      head.find("Subject: [cloudkeep] db1: job evil  Bcc: victim@example.com failed (timeout)"),
      std::string::npos)
      << head;
  EXPECT_NE(head.find("Auto-Submitted: auto-generated"), std::string::npos);
  EXPECT_NE(m.find("Error: killed at its timeout of 1h\r\n"), std::string::npos);
  auto j = nlohmann::json::parse(Sample("recovery").ToJson());
  EXPECT_EQ(j["event"], "recovery");
  EXPECT_EQ(j["job"], "web-hourly");
  EXPECT_EQ(j["host"], "db1");
  EXPECT_EQ(Sample("recovery").Subject(), "[cloudkeep] db1: job web-hourly recovered");
}

TEST(Alerter, RetriesUntilDeliveredAndHonoursOn) {
  AlertTarget hook;
  hook.url = "http://127.0.0.1:1/";
  AlertTarget mail;
  mail.kind = AlertTarget::Kind::kEmail;
  mail.to = {"ops@example.com"};
  mail.on = {"recovery"};
  std::mutex mu;
  std::vector<std::string> calls;
  int hook_failures_left = 2;
  RetryPolicy p;
  p.first_backoff = Micros(1000);
  p.max_backoff = Micros(5000);
  Alerter alerter(
      {hook, mail},
      [&](const AlertTarget& t, const Alert& a) {
        std::lock_guard<std::mutex> l(mu);
        calls.push_back(t.Describe() + " " + a.event);
        if (t.kind == AlertTarget::Kind::kWebhook && hook_failures_left > 0) {
          --hook_failures_left;
          return Status::Failure("answered HTTP 503");
        }
        return Status::Ok();
      },
      p);
  alerter.Post(Sample("failure"));   // the webhook only
  alerter.Post(Sample("recovery"));  // both
  alerter.Drain(Micros(5'000'000));
  auto st = alerter.stats();
  EXPECT_EQ(st.delivered, 3u);
  EXPECT_EQ(st.failed_attempts, 2u);
  EXPECT_EQ(st.dropped, 0u);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "email ops@example.com recovery"), 1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "email ops@example.com failure"), 0);
  EXPECT_EQ(calls.size(), 5u);
}

TEST(Alerter, GivesUpAfterMaxAttemptsAndDrainDoesNotWaitForLateRetries) {
  AlertTarget hook;
  hook.url = "http://127.0.0.1:1/";
  std::atomic<int> attempts{0};
  RetryPolicy p;
  p.max_attempts = 3;
  p.first_backoff = Micros(1000);
  p.max_backoff = Micros(1000);
  {
    Alerter a(
        {hook},
        [&](const AlertTarget&, const Alert&) {
          ++attempts;
          return Status::Failure("refused");
        },
        p);
    a.Post(Sample());
    a.Drain(Micros(5'000'000));
    EXPECT_EQ(attempts, 3);
    EXPECT_EQ(a.stats().dropped, 1u);
  }
  // A retry due an hour from now is not waited for.
  p.max_attempts = 5;
  p.first_backoff = Micros(3'600'000'000);
  p.max_backoff = Micros(3'600'000'000);
  attempts = 0;
  Alerter a(
      {hook},
      [&](const AlertTarget&, const Alert&) {
        ++attempts;
        return Status::Failure("refused");
      },
      p);
  a.Post(Sample());
  auto t0 = std::chrono::steady_clock::now();
  while (attempts == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(milliseconds(1));
  a.Drain(Micros(60'000'000));
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(a.stats().dropped, 1u);
}

TEST(AlertSenders, WebhookPostsJsonWithTheBearerToken) {
  httplib::Server srv;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> got;  // authorization, body
  int status = 500;
  srv.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> l(mu);
    got.emplace_back(req.get_header_value("Authorization"), req.body);
    res.status = status;
  });
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { srv.listen_after_bind(); });
  std::string token = ::testing::TempDir() + "alerts_test_token";
  std::ofstream(token) << "s3cret\n";
  AlertTarget hook;
  hook.url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  hook.bearer_token_file = token;
  Status s = SendWebhook(hook, Sample(), Micros(5'000'000));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("answered HTTP 500"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("s3cret"), std::string::npos);
  {
    std::lock_guard<std::mutex> l(mu);
    status = 204;
  }
  EXPECT_TRUE(SendWebhook(hook, Sample(), Micros(5'000'000)).ok());
  srv.stop();
  t.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].first, "Bearer s3cret");
  auto j = nlohmann::json::parse(got[1].second);
  EXPECT_EQ(j["event"], "failure");
  EXPECT_EQ(j["outcome"], "timeout");
  // Nothing listening: a failure naming the target, not a hang.
  hook.url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  hook.bearer_token_file.clear();
  s = SendWebhook(hook, Sample(), Micros(2'000'000));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("webhook http://127.0.0.1:"), std::string::npos) << s.message();
}

TEST(AlertSenders, EmailGoesToSendmailsStandardInputWithTheRecipients) {
  std::string dir = ::testing::TempDir() + "alerts_test_sendmail";
  ::mkdir(dir.c_str(), 0700);
  std::string fake = dir + "/sendmail";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\nprintf '%s\\n' \"$@\" >\"" << dir << "/args\"\ncat >\"" << dir
      << "/message\"\n[ \"$5\" = fail@example.com ] && { echo 'no such user' >&2; exit 67; }\n"
         "exit 0\n";
  }
  ::chmod(fake.c_str(), 0755);
  AlertTarget mail;
  mail.kind = AlertTarget::Kind::kEmail;
  mail.sendmail = fake;
  mail.to = {"ops@example.com", "dba@example.com"};
  ASSERT_TRUE(SendEmail(mail, Sample(), Micros(10'000'000)).ok());
  std::stringstream args, msg;
  args << std::ifstream(dir + "/args").rdbuf();
  msg << std::ifstream(dir + "/message").rdbuf();
  EXPECT_EQ(args.str(), "-i\n-f\ncloudkeep-agent@db1\n--\nops@example.com\ndba@example.com\n");
  EXPECT_NE(msg.str().find("Subject: [cloudkeep] db1: job web-hourly failed (timeout)\r\n"),
            std::string::npos)
      << msg.str();
  mail.to = {"fail@example.com"};
  Status s = SendEmail(mail, Sample(), Micros(10'000'000));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no such user"), std::string::npos) << s.message();
}

TEST(AlertConfig, TablesAreCheckedOneLineEach) {
  std::string path = ::testing::TempDir() + "alerts_test.toml";
  std::ofstream(path) << R"([agent]
listen = "127.0.0.1:0"
[[alert]]
webhook = "https://hooks.example.com/x"
on = ["failure"]
[[alert]]
email = ["ops@example.com", "dba@example.com"]
from = "agent@db1.example.com"
[[alert]]
webhook = "ftp://x"
[[alert]]
email = ["--help"]
[[alert]]
webhook = "http://a/"
email = "b@c"
[[alert]]
webhook = "https://a/"
on = ["sometimes"]
colour = "red"
)";
  auto l = LoadConfig(path, [](JobConfig&, std::vector<std::pair<int, std::string>>*) {});
  std::string all;
  for (const auto& e : l.errors) all += e + "\n";
  EXPECT_EQ(l.errors.size(), 5u) << all;
  EXPECT_NE(
      all.find(":10: [[alert]] at line 9: webhook = \"ftp://x\": needs an http:// or https:// URL"),
      std::string::npos)
      << all;
  EXPECT_NE(all.find("email = \"--help\": each element needs one address"), std::string::npos)
      << all;
  EXPECT_NE(all.find("needs exactly one of webhook"), std::string::npos) << all;
  EXPECT_NE(all.find("on = […]: needs a list of \"failure\" and \"recovery\""), std::string::npos)
      << all;
  EXPECT_NE(all.find("unknown key 'colour'"), std::string::npos) << all;

  std::ofstream(path) << R"([[alert]]
webhook = "https://hooks.example.com/x"
on = ["failure"]
[[alert]]
email = ["ops@example.com", "dba@example.com"]
from = "agent@db1.example.com"
)";
  l = LoadConfig(path, [](JobConfig&, std::vector<std::pair<int, std::string>>*) {});
  ASSERT_TRUE(l.config) << (l.errors.empty() ? "" : l.errors[0]);
  ASSERT_EQ(l.config->alerts.size(), 2u);
  EXPECT_EQ(l.config->alerts[0].on, std::set<std::string>{"failure"});
  EXPECT_EQ(l.config->alerts[1].kind, AlertTarget::Kind::kEmail);
  EXPECT_EQ(l.config->alerts[1].to.size(), 2u);
  EXPECT_EQ(l.config->alerts[1].Describe(), "email ops@example.com, dba@example.com");
}

}  // namespace
}  // namespace cloudkeep::agent
