// RFC 6376 §3.4.5 canonicalization examples and the edge cases around them.
#include "mail/dkim_canon.h"

#include <gtest/gtest.h>

namespace cloudkeep::mail {
namespace {

// RFC 6376 §3.4.5, with <SP>/<HTAB>/<CRLF> written out.
const char kExample[] =
    "A: X\r\n"
    "B : Y\t\r\n"
    "\tZ  \r\n"
    "\r\n"
    " C \r\n"
    "D \t E\r\n"
    "\r\n"
    "\r\n";

TEST(DkimCanon, Rfc6376Section345Relaxed) {
  auto m = ParseMailMessage(kExample);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->headers.size(), 2u);
  EXPECT_EQ(m->headers[1].name, "B");
  std::string h;
  for (const auto& f : m->headers) h += CanonHeader(DkimCanon::kRelaxed, f.raw);
  EXPECT_EQ(h, "a:X\r\nb:Y Z\r\n");
  EXPECT_EQ(CanonBody(DkimCanon::kRelaxed, m->body), " C\r\nD E\r\n");
}

TEST(DkimCanon, Rfc6376Section345Simple) {
  auto m = ParseMailMessage(kExample);
  ASSERT_TRUE(m.ok());
  std::string h;
  for (const auto& f : m->headers) h += CanonHeader(DkimCanon::kSimple, f.raw);
  EXPECT_EQ(h, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
  EXPECT_EQ(CanonBody(DkimCanon::kSimple, m->body), " C \r\nD \t E\r\n");
}

TEST(DkimCanon, EmptyAndUnterminatedBodies) {
  EXPECT_EQ(CanonBody(DkimCanon::kSimple, ""), "\r\n");
  EXPECT_EQ(CanonBody(DkimCanon::kSimple, "\r\n\r\n"), "\r\n");
  EXPECT_EQ(CanonBody(DkimCanon::kRelaxed, ""), "");
  EXPECT_EQ(CanonBody(DkimCanon::kRelaxed, "\r\n \t\r\n"), "");
  EXPECT_EQ(CanonBody(DkimCanon::kSimple, "abc"), "abc\r\n");
  EXPECT_EQ(CanonBody(DkimCanon::kRelaxed, "abc  "), "abc\r\n");
}

TEST(DkimCanon, UnixLineEndingsBecomeCrlf) {
  auto m = ParseMailMessage("From: a@b\nSubject: x\n y\n\nbody\n");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->unix_line_endings);
  ASSERT_EQ(m->headers.size(), 2u);
  EXPECT_EQ(m->headers[1].raw, "Subject: x\r\n y\r\n");
  EXPECT_EQ(m->body, "body\r\n");
}

TEST(DkimCanon, MalformedHeaders) {
  EXPECT_FALSE(ParseMailMessage(" leading continuation\r\n\r\n").ok());
  EXPECT_FALSE(ParseMailMessage("no colon here\r\n\r\n").ok());
  auto no_body = ParseMailMessage("From: a@b");
  ASSERT_TRUE(no_body.ok());
  EXPECT_EQ(no_body->headers[0].raw, "From: a@b\r\n");
  EXPECT_EQ(no_body->body, "");
}

TEST(DkimCanon, ParseCanonSpec) {
  EXPECT_TRUE(ParseDkimCanon("relaxed/relaxed").ok());
  EXPECT_EQ(ParseDkimCanon("relaxed")->body, DkimCanon::kSimple);
  EXPECT_FALSE(ParseDkimCanon("relaxed/").ok());
  EXPECT_FALSE(ParseDkimCanon("nofws").ok());
}

}  // namespace
}  // namespace cloudkeep::mail
