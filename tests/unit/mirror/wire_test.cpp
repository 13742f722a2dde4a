#include "mirror/wire.h"

#include <gtest/gtest.h>

namespace cloudkeep::mirror::wire {
namespace {

TEST(MirrorWire, HeaderRoundTrip) {
  Header h;
  h.type = Type::kWrite;
  h.flags = kFlagFua;
  h.payload_bytes = h.length = 4096;
  h.seq = 0x0102030405060708ull;
  h.offset = 1ull << 40;
  h.token = 77;
  uint8_t buf[kHeaderBytes];
  EncodeHeader(h, buf);
  EXPECT_EQ(buf[0], 'C');
  EXPECT_EQ(buf[5], 2);
  EXPECT_EQ(buf[16], 1);  // big-endian seq
  auto d = DecodeHeader(buf);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->type, Type::kWrite);
  EXPECT_EQ(d->flags, kFlagFua);
  EXPECT_EQ(d->seq, h.seq);
  EXPECT_EQ(d->offset, h.offset);
  EXPECT_EQ(d->token, 77u);
}

TEST(MirrorWire, RejectsBadFrames) {
  Header h;
  h.type = Type::kAck;
  uint8_t buf[kHeaderBytes];
  EncodeHeader(h, buf);
  buf[0] = 'X';
  EXPECT_NE(DecodeHeader(buf).status().message().find("magic"), std::string::npos);
  EncodeHeader(h, buf);
  buf[4] = 2;
  EXPECT_NE(DecodeHeader(buf).status().message().find("version"), std::string::npos);
  EncodeHeader(h, buf);
  buf[5] = 99;
  EXPECT_NE(DecodeHeader(buf).status().message().find("type"), std::string::npos);
  h.payload_bytes = kMaxPayload + 1;
  EncodeHeader(h, buf);
  EXPECT_FALSE(DecodeHeader(buf).ok());
  h.type = Type::kWrite;
  h.payload_bytes = 10;
  h.length = 11;
  EncodeHeader(h, buf);
  EXPECT_FALSE(DecodeHeader(buf).ok());
  // A zeroing carries no data: a payload on it is a broken peer.
  h.type = Type::kZero;
  h.length = 1 << 20;
  h.payload_bytes = 0;
  EncodeHeader(h, buf);
  auto z = DecodeHeader(buf);
  ASSERT_TRUE(z.ok()) << z.status().message();
  EXPECT_EQ(z->length, 1u << 20);
  EXPECT_STREQ(TypeName(z->type), "ZERO");
  h.payload_bytes = 1;
  EncodeHeader(h, buf);
  EXPECT_FALSE(DecodeHeader(buf).ok());
}

}  // namespace
}  // namespace cloudkeep::mirror::wire
