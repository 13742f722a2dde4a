#include <gtest/gtest.h>

#include "mail/rbl.h"

namespace cloudkeep::mail {
namespace {

TEST(RblDecode, SpamhausCodes) {
  std::string m;
  EXPECT_EQ(DecodeDnsblAnswer("zen.spamhaus.org", "127.0.0.2", &m), DnsblVerdict::kListed);
  EXPECT_NE(m.find("SBL"), std::string::npos);
  EXPECT_EQ(DecodeDnsblAnswer("zen.spamhaus.org", "127.0.0.4", &m), DnsblVerdict::kListed);
  EXPECT_NE(m.find("XBL"), std::string::npos);
  EXPECT_EQ(DecodeDnsblAnswer("zen.spamhaus.org", "127.0.0.9", &m), DnsblVerdict::kListed);
  EXPECT_NE(m.find("DROP"), std::string::npos);
  EXPECT_EQ(DecodeDnsblAnswer("zen.spamhaus.org", "127.0.0.11", &m), DnsblVerdict::kListed);
  EXPECT_NE(m.find("PBL"), std::string::npos);
}

TEST(RblDecode, RefusalsAreNeverListings) {
  std::string m;
  EXPECT_EQ(DecodeDnsblAnswer("zen.spamhaus.org", "127.255.255.254", &m), DnsblVerdict::kUnusable);
  EXPECT_NE(m.find("public"), std::string::npos);
  EXPECT_EQ(DecodeDnsblAnswer("bl.test", "127.255.255.255", &m), DnsblVerdict::kUnusable);
  EXPECT_EQ(DecodeDnsblAnswer("bl.test", "127.0.0.1", &m), DnsblVerdict::kUnusable);
  EXPECT_EQ(DecodeDnsblAnswer("bl.test", "198.51.100.7", &m), DnsblVerdict::kMeaningless);
  EXPECT_EQ(DecodeDnsblAnswer("bl.test", "127.0.0.5", &m), DnsblVerdict::kListed);
  EXPECT_EQ(m, "listed (code 127.0.0.5)");
}

TEST(RblBlock, Ipv4Slash24) {
  std::string cidr;
  auto b = BlockAddresses("192.0.2.77", 24, &cidr);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 256u);
  EXPECT_EQ(b->front(), "192.0.2.0");
  EXPECT_EQ(b->back(), "192.0.2.255");
  EXPECT_EQ(cidr, "192.0.2.0/24");
  EXPECT_EQ(BlockAddresses("192.0.2.77", 8, nullptr).status().code(), Status::Code::kUsage);
}

TEST(RblBlock, Ipv6Slash120) {
  std::string cidr;
  auto b = BlockAddresses("2001:db8::1:2a7", 120, &cidr);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 256u);
  EXPECT_EQ(b->front(), "2001:db8::1:200");
  EXPECT_EQ(cidr, "2001:db8::1:200/120");
}

class RblCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    r_.Add("2.2.0.192.bl.test", RrType::kA, "127.0.0.2");
    r_.Add("2.2.0.192.bl.test", RrType::kTXT, "spam source, see https://bl.test/192.0.2.2");
    r_.Add("3.2.0.192.bl.test", RrType::kA, "127.0.0.2");
    r_.Add("9.2.0.192.refuse.test", RrType::kA, "127.255.255.254");
    r_.SetServFail("9.2.0.192.broken.test");
  }
  StaticResolver r_;
};

TEST_F(RblCheck, ListedAddress) {
  RblOptions o;
  o.zones = {"bl.test", "other.test"};
  auto rep = CheckRbl(r_, "192.0.2.2", o);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->zones.size(), 2u);
  EXPECT_TRUE(rep->zones[0].listed);
  EXPECT_EQ(rep->zones[0].query, "2.2.0.192.bl.test");
  EXPECT_EQ(rep->zones[0].txt, "spam source, see https://bl.test/192.0.2.2");
  EXPECT_FALSE(rep->zones[1].listed);
  EXPECT_TRUE(rep->listed());
}

TEST_F(RblCheck, CleanAddressDirtyBlock) {
  RblOptions o;
  o.zones = {"bl.test."};
  o.block_prefix = 24;
  auto rep = CheckRbl(r_, "192.0.2.200", o);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->listed());
  EXPECT_EQ(rep->zones[0].block_listed, 2);
  EXPECT_EQ(rep->block, "192.0.2.0/24");
  EXPECT_EQ(rep->queries, 256u);
}

TEST_F(RblCheck, RefusalAndServfail) {
  RblOptions o;
  o.zones = {"refuse.test", "broken.test"};
  auto rep = CheckRbl(r_, "192.0.2.9", o);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->listed());
  EXPECT_TRUE(rep->zones[0].unusable);
  EXPECT_FALSE(rep->zones[0].listed);
  EXPECT_EQ(rep->zones[1].status, DnsStatus::kServFail);
  EXPECT_FALSE(rep->zones[1].error.empty());
}

TEST_F(RblCheck, Ipv6NibbleNameAndBuiltinSkip) {
  r_.Add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", RrType::kA,
         "127.0.0.2");
  RblOptions o;
  o.zones = {"bl.test"};
  auto rep = CheckRbl(r_, "2001:DB8::1", o);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->zones[0].listed);
  EXPECT_EQ(rep->address, "2001:db8::1");
  // Built-in lists that only serve IPv4 are not asked about IPv6.
  auto builtin = CheckRbl(r_, "2001:db8::1", RblOptions());
  ASSERT_TRUE(builtin.ok());
  for (const auto& z : builtin->zones) EXPECT_EQ(z.skipped, !FindDnsbl(z.zone)->ipv6) << z.zone;
}

TEST_F(RblCheck, BadInput) {
  RblOptions o;
  o.zones = {"bad zone"};
  EXPECT_EQ(CheckRbl(r_, "192.0.2.1", o).status().code(), Status::Code::kUsage);
  EXPECT_EQ(CheckRbl(r_, "not-an-ip", RblOptions()).status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::mail
