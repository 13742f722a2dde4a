// DMARC record parsing, policy discovery and alignment (RFC 7489).
#include "mail/dmarc.h"

#include <gtest/gtest.h>

namespace cloudkeep::mail {
namespace {

TEST(Dmarc, Parse) {
  DmarcRecord r;
  std::string err;
  ASSERT_TRUE(ParseDmarcRecord(
      "v=DMARC1; p=Reject; sp=none; pct=25; rua=mailto:a@x.example,mailto:b@x.example; adkim=s", &r,
      &err))
      << err;
  EXPECT_EQ(r.policy, "reject");
  EXPECT_EQ(r.subdomain_policy, "none");
  EXPECT_EQ(r.pct, 25);
  EXPECT_EQ(r.rua.size(), 2u);
  EXPECT_EQ(r.adkim, 's');
  EXPECT_EQ(r.aspf, 'r');
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; p=bogus", &r, &err));
  EXPECT_FALSE(ParseDmarcRecord("p=reject; v=DMARC1", &r, &err));  // v= must come first
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; p=reject; pct=101", &r, &err));
  // §6.6.3: a bad p= with a rua is p=none.
  ASSERT_TRUE(ParseDmarcRecord("v=DMARC1; p=bogus; rua=mailto:a@x.example", &r, &err));
  EXPECT_EQ(r.policy, "none");
}

TEST(Dmarc, OrganizationalDomainAndAlignment) {
  EXPECT_EQ(OrganizationalDomain("mail.news.example.com"), "example.com");
  EXPECT_EQ(OrganizationalDomain("example.com"), "example.com");
  EXPECT_EQ(OrganizationalDomain("a.b.example.co.uk"),
            "example.co.uk");  // from the PSL when installed
  EXPECT_TRUE(DmarcAligned("bounce.example.com", "example.com", false));
  EXPECT_FALSE(DmarcAligned("bounce.example.com", "example.com", true));
  EXPECT_TRUE(DmarcAligned("Example.COM.", "example.com", true));
  EXPECT_FALSE(DmarcAligned("example.net", "example.com", false));
}

TEST(Dmarc, LookupFallsBackToOrganizationalDomain) {
  StaticResolver z;
  z.Add("_dmarc.example.com", RrType::kTXT, "v=DMARC1; p=reject; sp=quarantine");
  z.Add("_dmarc.example.com", RrType::kTXT, "some other text");
  DmarcLookup l = LookupDmarc(z, "news.example.com");
  ASSERT_TRUE(l.record);
  EXPECT_EQ(l.record_domain, "example.com");
  EXPECT_EQ(l.effective_policy(), "quarantine");
  EXPECT_EQ(LookupDmarc(z, "example.com").effective_policy(), "reject");
  EXPECT_FALSE(LookupDmarc(z, "example.net").record);
  z.SetServFail("_dmarc.example.org");
  EXPECT_TRUE(LookupDmarc(z, "example.org").dns_error);
  DmarcRecord r;
  std::string err;
  ASSERT_TRUE(ParseDmarcRecord("v=DMARC1; p=reject; aspf=s", &r, &err));
  EXPECT_FALSE(EvaluateDmarc(r, "example.com", true, "bounce.example.com", {}).pass());
  EXPECT_TRUE(EvaluateDmarc(r, "example.com", false, "", {"mail.example.com"}).pass());
}

}  // namespace
}  // namespace cloudkeep::mail
