#include <gtest/gtest.h>

#include <set>

#include "mail/relay_probe.h"

namespace cloudkeep::mail {
namespace {

TEST(RelayBattery, HasNmapSixteenPlusThree) {
  RelayOptions o;
  auto b = RelayBattery("mx.example.com", "192.0.2.25", o);
  ASSERT_EQ(b.size(), 19u);
  EXPECT_EQ(b[0].mail_from, "");
  EXPECT_EQ(b[0].rcpt_to, "relaytest@example.net");
  EXPECT_EQ(b[2].mail_from, "antispam@mx.example.com");
  EXPECT_EQ(b[3].mail_from, "antispam@[192.0.2.25]");
  EXPECT_EQ(b[4].rcpt_to, "relaytest%example.net@[192.0.2.25]");
  EXPECT_EQ(b[6].rcpt_to, "\"relaytest@example.net\"");
  EXPECT_EQ(b[11].rcpt_to, "@[192.0.2.25]:relaytest@example.net");
  EXPECT_EQ(b[13].rcpt_to, "example.net!relaytest");
  EXPECT_EQ(b[15].rcpt_to, "example.net!relaytest@mx.example.com");
  EXPECT_EQ(b[16].mail_from, "antispam");
  EXPECT_EQ(b[17].mail_from, "antispam@localhost");
  EXPECT_EQ(b[18].mail_from, "antispam@example.net");
  std::set<std::string> names;
  for (const auto& a : b) names.insert(a.name);
  EXPECT_EQ(names.size(), b.size()) << "every trick has its own name";
}

TEST(RelayBattery, Ipv6LiteralUsesTag) {
  auto b = RelayBattery("", "2001:db8::25", RelayOptions());
  EXPECT_EQ(b[3].mail_from, "antispam@[IPv6:2001:db8::25]");
  // Without a server name the literal stands in for it.
  EXPECT_EQ(b[2].mail_from, "antispam@[2001:db8::25]");
}

TEST(SmtpEndpoint, Parses) {
  auto e = ParseSmtpEndpoint("mx.example.com");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 25);
  EXPECT_EQ(e->address, "");
  e = ParseSmtpEndpoint("127.0.0.1:2525");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 2525);
  EXPECT_EQ(e->address, "127.0.0.1");
  e = ParseSmtpEndpoint("[::1]:26");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 26);
  e = ParseSmtpEndpoint("2001:db8::1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 25);
  EXPECT_EQ(ParseSmtpEndpoint("mx:99999").status().code(), Status::Code::kUsage);
  EXPECT_EQ(ParseSmtpEndpoint("[::1").status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::mail
