#include "aws/sigv4.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "core/strings.h"

namespace cloudkeep::aws {

namespace {

constexpr const char* kAlgorithm = "AWS4-HMAC-SHA256";

// Canonical header value: trimmed, runs of spaces collapsed to one, folded
// continuation lines joined by a space.
std::string CanonicalValue(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Dot segments are removed as RFC 3986 section 5.2.4 says; empty segments
// ("//") are dropped too, as the AWS SDKs do for every service but S3.
std::string NormalizePath(const std::string& path) {
  std::vector<std::string> segs;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string seg = path.substr(i, j - i);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    i = j + 1;
  }
  std::string out = "/";
  for (size_t k = 0; k < segs.size(); ++k) out += (k ? "/" : "") + segs[k];
  if (!segs.empty() && !path.empty() && path.back() == '/') out += '/';
  return out;
}

std::string DateStamp(const std::string& amz_date) {
  return amz_date.substr(0, 8);
}

struct Canonical {
  std::string request;
  std::string signed_headers;
};

Canonical BuildCanonical(const SignableRequest& r, const SigningParams& p,
                         const std::string& payload_hash, bool query_signing) {
  std::string path = p.normalize_path ? NormalizePath(r.path) : r.path;
  if (path.empty()) path = "/";
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : r.query) q.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(q.begin(), q.end());
  std::string query;
  for (const auto& [k, v] : q) query += (query.empty() ? "" : "&") + k + "=" + v;

  // Duplicate headers join with ',' in the order given.
  std::map<std::string, std::string> headers;
  for (const auto& [k, v] : r.headers) {
    std::string name = AsciiLower(k);
    if (query_signing && (name == "x-amz-date" || name == "authorization")) continue;
    auto [it, fresh] = headers.emplace(name, CanonicalValue(v));
    if (!fresh) it->second += "," + CanonicalValue(v);
  }
  std::string canon_headers, signed_headers;
  for (const auto& [k, v] : headers) {
    canon_headers += k + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + k;
  }
  Canonical c;
  c.signed_headers = signed_headers;
  c.request = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", r.method, UriEncode(path, true), query,
                          canon_headers, signed_headers, payload_hash);
  return c;
}

std::string SigningKey(const Credentials& creds, const std::string& date, const SigningParams& p) {
  std::string k = HmacSha256("AWS4" + creds.secret_access_key, date);
  k = HmacSha256(k, p.region);
  k = HmacSha256(k, p.service);
  return HmacSha256(k, "aws4_request");
}

Signature Finish(const Canonical& c, const Credentials& creds, const SigningParams& p,
                 const std::string& amz_date) {
  Signature s;
  s.canonical_request = c.request;
  std::string scope =
      fmt::format("{}/{}/{}/aws4_request", DateStamp(amz_date), p.region, p.service);
  s.string_to_sign =
      fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amz_date, scope, Sha256Hex(c.request));
  s.signature = Hex(HmacSha256(SigningKey(creds, DateStamp(amz_date), p), s.string_to_sign));
  s.authorization = fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kAlgorithm,
                                creds.access_key_id, scope, c.signed_headers, s.signature);
  return s;
}

}  // namespace

std::string UriEncode(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string UriDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string AmzDate(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string Hex(const std::string& bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Hex(std::string(reinterpret_cast<char*>(md), sizeof md));
}

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

Signature SignHeaders(SignableRequest& request, const Credentials& creds,
                      const SigningParams& params) {
  std::string amz_date = AmzDate(params.time);
  std::string payload_hash = Sha256Hex(request.body);
  request.headers.emplace_back("X-Amz-Date", amz_date);
  if (params.sign_body) request.headers.emplace_back("x-amz-content-sha256", payload_hash);
  bool token = !creds.session_token.empty();
  if (token && !params.omit_session_token)
    request.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  Canonical c = BuildCanonical(request, params, payload_hash, false);
  Signature s = Finish(c, creds, params, amz_date);
  if (token && params.omit_session_token)
    request.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  request.headers.emplace_back("Authorization", s.authorization);
  return s;
}

Signature SignQuery(SignableRequest& request, const Credentials& creds,
                    const SigningParams& params) {
  std::string amz_date = AmzDate(params.time);
  std::string payload_hash = Sha256Hex(request.body);
  // The signed-headers list goes into the query before the signature is
  // computed, so compute it first from the request's own headers.
  SignableRequest probe = request;
  probe.query.clear();
  std::string signed_headers = BuildCanonical(probe, params, payload_hash, true).signed_headers;
  std::string scope =
      fmt::format("{}/{}/{}/aws4_request", DateStamp(amz_date), params.region, params.service);
  request.query.emplace_back("X-Amz-Algorithm", kAlgorithm);
  request.query.emplace_back("X-Amz-Credential", creds.access_key_id + "/" + scope);
  request.query.emplace_back("X-Amz-Date", amz_date);
  request.query.emplace_back("X-Amz-SignedHeaders", signed_headers);
  request.query.emplace_back("X-Amz-Expires", std::to_string(params.expires_seconds));
  bool token = !creds.session_token.empty();
  if (token && !params.omit_session_token)
    request.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  Canonical c = BuildCanonical(request, params, payload_hash, true);
  Signature s = Finish(c, creds, params, amz_date);
  if (token && params.omit_session_token)
    request.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  request.query.emplace_back("X-Amz-Signature", s.signature);
  return s;
}

}  // namespace cloudkeep::aws
