#include "mail/smtp_reply.h"

#include <gtest/gtest.h>

namespace cloudkeep::mail {
namespace {

TEST(SmtpReply, SingleLine) {
  auto r = ParseSmtpReply("250 OK\r\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->text(), "OK");
  EXPECT_TRUE(r->positive());
}

TEST(SmtpReply, MultilineEhlo) {
  auto r =
      ParseSmtpReply("250-mx.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->lines.size(), 4u);
  EXPECT_EQ(r->lines[0], "mx.example.com");
  EXPECT_EQ(r->lines[3], "8BITMIME");
}

TEST(SmtpReply, BareCodeAndBareLf) {
  auto r = ParseSmtpReply("354\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, 354);
  EXPECT_EQ(r->lines.size(), 1u);
  EXPECT_EQ(r->lines[0], "");
}

TEST(SmtpReply, CodeMustNotChangeWithinReply) {
  EXPECT_FALSE(ParseSmtpReply("250-a\r\n251 b\r\n").ok());
}

TEST(SmtpReply, RejectsGarbage) {
  EXPECT_FALSE(ParseSmtpReply("hello\r\n").ok());
  EXPECT_FALSE(ParseSmtpReply("25\r\n").ok());
  EXPECT_FALSE(ParseSmtpReply("250_x\r\n").ok());
  EXPECT_FALSE(ParseSmtpReply("160 x\r\n").ok());  // first digit must be 2..5
  EXPECT_FALSE(ParseSmtpReply("270 x\r\n").ok());  // second digit must be 0..5
  EXPECT_FALSE(ParseSmtpReply("250-incomplete\r\n").ok());
  EXPECT_FALSE(ParseSmtpReply("250 a\r\n250 b\r\n").ok());  // two replies
}

TEST(SmtpReply, IncrementalAcrossReadsAndPipelined) {
  SmtpReplyParser p;
  p.Feed("250-mx\r\n25");
  auto r = p.Next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  p.Feed("0 OK\r\n550 5.7.1 Relay denied\r\n");
  r = p.Next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->code, 250);
  EXPECT_EQ((*r)->lines.size(), 2u);
  r = p.Next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->code, 550);
  EXPECT_EQ((*r)->text(), "5.7.1 Relay denied");
  EXPECT_EQ(p.pending(), 0u);
}

TEST(SmtpReply, BoundsLineLength) {
  SmtpReplyParser p;
  p.Feed("250 " + std::string(SmtpReplyParser::kMaxLine + 10, 'a'));
  EXPECT_FALSE(p.Next().ok());
}

TEST(SmtpReply, BoundsLineCount) {
  std::string s;
  for (size_t i = 0; i < SmtpReplyParser::kMaxLines + 1; ++i) s += "250-x\r\n";
  s += "250 end\r\n";
  EXPECT_FALSE(ParseSmtpReply(s).ok());
}

}  // namespace
}  // namespace cloudkeep::mail
