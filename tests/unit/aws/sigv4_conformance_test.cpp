// Runs every case of the SigV4 test suite (aws-c-auth's v4 folder, copied
// to tests/conformance/sigv4) through the signer, for header and query
// signing: canonical request, string to sign, signature, Authorization.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aws/sigv4.h"

namespace cloudkeep::aws {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SuiteDir() {
  return std::string(CK_SOURCE_DIR) + "/tests/conformance/sigv4/v4";
}

SignableRequest ParseRequest(const std::string& text) {
  SignableRequest r;
  size_t eol = text.find('\n');
  std::string first = text.substr(0, eol);
  size_t sp = first.find(' ');
  r.method = first.substr(0, sp);
  std::string target = first.substr(sp + 1, first.rfind(" HTTP/") - sp - 1);
  size_t qm = target.find('?');
  r.path = target.substr(0, qm);
  if (qm != std::string::npos) {
    std::string q = target.substr(qm + 1);
    size_t i = 0;
    while (i <= q.size()) {
      size_t amp = q.find('&', i);
      if (amp == std::string::npos) amp = q.size();
      std::string item = q.substr(i, amp - i);
      size_t eq = item.find('=');
      if (!item.empty())
        r.query.emplace_back(UriDecode(item.substr(0, eq)),
                             eq == std::string::npos ? "" : UriDecode(item.substr(eq + 1)));
      i = amp + 1;
    }
  }
  size_t pos = eol + 1;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(pos, e - pos);
    pos = e + 1;
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      r.headers.back().second += " " + line;
      continue;
    }
    size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  if (pos < text.size()) r.body = text.substr(pos);
  return r;
}

std::string AuthorizationLine(const std::string& signed_request) {
  std::istringstream in(signed_request);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Authorization:", 0) == 0) return line.substr(14);
  return "";
}

TEST(SigV4Conformance, EveryCase) {
  // The suite is part of the repository: missing means a broken checkout, never a skip.
  if (!fs::is_directory(SuiteDir())) FAIL() << "conformance suite missing: " << SuiteDir();
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(SuiteDir())) {
    if (!entry.is_directory()) continue;
    const fs::path d = entry.path();
    SCOPED_TRACE(d.filename().string());
    auto ctx = nlohmann::json::parse(Slurp(d / "context.json"));
    Credentials creds{ctx["credentials"]["access_key_id"], ctx["credentials"]["secret_access_key"],
                      ctx["credentials"].value("token", "")};
    SigningParams p;
    p.region = ctx["region"];
    p.service = ctx["service"];
    auto t = ParseRfc3339(ctx["timestamp"].get<std::string>());
    ASSERT_TRUE(t.ok());
    p.time = *t;
    p.normalize_path = ctx.value("normalize", true);
    p.sign_body = ctx.value("sign_body", false);
    p.omit_session_token = ctx.value("omit_session_token", false);
    p.expires_seconds = ctx.value("expiration_in_seconds", 3600);

    SignableRequest hr = ParseRequest(Slurp(d / "request.txt"));
    Signature hs = SignHeaders(hr, creds, p);
    EXPECT_EQ(hs.canonical_request, Slurp(d / "header-canonical-request.txt"));
    EXPECT_EQ(hs.string_to_sign, Slurp(d / "header-string-to-sign.txt"));
    EXPECT_EQ(hs.signature, Slurp(d / "header-signature.txt"));
    EXPECT_EQ(hs.authorization, AuthorizationLine(Slurp(d / "header-signed-request.txt")));

    SignableRequest qr = ParseRequest(Slurp(d / "request.txt"));
    Signature qs = SignQuery(qr, creds, p);
    EXPECT_EQ(qs.canonical_request, Slurp(d / "query-canonical-request.txt"));
    EXPECT_EQ(qs.string_to_sign, Slurp(d / "query-string-to-sign.txt"));
    EXPECT_EQ(qs.signature, Slurp(d / "query-signature.txt"));
    EXPECT_NE(Slurp(d / "query-signed-request.txt").find("X-Amz-Signature=" + qs.signature),
              std::string::npos);
    ++cases;
  }
  EXPECT_EQ(cases, 38);
}

}  // namespace
}  // namespace cloudkeep::aws
