// RFC 6376 §3.2 tag-lists, base64 with FWS, §3.5 signature and §3.6.1 key records.
#include "mail/dkim_tags.h"

#include <gtest/gtest.h>

#include "mail/dkim_key.h"
#include "mail/dkim_signature.h"

namespace cloudkeep::mail {
namespace {

TEST(DkimTags, ParsesWithFoldingWhiteSpace) {
  auto t = ParseDkimTagList(" v = 1 ;a=rsa-sha256;\r\n\th=from : to;  b=ab cd\r\n ef ; ");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 4u);
  EXPECT_EQ((*t)[0].name, "v");
  EXPECT_EQ((*t)[0].value, "1");
  EXPECT_EQ((*t)[2].value, "from : to");
  EXPECT_EQ((*t)[3].value, "ab cd\r\n ef");  // interior FWS kept
}

TEST(DkimTags, RejectsDuplicatesBadNamesAndMissingEquals) {
  EXPECT_FALSE(ParseDkimTagList("a=1; a=2").ok());
  EXPECT_FALSE(ParseDkimTagList("1a=1").ok());
  EXPECT_FALSE(ParseDkimTagList("a=1; b").ok());
  EXPECT_FALSE(ParseDkimTagList("a=1\r\nb=2").ok());  // CRLF not followed by WSP
  EXPECT_TRUE(ParseDkimTagList("a=").ok());           // empty value is allowed
}

TEST(DkimTags, Base64IgnoresWhiteSpace) {
  auto d = DecodeDkimBase64("aGVs\r\n bG8=");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "hello");
  EXPECT_FALSE(DecodeDkimBase64("aGVsbG8").ok());
  EXPECT_FALSE(DecodeDkimBase64("aG=sbG8=").ok());
  EXPECT_EQ(EncodeBase64("hello"), "aGVsbG8=");
  EXPECT_EQ(EncodeBase64("hell"), "aGVsbA==");
  EXPECT_EQ(EncodeBase64("hel"), "aGVs");
}

TEST(DkimSignatureParse, RequiredTagsAndChecks) {
  const std::string good = "v=1; a=rsa-sha256; d=example.com; s=sel; h=From:To; bh=AAAA; b=AAAA";
  auto s = ParseDkimSignature(good);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->identity, "@example.com");
  EXPECT_EQ(s->canon.header, DkimCanon::kSimple);
  EXPECT_EQ(s->canon.body, DkimCanon::kSimple);
  EXPECT_FALSE(
      ParseDkimSignature("v=1; a=rsa-sha256; d=example.com; s=sel; h=To; bh=AAAA; b=AAAA").ok());
  EXPECT_FALSE(
      ParseDkimSignature("v=2; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA").ok());
  auto sha1 = ParseDkimSignature("v=1; a=rsa-sha1; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA");
  ASSERT_FALSE(sha1.ok());
  EXPECT_NE(sha1.status().message().find("RFC 8301"), std::string::npos);
  EXPECT_FALSE(ParseDkimSignature(good + "; i=joe@other.org").ok());
  EXPECT_TRUE(ParseDkimSignature(good + "; i=joe@mail.example.com").ok());
  EXPECT_FALSE(ParseDkimSignature(good + "; t=200; x=100").ok());
  EXPECT_FALSE(ParseDkimSignature(good + "; q=http/well-known").ok());
  auto c = ParseDkimSignature(good + "; c=relaxed");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->canon.header, DkimCanon::kRelaxed);
  EXPECT_EQ(c->canon.body, DkimCanon::kSimple);
  EXPECT_FALSE(ParseDkimSignature(good + "; c=loose/simple").ok());
  EXPECT_FALSE(ParseDkimSignature("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA").ok());
}

TEST(DkimSignatureParse, EmptiesBButNotBh) {
  std::string raw = "DKIM-Signature: v=1; bh=QUJD; b=abc\r\n\tdef; d=x\r\n";
  EXPECT_EQ(DkimSignatureWithoutB(raw), "DKIM-Signature: v=1; bh=QUJD; b=; d=x\r\n");
  EXPECT_EQ(DkimSignatureWithoutB("DKIM-Signature: a=1; b=xyz\r\n"), "DKIM-Signature: a=1; b=\r\n");
}

TEST(DkimKeyRecordParse, Tags) {
  auto r = ParseDkimKeyRecord(
      "v=DKIM1; k=ed25519; t=y:s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->type, DkimKeyType::kEd25519);
  EXPECT_TRUE(r->testing());
  EXPECT_TRUE(r->strict_identity());
  EXPECT_TRUE(r->allows_email());
  auto key = DkimPublicKey::FromRecord(*r);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->bits(), 256);

  auto revoked = ParseDkimKeyRecord("v=DKIM1; p=");
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(revoked->revoked());
  EXPECT_FALSE(ParseDkimKeyRecord("k=rsa; v=DKIM1; p=").ok());  // v= must come first
  EXPECT_FALSE(ParseDkimKeyRecord("v=DKIM2; p=").ok());
  EXPECT_FALSE(ParseDkimKeyRecord("v=DKIM1; k=dsa; p=").ok());
  EXPECT_FALSE(ParseDkimKeyRecord("v=DKIM1; k=rsa").ok());
  auto services = ParseDkimKeyRecord("v=DKIM1; s=tlsrpt; h=sha1; p=");
  ASSERT_TRUE(services.ok());
  EXPECT_FALSE(services->allows_email());
  EXPECT_FALSE(services->allows_sha256());
  EXPECT_TRUE(ParseDkimKeyRecord("v=DKIM1; x=unknown; p=").ok());  // unknown tags ignored
}

}  // namespace
}  // namespace cloudkeep::mail
