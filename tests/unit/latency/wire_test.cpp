#include "latency/wire.h"

#include <gtest/gtest.h>

#include <vector>

namespace cloudkeep::latency::wire {
namespace {

std::vector<uint8_t> Make(Type t, uint16_t len, uint32_t seq = 7) {
  std::vector<uint8_t> b(len);
  Probe p;
  p.type = t;
  p.length = len;
  p.seq = seq;
  p.session = 0xabcdef01;
  p.client_ns = 123456789;
  EncodeProbe(p, b);
  return b;
}

TEST(WireTest, ProbeRoundTrip) {
  auto b = Make(Type::kProbe, 64);
  EXPECT_EQ(b[0], 'C');
  EXPECT_EQ(b[3], 'T');
  auto p = DecodeProbe(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->seq, 7u);
  EXPECT_EQ(p->session, 0xabcdef01u);
  EXPECT_EQ(p->client_ns, 123456789u);
  EXPECT_EQ(p->length, 64);
}

TEST(WireTest, ReplyIsSameSizeAndEchoesClientTime) {
  auto b = Make(Type::kProbe, 100);
  ASSERT_TRUE(MakeReply(b, 999, "web-1", "use1-az1"));
  EXPECT_EQ(b.size(), 100u);
  auto p = DecodeProbe(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, Type::kReply);
  EXPECT_EQ(p->client_ns, 123456789u);
  EXPECT_EQ(p->server_ns, 999u);
  // A reply is never answered: two responders cannot be made to ping-pong forever.
  EXPECT_FALSE(MakeReply(b, 1, "", ""));
}

TEST(WireTest, HelloCarriesNameAndZoneTruncatedToFit) {
  auto b = Make(Type::kHello, 64);
  ASSERT_TRUE(MakeReply(b, 1, "web-1", "use1-az1"));
  auto id = DecodeHelloReply(b);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "web-1");
  EXPECT_EQ(id->zone, "use1-az1");
  auto small = Make(Type::kHello, 36);
  ASSERT_TRUE(MakeReply(small, 1, "a-very-long-name", "zone"));
  EXPECT_EQ(small.size(), 36u);
  auto id2 = DecodeHelloReply(small);
  ASSERT_TRUE(id2);
  EXPECT_EQ(id2->name, "a-v");
  EXPECT_EQ(id2->zone, "");
}

TEST(WireTest, MalformedIsNotAnswered) {
  auto good = Make(Type::kProbe, 64);
  {
    auto b = good;
    b[0] = 'X';  // magic
    EXPECT_FALSE(MakeReply(b, 1, "", ""));
  }
  {
    auto b = good;
    b[4] = 2;  // version
    EXPECT_FALSE(MakeReply(b, 1, "", ""));
  }
  {
    auto b = good;
    b.resize(63);  // truncated: length field says 64
    EXPECT_FALSE(MakeReply(b, 1, "", ""));
  }
  {
    auto b = good;
    b.push_back(0);  // trailing byte
    EXPECT_FALSE(MakeReply(b, 1, "", ""));
  }
  {
    std::vector<uint8_t> b(31, 0);
    EXPECT_FALSE(MakeReply(b, 1, "", ""));
  }
  {
    auto b = Make(Type::kProbe, 64);
    b[6] = 0x30;  // length 12352 > kMaxProbe
    b[7] = 0x40;
    EXPECT_FALSE(DecodeProbe(b, true));
  }
  std::vector<uint8_t> control(64, 0);
  control[0] = 'C', control[1] = 'K', control[2] = 'L', control[3] = 'T', control[4] = 1,
  control[5] = 5;
  EXPECT_FALSE(MakeReply(control, 1, "", ""));
}

TEST(WireTest, IdentityMustFitTheHelloAndBePrintable) {
  EXPECT_TRUE(ValidateIdentity("web-1", "use1-az1").ok());
  EXPECT_TRUE(ValidateIdentity("東京-1", "ap-northeast-1a").ok());
  std::string n(100, 'n'), z(26, 'z');
  EXPECT_TRUE(ValidateIdentity(n, z).ok());  // 126 bytes: the whole hello padding
  // What fits is exactly what a 160-byte hello reply carries back.
  std::vector<uint8_t> hello = Make(Type::kHello, kHelloSize);
  ASSERT_TRUE(MakeReply(hello, 1, n, z));
  auto id = DecodeHelloReply(hello);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, n);
  EXPECT_EQ(id->zone, z);

  Status too_long = ValidateIdentity(n, z + "z");
  EXPECT_EQ(too_long.exit_code(), 2);
  EXPECT_NE(too_long.message().find("--name '" + n + "'"), std::string::npos);
  EXPECT_NE(too_long.message().find("127 bytes"), std::string::npos);
  Status esc = ValidateIdentity("a\x1b[2Jb", "z");
  EXPECT_EQ(esc.exit_code(), 2);
  EXPECT_NE(esc.message().find("--name 'a\\x1b[2Jb'"), std::string::npos) << esc.message();
  EXPECT_EQ(ValidateIdentity("n", "z\xff").exit_code(), 2);
  EXPECT_EQ(ValidateIdentity("n", "z\xc2\x9b").exit_code(), 2);  // C1 CSI
  EXPECT_EQ(ValidateIdentity("n", "").exit_code(), 2);
  Status flag = ValidateIdentity("n", "\t", "name", "zone");
  EXPECT_NE(flag.message().find("zone '\\t'"), std::string::npos) << flag.message();
}

TEST(WireTest, ControlFrameWithInvalidUtf8DoesNotThrow) {
  // An agent's run reply quotes names that targets announced: any bytes.
  Json payload = {{"nonce", "0123456789abcdef"}, {"name", "evil\xff\x1b"}};
  std::string f;
  ASSERT_NO_THROW(f = EncodeControl(Type::kControlReply, payload, "t"));
  auto back = DecodeControl({reinterpret_cast<const uint8_t*>(f.data()), f.size()},
                            Type::kControlReply, "t");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ((*back)["name"], "evil\xef\xbf\xbd\x1b");  // U+FFFD for the bad byte
}

TEST(WireTest, ControlFrameAuthenticates) {
  Json payload = {{"op", "hello"}, {"nonce", "0123456789abcdef"}};
  std::string f = EncodeControl(Type::kControl, payload, "s3cret");
  std::span<const uint8_t> frame(reinterpret_cast<const uint8_t*>(f.data()), f.size());
  auto ok = DecodeControl(frame, Type::kControl, "s3cret");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ((*ok)["op"], "hello");
  auto wrong = DecodeControl(frame, Type::kControl, "other");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("authentication failed"), std::string::npos);
  EXPECT_FALSE(DecodeControl(frame, Type::kControlReply, "s3cret").ok());
  std::string tampered = f;
  tampered[wire::kControlHeader + 3] ^= 1;
  EXPECT_FALSE(DecodeControl({reinterpret_cast<const uint8_t*>(tampered.data()), tampered.size()},
                             Type::kControl, "s3cret")
                   .ok());
}

TEST(WireTest, ControlLengthIsBounded) {
  std::vector<uint8_t> h = {'C', 'K', 'L', 'T', 1, 5, 0, 0, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(ControlPayloadLength(h).ok());
}

}  // namespace
}  // namespace cloudkeep::latency::wire
