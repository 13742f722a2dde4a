// The RFC 8463 Appendix A vectors (tests/conformance/dkim): both
// signatures verify, signing the unsigned message with the published keys
// reproduces the RFC's b= values (Ed25519 and RSA PKCS#1 v1.5 are
// deterministic), and altering the body or a signed header field fails.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mail/dkim_key.h"
#include "mail/dkim_keyfile.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"

namespace cloudkeep::mail {
namespace {

std::string Vector(const std::string& name) {
  // Appended step by step: GCC 12 at -O2 flags the one-expression form
  // with a false -Warray-bounds.
  std::string path = CK_SOURCE_DIR;
  path.append("/tests/conformance/dkim/");
  path.append(name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<StaticResolver> Keys() {
  auto r = LoadDkimKeyFile(Vector("dns-records.txt"));
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : std::make_unique<StaticResolver>();
}

std::vector<DkimVerdict> Verify(const std::string& msg, Resolver* r) {
  auto v = DkimVerify(msg, r, {});
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? *v : std::vector<DkimVerdict>{};
}

TEST(DkimRfc8463, BothSignaturesVerify) {
  auto keys = Keys();
  auto v = Verify(Vector("rfc8463-a3-signed.msg"), keys.get());
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].result, DkimResult::kPass) << v[0].reason;
  EXPECT_EQ(v[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(v[0].selector, "brisbane");
  EXPECT_EQ(v[1].result, DkimResult::kPass) << v[1].reason;
  EXPECT_EQ(v[1].algorithm, "rsa-sha256");
  EXPECT_EQ(v[1].key_bits, 1024);
}

TEST(DkimRfc8463, BodyHashMatchesAppendix) {
  auto m = ParseMailMessage(Vector("rfc8463-unsigned.msg"));
  ASSERT_TRUE(m.ok());
  auto body = DkimCanonicalBody(*m, DkimCanon::kSimple, std::nullopt);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(EncodeBase64(Sha256(*body)), "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
}

// Recomputes each b= from the signed message's own DKIM-Signature fields
// with the private keys: byte-identical signatures.
TEST(DkimRfc8463, SigningReproducesTheRfcSignatures) {
  auto signed_msg = ParseMailMessage(Vector("rfc8463-a3-signed.msg"));
  ASSERT_TRUE(signed_msg.ok());
  auto ed = DkimPrivateKey::Parse(Vector("brisbane-ed25519.seed.b64"));
  ASSERT_TRUE(ed.ok()) << ed.status().message();
  auto rsa = DkimPrivateKey::Parse(Vector("test-rsa1024.private.pem"));
  ASSERT_TRUE(rsa.ok()) << rsa.status().message();
  auto ed_pub = ed->PublicKeyBase64();
  ASSERT_TRUE(ed_pub.ok());
  EXPECT_EQ(*ed_pub, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  int checked = 0;
  for (const auto& f : signed_msg->headers) {
    if (!EqualsIgnoreCase(f.name, "DKIM-Signature")) continue;
    auto sig = ParseDkimSignature(f.raw.substr(f.raw.find(':') + 1));
    ASSERT_TRUE(sig.ok()) << sig.status().message();
    // The unsigned message is the signed one without its two signatures.
    auto unsigned_msg = ParseMailMessage(Vector("rfc8463-unsigned.msg"));
    ASSERT_TRUE(unsigned_msg.ok());
    std::string data = DkimHeaderData(*unsigned_msg, sig->headers, f.raw, sig->canon.header);
    const DkimPrivateKey& key = sig->algorithm == DkimAlgorithm::kEd25519Sha256 ? *ed : *rsa;
    auto b = DkimSignData(key, sig->algorithm, data);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(EncodeBase64(*b), EncodeBase64(sig->signature)) << DkimAlgorithmName(sig->algorithm);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(DkimRfc8463, TamperedBodyAndHeaderFail) {
  auto keys = Keys();
  std::string msg = Vector("rfc8463-a3-signed.msg");
  std::string body = msg;
  body.replace(body.find("We lost the game"), 16, "We won the game!");
  for (const auto& v : Verify(body, keys.get())) {
    EXPECT_EQ(v.result, DkimResult::kFail);
    EXPECT_NE(v.reason.find("body hash"), std::string::npos) << v.reason;
  }
  std::string header = msg;
  header.replace(header.find("Is dinner ready?"), 16, "Is lunch ready??");
  for (const auto& v : Verify(header, keys.get())) {
    EXPECT_EQ(v.result, DkimResult::kFail);
    EXPECT_NE(v.reason.find("does not verify"), std::string::npos) << v.reason;
  }
  // A second From added above the signed one: From is listed twice in h=,
  // so the added one is covered (over-signing, RFC 6376 §8.15).
  std::string extra = msg;
  extra.insert(extra.find("From: Joe"), "From: Mallory <m@evil.example>\r\n");
  for (const auto& v : Verify(extra, keys.get())) EXPECT_EQ(v.result, DkimResult::kFail);
}

TEST(DkimRfc8463, KeyProblems) {
  std::string msg = Vector("rfc8463-a3-signed.msg");
  StaticResolver none;
  auto v = Verify(msg, &none);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].result, DkimResult::kPermError);
  EXPECT_NE(v[0].reason.find("no key at brisbane._domainkey.football.example.com"),
            std::string::npos);

  StaticResolver broken;
  broken.SetServFail("brisbane._domainkey.football.example.com");
  broken.Add("test._domainkey.football.example.com", RrType::kTXT, "v=DKIM1; p=");
  v = Verify(msg, &broken);
  EXPECT_EQ(v[0].result, DkimResult::kTempError);
  EXPECT_EQ(v[1].result, DkimResult::kPermError);
  EXPECT_NE(v[1].reason.find("revoked"), std::string::npos);

  // The Ed25519 key offered for the RSA signature: a type mismatch.
  DkimVerifyOptions o;
  o.key_record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  auto w = DkimVerify(msg, nullptr, o);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)[0].result, DkimResult::kPass);
  EXPECT_EQ((*w)[1].result, DkimResult::kPermError);
}

TEST(DkimRfc8463, NoSignatureIsNone) {
  StaticResolver r;
  auto v = Verify(Vector("rfc8463-unsigned.msg"), &r);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].result, DkimResult::kNone);
}

}  // namespace
}  // namespace cloudkeep::mail
