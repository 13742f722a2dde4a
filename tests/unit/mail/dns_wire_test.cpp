// Rdata to presentation text and the --resolver value.
#include "mail/dns_wire.h"

#include <gtest/gtest.h>

namespace cloudkeep::mail {
namespace {

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

TEST(DnsWire, Rdata) {
  EXPECT_EQ(*RdataToText(RrType::kA, B({192, 0, 2, 1})), "192.0.2.1");
  EXPECT_FALSE(RdataToText(RrType::kA, B({192, 0, 2})));
  EXPECT_EQ(
      *RdataToText(RrType::kAAAA, B({0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})),
      "2001:db8::1");
  EXPECT_EQ(*RdataToText(RrType::kTXT, B({3, 'a', 'b', 'c', 0, 2, 'd', 'e'})), "abcde");
  EXPECT_FALSE(RdataToText(RrType::kTXT, B({4, 'a'})));
  // A TXT record with no strings (rdlength 0) is legal on the wire: the empty text.
  EXPECT_EQ(*RdataToText(RrType::kTXT, B({})), "");
  EXPECT_EQ(*RdataToText(RrType::kTXT, B({0})), "");
  EXPECT_EQ(
      *RdataToText(RrType::kMX, B({0, 10, 2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0})),
      "10 mx.example");
  EXPECT_EQ(*RdataToText(RrType::kMX, B({0, 0, 0})), "0 .");  // RFC 7505 null MX
  EXPECT_EQ(*RdataToText(RrType::kPTR, B({3, 'a', '.', 'b', 1, 'c', 0})), "a\\.b.c");
  EXPECT_FALSE(RdataToText(RrType::kPTR, B({0xc0, 12})));      // compression pointer
  EXPECT_FALSE(RdataToText(RrType::kPTR, B({1, 'a', 0, 5})));  // trailing bytes
  EXPECT_EQ(*RdataToText(RrType::kSOA, B({1, 'a', 0, 1, 'b', 0, 0, 0, 0, 1, 0, 0, 0,
                                          2, 0,   0, 0, 3,   0, 0, 0, 4, 0, 0, 0, 5})),
            "a b 1 2 3 4 5");
}

TEST(DnsWire, ForwarderAddress) {
  EXPECT_EQ(*ForwarderAddress("192.0.2.1"), "192.0.2.1@53");
  EXPECT_EQ(*ForwarderAddress("127.0.0.1:5353"), "127.0.0.1@5353");
  EXPECT_EQ(*ForwarderAddress("::1"), "::1@53");
  EXPECT_EQ(*ForwarderAddress("[::1]:5353"), "::1@5353");
  for (const char* bad :
       {"", "dns.example", "127.0.0.1:0", "127.0.0.1:65536", "[::1", "[::1]x", "1.2.3.4:ab"}) {
    auto r = ForwarderAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  }
}

}  // namespace
}  // namespace cloudkeep::mail
