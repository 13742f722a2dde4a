#include <gtest/gtest.h>

#include "mail/ptr_check.h"

namespace cloudkeep::mail {
namespace {

TEST(Reverse, Names) {
  EXPECT_EQ(*ReverseName("192.0.2.1"), "1.2.0.192.in-addr.arpa");
  EXPECT_EQ(*ReverseName("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(ReverseName("mx.example.com").status().code(), Status::Code::kUsage);
  EXPECT_TRUE(SameAddress("2001:db8::1", "2001:DB8:0:0::1"));
  EXPECT_FALSE(SameAddress("192.0.2.1", "192.0.2.10"));
  EXPECT_TRUE(SameHostname("MX.Example.com.", "mx.example.com"));
}

TEST(Ptr, GoodSetup) {
  StaticResolver r;
  r.Add("mx.example.com", RrType::kA, "192.0.2.25");
  r.Add("mx.example.com", RrType::kAAAA, "2001:db8::25");
  r.Add("25.2.0.192.in-addr.arpa", RrType::kPTR, "mx.example.com.");
  r.Add(*ReverseName("2001:db8::25"), RrType::kPTR, "mx.example.com");
  auto rep = CheckPtr(r, "mx.example.com", {});
  ASSERT_EQ(rep.addresses.size(), 2u);
  EXPECT_TRUE(rep.ok());
  EXPECT_TRUE(rep.addresses[1].fcrdns);
}

TEST(Ptr, GenericCloudPtrResolvesBackButIsNotTheHost) {
  StaticResolver r;
  r.Add("mx.example.com", RrType::kA, "192.0.2.25");
  r.Add("25.2.0.192.in-addr.arpa", RrType::kPTR, "ec2-192-0-2-25.compute.example");
  r.Add("ec2-192-0-2-25.compute.example", RrType::kA, "192.0.2.25");
  auto rep = CheckPtr(r, "mx.example.com", {});
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(rep.addresses[0].fcrdns);
  EXPECT_FALSE(rep.addresses[0].matches_host);
}

TEST(Ptr, PtrToHostThatDoesNotResolveBack) {
  StaticResolver r;
  r.Add("25.2.0.192.in-addr.arpa", RrType::kPTR, "mx.example.com");
  r.Add("mx.example.com", RrType::kA, "192.0.2.99");
  auto rep = CheckPtr(r, "mx.example.com", {"192.0.2.25"});
  EXPECT_FALSE(rep.ok());
  EXPECT_FALSE(rep.addresses[0].fcrdns);
  EXPECT_FALSE(rep.addresses[0].names[0].confirmed);
  EXPECT_TRUE(rep.addresses[0].names[0].matches_host);
}

TEST(Ptr, MissingPtrAndMissingHost) {
  StaticResolver r;
  r.Add("mx.example.com", RrType::kA, "192.0.2.25");
  auto rep = CheckPtr(r, "mx.example.com", {});
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(rep.addresses[0].ptr_status, DnsStatus::kNxDomain);
  auto none = CheckPtr(r, "nothing.example.com", {});
  EXPECT_FALSE(none.ok());
  EXPECT_NE(none.error.find("no A or AAAA"), std::string::npos);
}

}  // namespace
}  // namespace cloudkeep::mail
