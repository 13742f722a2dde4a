// Sign-then-verify round trips for both key types and all four
// canonicalization pairs, Unix line endings, expiry, and the key-record
// checks of `mail dkim check` against in-process zone data.
#include "mail/dkim_sign.h"

#include <gtest/gtest.h>

#include "mail/dkim_check.h"
#include "mail/dkim_keyfile.h"
#include "mail/dkim_verify.h"

namespace cloudkeep::mail {
namespace {

const char kMessage[] =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject:  Quarterly   report \r\n"
    "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Numbers  are up.\t \r\n"
    "\r\n"
    "\r\n";

const DkimPrivateKey& Key(DkimKeyType t) {
  static const DkimPrivateKey rsa = *DkimPrivateKey::Generate(DkimKeyType::kRsa, 2048);
  static const DkimPrivateKey ed = *DkimPrivateKey::Generate(DkimKeyType::kEd25519, 0);
  return t == DkimKeyType::kRsa ? rsa : ed;
}

DkimVerdict SignVerify(DkimKeyType type, DkimCanonPair canon, const std::string& mutate_from = "",
                       const std::string& mutate_to = "") {
  DkimSignOptions o;
  o.domain = "example.org";
  o.selector = "s1";
  o.canon = canon;
  o.timestamp = 1764324000;
  auto s = DkimSign(kMessage, Key(type), o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  std::string msg = s->message;
  if (!mutate_from.empty()) msg.replace(msg.find(mutate_from), mutate_from.size(), mutate_to);
  StaticResolver r;
  r.Add("s1._domainkey.example.org", RrType::kTXT, *Key(type).KeyRecord());
  auto v = DkimVerify(msg, &r, {});
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 1u);
  return v->front();
}

class DkimRoundTrip
    : public ::testing::TestWithParam<std::tuple<DkimKeyType, DkimCanon, DkimCanon>> {};

TEST_P(DkimRoundTrip, SignedMessageVerifiesAndTamperingFails) {
  auto [type, hc, bc] = GetParam();
  DkimCanonPair c{hc, bc};
  auto ok = SignVerify(type, c);
  EXPECT_EQ(ok.result, DkimResult::kPass) << ok.reason;
  EXPECT_EQ(SignVerify(type, c, "are up", "are dn").result, DkimResult::kFail);
  EXPECT_EQ(SignVerify(type, c, "Quarterly", "Quarterlx").result, DkimResult::kFail);
  // Relaxed canonicalization forgives white space changes; simple does not.
  auto ws_header = SignVerify(type, c, "Subject:  Quarterly", "Subject: Quarterly");
  EXPECT_EQ(ws_header.result, hc == DkimCanon::kRelaxed ? DkimResult::kPass : DkimResult::kFail);
  auto ws_body = SignVerify(type, c, "Numbers  are", "Numbers are");
  EXPECT_EQ(ws_body.result, bc == DkimCanon::kRelaxed ? DkimResult::kPass : DkimResult::kFail);
}

INSTANTIATE_TEST_SUITE_P(
    All, DkimRoundTrip,
    ::testing::Combine(::testing::Values(DkimKeyType::kRsa, DkimKeyType::kEd25519),
                       ::testing::Values(DkimCanon::kSimple, DkimCanon::kRelaxed),
                       ::testing::Values(DkimCanon::kSimple, DkimCanon::kRelaxed)));

TEST(DkimSign, UnixLineEndingsStayUnixAndVerify) {
  std::string lf = "From: a@example.org\nSubject: hi\n\nhello\n";
  DkimSignOptions o;
  o.domain = "example.org";
  o.selector = "s1";
  auto s = DkimSign(lf, Key(DkimKeyType::kEd25519), o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->field.find('\r'), std::string::npos);
  EXPECT_EQ(s->message.substr(s->field.size()), lf);
  DkimVerifyOptions vo;
  vo.key_record = *Key(DkimKeyType::kEd25519).KeyRecord();
  auto v = DkimVerify(s->message, nullptr, vo);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->front().result, DkimResult::kPass) << v->front().reason;
}

TEST(DkimSign, HeaderChoiceAndOverSigning) {
  DkimSignOptions o;
  o.domain = "example.org";
  o.selector = "s1";
  auto s = DkimSign(kMessage, Key(DkimKeyType::kRsa), o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->signed_headers,
            (std::vector<std::string>{"from", "subject", "date", "message-id", "to", "from"}));
  o.headers = {"To", "Subject"};
  auto no_from = DkimSign(kMessage, Key(DkimKeyType::kRsa), o);
  ASSERT_FALSE(no_from.ok());
  EXPECT_EQ(no_from.status().code(), Status::Code::kUsage);
  o.headers.clear();
  o.domain = "bad domain";
  EXPECT_FALSE(DkimSign(kMessage, Key(DkimKeyType::kRsa), o).ok());
  o.domain = "example.org";
  EXPECT_FALSE(DkimSign("Subject: no from\r\n\r\nx\r\n", Key(DkimKeyType::kRsa), o).ok());
}

TEST(DkimSign, ExpiredSignatureIsRejected) {
  DkimSignOptions o;
  o.domain = "example.org";
  o.selector = "s1";
  o.timestamp = 1000;
  o.expiration = 2000;
  auto s = DkimSign(kMessage, Key(DkimKeyType::kEd25519), o);
  ASSERT_TRUE(s.ok());
  DkimVerifyOptions vo;
  vo.key_record = *Key(DkimKeyType::kEd25519).KeyRecord();
  vo.now = 3000;
  auto v = DkimVerify(s->message, nullptr, vo);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->front().result, DkimResult::kPermError);
  EXPECT_NE(v->front().reason.find("expired"), std::string::npos);
  vo.now = 1500;
  EXPECT_EQ(DkimVerify(s->message, nullptr, vo)->front().result, DkimResult::kPass);
}

TEST(DkimSign, PrivateKeyPemRoundTrip) {
  for (auto t : {DkimKeyType::kRsa, DkimKeyType::kEd25519}) {
    auto pem = Key(t).PrivatePem();
    ASSERT_TRUE(pem.ok());
    EXPECT_NE(pem->find("BEGIN PRIVATE KEY"), std::string::npos);
    auto back = DkimPrivateKey::Parse(*pem);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back->KeyRecord(), *Key(t).KeyRecord());
  }
  EXPECT_EQ(DkimPrivateKey::Parse("not a key").status().code(), Status::Code::kUsage);
  EXPECT_FALSE(DkimPrivateKey::Generate(DkimKeyType::kRsa, 512).ok());
}

std::string RsaRecord(int bits, const std::string& extra = "") {
  auto k = DkimPrivateKey::Generate(DkimKeyType::kRsa, bits);
  return "v=DKIM1; k=rsa; " + extra + "p=" + *k->PublicKeyBase64();
}

const DkimSelectorReport* Find(const DkimCheckReport& r, const std::string& sel) {
  for (const auto& s : r.selectors)
    if (s.selector == sel) return &s;
  return nullptr;
}

TEST(DkimCheck, JudgesEachSelector) {
  StaticResolver r;
  const std::string d = "example.org";
  r.Add("good._domainkey." + d, RrType::kTXT, *Key(DkimKeyType::kRsa).KeyRecord());
  r.Add("ed._domainkey." + d, RrType::kTXT, *Key(DkimKeyType::kEd25519).KeyRecord());
  r.Add("short._domainkey." + d, RrType::kTXT, RsaRecord(1024));
  r.Add("testing._domainkey." + d, RrType::kTXT, RsaRecord(2048, "t=y; "));
  r.Add("revoked._domainkey." + d, RrType::kTXT, "v=DKIM1; k=rsa; p=");
  r.Add("garbage._domainkey." + d, RrType::kTXT, "v=DKIM1; k=rsa; p=bm90IGEga2V5");
  r.Add("other._domainkey." + d, RrType::kTXT, "some unrelated text");
  r.SetServFail("broken._domainkey." + d);
  auto rep = CheckDkimSelectors(
      r, d, {"good", "ed", "short", "testing", "revoked", "garbage", "missing", "other", "broken"});
  EXPECT_FALSE(rep.guessed);
  EXPECT_EQ(rep.severity, DkimSeverity::kFail);
  EXPECT_EQ(Find(rep, "good")->severity, DkimSeverity::kPass);
  EXPECT_EQ(Find(rep, "good")->key_bits, 2048);
  EXPECT_EQ(Find(rep, "ed")->key_type, "ed25519");
  EXPECT_EQ(Find(rep, "ed")->severity, DkimSeverity::kPass);
  EXPECT_EQ(Find(rep, "short")->severity, DkimSeverity::kWarn);
  EXPECT_TRUE(Find(rep, "testing")->testing);
  EXPECT_EQ(Find(rep, "testing")->severity, DkimSeverity::kWarn);
  EXPECT_TRUE(Find(rep, "revoked")->revoked);
  EXPECT_EQ(Find(rep, "revoked")->severity, DkimSeverity::kWarn);
  EXPECT_EQ(Find(rep, "garbage")->severity, DkimSeverity::kFail);
  EXPECT_FALSE(Find(rep, "missing")->found);
  EXPECT_EQ(Find(rep, "missing")->severity, DkimSeverity::kFail);
  EXPECT_EQ(Find(rep, "other")->severity, DkimSeverity::kFail);
  // A SERVFAIL is "could not check", neither a failure nor a missing key.
  EXPECT_EQ(Find(rep, "broken")->severity, DkimSeverity::kUnknown);
  EXPECT_TRUE(Find(rep, "broken")->lookup_failed);
  auto j = DkimCheckToJson(rep);
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["selectors"].size(), 9u);
}

TEST(DkimCheck, RsaUnder1024Fails) {
  // keygen refuses keys under 1024 bits; this 512-bit public key was made
  // with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512`.
  StaticResolver r;
  r.Add("tiny._domainkey.example.org", RrType::kTXT,
        "v=DKIM1; "
        "p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAOUJsNRrh2sAv+0LKBoGWdcuFOyOS+M1uvDCvyl5azxvtwhK4/"
        "RTeWwr3bf6"
        "mULwiIts/sOYC2LtKBgwzbB4erkCAwEAAQ==");
  auto rep = CheckDkimSelectors(r, "example.org", {"tiny"});
  ASSERT_EQ(rep.selectors.size(), 1u);
  EXPECT_EQ(rep.selectors[0].key_bits, 512);
  EXPECT_EQ(rep.selectors[0].severity, DkimSeverity::kFail);
}

TEST(DkimCheck, GuessesCommonSelectors) {
  StaticResolver r;
  r.Add("selector1._domainkey.example.org", RrType::kTXT, *Key(DkimKeyType::kEd25519).KeyRecord());
  auto rep = CheckDkimSelectors(r, "example.org", {});
  EXPECT_TRUE(rep.guessed);
  ASSERT_EQ(rep.selectors.size(), 1u);
  EXPECT_EQ(rep.selectors[0].selector, "selector1");
  EXPECT_EQ(rep.severity, DkimSeverity::kInfo);  // only Ed25519
  StaticResolver empty;
  auto none = CheckDkimSelectors(empty, "example.org", {});
  EXPECT_TRUE(none.selectors.empty());
  EXPECT_EQ(none.severity, DkimSeverity::kWarn);
}

TEST(DkimKeyFile, ReadsZoneLines) {
  auto r = LoadDkimKeyFile(
      "; comment\n"
      "a._domainkey.example.org. 300 IN TXT \"v=DKIM1; k=rsa; \" \"p=AB\"\n"
      "b._domainkey.example.org. IN TXT ( \"v=DKIM1; \"\n"
      "   \"p=CD\" ) ; trailing\n"
      "example.org. IN MX 10 mx.example.org.\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto a = (*r)->Query("a._domainkey.example.org", RrType::kTXT);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.records[0], "v=DKIM1; k=rsa; p=AB");
  EXPECT_EQ((*r)->Query("b._domainkey.example.org", RrType::kTXT).records[0], "v=DKIM1; p=CD");
  EXPECT_FALSE(LoadDkimKeyFile("x IN TXT \"open").ok());
  EXPECT_FALSE(LoadDkimKeyFile("; nothing\n").ok());
}

}  // namespace
}  // namespace cloudkeep::mail
