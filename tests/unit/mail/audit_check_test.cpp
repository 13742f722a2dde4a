// mail check over in-process zone data, with SMTP turned off: the rules'
// verdicts and fixes, without servers.
#include <gtest/gtest.h>

#include "mail/check.h"

namespace cloudkeep::mail {
namespace {

constexpr const char* kDkimKey =
    "v=DKIM1; k=rsa; "
    "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsqw1/6ykYIwlE3/PA172/dV+HPGbZsNuoszBqSjGYsF5/"
    "h9WnD4S3rKpLiipgnXSA7tEY4LTtt/6KJbe95I99/"
    "LGIIXiuvyNYUXeVg9WwQlCsgCP0AH4ydDTx6QigwZPTFSGR6TJrMr27r1faJe/"
    "f9G+HK+vCWhnq4VmAKiYWgcDbciUxrOVSqyVTCD8M3NjzSUbPowtKrNnj+Rwyrw9fbYm+s1LBlz48fyxJw2UpFQ/"
    "iCmWUf7ByhQTsZHCNuS3aipmRFTkSfYp9y3QPSsLK3g4rj6eBraZc9lrkNvN9Yf5q2PQcLzDBXvge/"
    "CnTvIEZQIT8YKBUU3cstncrXJyVwIDAQAB";

const CheckFinding* Find(const MailCheckReport& r, CheckGroup group, CheckLevel level) {
  for (const auto& f : r.findings)
    if (f.group == group && f.level == level) return &f;
  return nullptr;
}

class MailCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    z_.Add("good.test", RrType::kMX, "10 mx.good.test");
    z_.Add("good.test", RrType::kTXT, "v=spf1 ip4:127.0.0.10 -all");
    z_.Add("_dmarc.good.test", RrType::kTXT, "v=DMARC1; p=quarantine; rua=mailto:d@good.test");
    z_.Add("s1._domainkey.good.test", RrType::kTXT, kDkimKey);
    z_.Add("mx.good.test", RrType::kA, "127.0.0.10");
    z_.Add("10.0.0.127.in-addr.arpa", RrType::kPTR, "mx.good.test");
    // bad.test: no SPF, no DMARC, a generic PTR, a listed address.
    z_.Add("bad.test", RrType::kMX, "10 mx.bad.test");
    z_.Add("mx.bad.test", RrType::kA, "127.0.0.20");
    z_.Add("20.0.0.127.in-addr.arpa", RrType::kPTR, "host-20.cloud.test");
    z_.Add("host-20.cloud.test", RrType::kA, "127.0.0.20");
    z_.Add("20.0.0.127.bl.test", RrType::kA, "127.0.0.2");
    z_.Add("21.0.0.127.bl.test", RrType::kA, "127.0.0.2");
  }
  MailCheckOptions Options(const std::string& domain) {
    MailCheckOptions o;
    o.domain = domain;
    o.smtp = false;
    o.dkim_selectors = {"s1"};
    o.rbl.zones = {"bl.test"};
    return o;
  }
  StaticResolver z_;
};

TEST_F(MailCheckTest, GoodDomainPasses) {
  auto r = RunMailCheck(z_, Options("good.test"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const auto& f : r->findings)
    EXPECT_NE(f.level, CheckLevel::kFail)
        << CheckGroupName(f.group) << " " << f.subject << ": " << f.message;
  EXPECT_FALSE(r->failed());
  EXPECT_NE(Find(*r, CheckGroup::kRelay, CheckLevel::kSkip), nullptr);
  EXPECT_NE(Find(*r, CheckGroup::kPtr, CheckLevel::kPass), nullptr);
  EXPECT_NE(Find(*r, CheckGroup::kSpf, CheckLevel::kPass), nullptr);
  ASSERT_EQ(r->hosts.size(), 1u);
  EXPECT_EQ(r->hosts[0].addresses, std::vector<std::string>{"127.0.0.10"});
}

TEST_F(MailCheckTest, BadDomainFailsWithFixes) {
  auto o = Options("bad.test");
  o.rbl.block_prefix = 24;
  auto r = RunMailCheck(z_, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->failed());
  const CheckFinding* ptr = Find(*r, CheckGroup::kPtr, CheckLevel::kFail);
  ASSERT_NE(ptr, nullptr);
  EXPECT_NE(ptr->fix.find("20.0.0.127.in-addr.arpa. PTR mx.bad.test."), std::string::npos)
      << ptr->fix;
  const CheckFinding* spf = Find(*r, CheckGroup::kSpf, CheckLevel::kFail);
  ASSERT_NE(spf, nullptr);
  EXPECT_NE(spf->fix.find("v=spf1"), std::string::npos);
  const CheckFinding* dmarc = Find(*r, CheckGroup::kDmarc, CheckLevel::kFail);
  ASSERT_NE(dmarc, nullptr);
  EXPECT_NE(dmarc->fix.find("_dmarc.bad.test. TXT \"v=DMARC1; p=none"), std::string::npos)
      << dmarc->fix;
  const CheckFinding* rbl = Find(*r, CheckGroup::kRbl, CheckLevel::kFail);
  ASSERT_NE(rbl, nullptr);
  EXPECT_NE(rbl->message.find("bl.test"), std::string::npos);
  const CheckFinding* block = Find(*r, CheckGroup::kRbl, CheckLevel::kWarn);
  ASSERT_NE(block, nullptr);
  EXPECT_NE(block->message.find("2 on bl.test"), std::string::npos) << block->message;
  EXPECT_NE(Find(*r, CheckGroup::kBulk, CheckLevel::kFail), nullptr);
}

// On AWS the fix of a rule-3 failure is the command that repairs it, with
// the exact hostname and address; elsewhere the record to ask for.
TEST_F(MailCheckTest, OnAwsThePtrFixIsTheMailPtrSetCommand) {
  auto o = Options("bad.test");
  o.provider = "aws";
  auto r = RunMailCheck(z_, o);
  ASSERT_TRUE(r.ok());
  const CheckFinding* ptr = Find(*r, CheckGroup::kPtr, CheckLevel::kFail);
  ASSERT_NE(ptr, nullptr);
  EXPECT_EQ(ptr->subject, "127.0.0.20");
  EXPECT_NE(ptr->fix.find("cloudkeep --provider aws mail ptr mx.bad.test --set --address "
                          "127.0.0.20"),
            std::string::npos)
      << ptr->fix;
  EXPECT_EQ(ptr->fix.find("ask the owner"), std::string::npos) << ptr->fix;
  // Every PTR failure kind: no PTR, a PTR that does not resolve back.
  StaticResolver z;
  z.Add("nop.test", RrType::kMX, "10 mx.nop.test");
  z.Add("mx.nop.test", RrType::kA, "198.51.100.7");
  z.Add("back.test", RrType::kMX, "10 mx.back.test");
  z.Add("mx.back.test", RrType::kA, "198.51.100.8");
  z.Add("8.100.51.198.in-addr.arpa", RrType::kPTR, "ec2-198-51-100-8.compute.amazonaws.test");
  for (const char* domain : {"nop.test", "back.test"}) {
    auto other = Options(domain);
    other.provider = "aws";
    auto rr = RunMailCheck(z, other);
    ASSERT_TRUE(rr.ok());
    const CheckFinding* f = Find(*rr, CheckGroup::kPtr, CheckLevel::kFail);
    ASSERT_NE(f, nullptr) << domain;
    EXPECT_NE(f->fix.find(std::string("cloudkeep --provider aws mail ptr mx.") + domain +
                          " --set --address " + f->subject),
              std::string::npos)
        << f->fix;
  }
  // Without the AWS provider: the advice as before.
  o.provider = "local";
  auto local = RunMailCheck(z_, o);
  ASSERT_TRUE(local.ok());
  ptr = Find(*local, CheckGroup::kPtr, CheckLevel::kFail);
  ASSERT_NE(ptr, nullptr);
  EXPECT_EQ(ptr->fix.find("cloudkeep"), std::string::npos) << ptr->fix;
  EXPECT_NE(ptr->fix.find("20.0.0.127.in-addr.arpa. PTR mx.bad.test."), std::string::npos);
}

TEST(PtrFix, OnlyAwsAndIpv4GetTheCommand) {
  EXPECT_EQ(PtrFix("aws", "mx.example.com.", "192.0.2.25", "ask"),
            "set it through EC2 (an Elastic IP of this account): cloudkeep --provider aws mail "
            "ptr mx.example.com --set --address 192.0.2.25");
  EXPECT_EQ(PtrFix("aws", "mx.example.com", "2001:db8::25", "ask"), "ask");  // EIPs are IPv4
  EXPECT_EQ(PtrFix("local", "mx.example.com", "192.0.2.25", "ask"), "ask");
  EXPECT_EQ(PtrFix("", "mx.example.com", "192.0.2.25", "ask"), "ask");
}

TEST_F(MailCheckTest, HostAndIpOverride) {
  auto o = Options("good.test");
  o.host = "mx.good.test";
  o.ips = {"127.0.0.20"};
  auto r = RunMailCheck(z_, o);
  ASSERT_TRUE(r.ok());
  // 127.0.0.20's PTR is not mx.good.test, SPF does not allow it, and it is listed.
  EXPECT_NE(Find(*r, CheckGroup::kPtr, CheckLevel::kFail), nullptr);
  EXPECT_NE(Find(*r, CheckGroup::kSpf, CheckLevel::kFail), nullptr);
  EXPECT_NE(Find(*r, CheckGroup::kRbl, CheckLevel::kFail), nullptr);
}

TEST_F(MailCheckTest, BadInput) {
  EXPECT_EQ(RunMailCheck(z_, Options("not a domain")).status().code(), Status::Code::kUsage);
  auto o = Options("good.test");
  o.host = "mx.good.test";
  o.ips = {"300.1.1.1"};
  EXPECT_EQ(RunMailCheck(z_, o).status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::mail
