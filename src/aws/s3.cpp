#include "aws/s3.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/md5.h>

#include <charconv>
#include <chrono>
#include <thread>

#include "aws/backoff.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strings.h"

namespace cloudkeep::aws {

namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool IsAwsEndpointHost(const std::string& host) {
  std::string h = host.substr(0, host.find(':'));
  return h.ends_with(".amazonaws.com");
}

bool IsRetryableS3(const std::string& code, long status) {
  if (status >= 500 || status == 429) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "Throttling" ||
         code == "ThrottlingException" || code == "RequestTimeTooSkewed" ||
         code == "InternalError" || code == "ServiceUnavailable";
}

}  // namespace

std::string S3Location::ToString() const {
  return "s3://" + bucket + "/" + prefix;
}

bool IsS3Url(std::string_view s) {
  return s.starts_with("s3://");
}

bool ValidBucketName(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  for (char c : name)
    if (!IsLowerAlnum(c) && c != '-' && c != '.') return false;
  return name.find("..") == std::string_view::npos;
}

Result<S3Location> ParseS3Url(std::string_view url) {
  if (!IsS3Url(url))
    return Status::Usage(fmt::format("invalid store URL '{}': expected s3://BUCKET/PREFIX", url));
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (!ValidBucketName(loc.bucket)) {
    return Status::Usage(fmt::format(
        "invalid bucket name '{}' in '{}': 3 to 63 characters of a-z, 0-9, '.' and '-', starting "
        "and ending with a letter or digit",
        loc.bucket, url));
  }
  std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
  while (prefix.ends_with("/")) prefix.pop_back();
  if (prefix.starts_with("/") || prefix.find("//") != std::string::npos)
    return Status::Usage(
        fmt::format("invalid prefix '{}' in '{}': empty path segment", prefix, url));
  for (unsigned char c : prefix) {
    if (c < 0x20 || c == 0x7f || c == '\\')
      return Status::Usage(
          fmt::format("invalid prefix in '{}': control characters and '\\' are not allowed", url));
  }
  for (const std::string& seg : Split(prefix, '/')) {
    if (seg == "." || seg == "..")
      return Status::Usage(
          fmt::format("invalid prefix '{}' in '{}': '.' and '..' segments", prefix, url));
  }
  if (prefix.size() > 512)
    return Status::Usage(fmt::format("prefix in '{}' is longer than 512 bytes", url));
  loc.prefix = prefix.empty() ? "" : prefix + "/";
  return loc;
}

std::string DefaultS3Endpoint(const std::string& region) {
  if (region.empty() || region == "us-east-1") return "https://s3.amazonaws.com";
  return "https://s3." + region + ".amazonaws.com";
}

Result<S3Target> S3RequestTarget(const std::string& endpoint, S3Addressing addressing,
                                 const std::string& bucket, const std::string& key) {
  CK_ASSIGN_OR_RETURN(Url u, ParseUrl(endpoint));
  std::string base = u.path;
  while (base.ends_with("/")) base.pop_back();
  bool virtual_hosted = addressing == S3Addressing::kVirtual;
  if (addressing == S3Addressing::kAuto)
    virtual_hosted = IsAwsEndpointHost(u.host) && bucket.find('.') == std::string::npos;
  S3Target t;
  if (virtual_hosted) {
    t.host = bucket + "." + u.host;
    t.path = base + "/" + key;
  } else {
    t.host = u.host;
    t.path = base + "/" + bucket + (key.empty() ? "" : "/" + key);
  }
  if (t.path.empty()) t.path = "/";
  t.url = u.scheme + "://" + t.host + UriEncode(t.path, true);
  return t;
}

Result<S3ListPage> ParseListObjectsV2(const XmlNode& root) {
  if (root.name != "ListBucketResult")
    return Status::Failure(fmt::format(
        "unexpected S3 response: <{}> where <ListBucketResult> was expected", root.name));
  S3ListPage page;
  for (const auto& c : root.children) {
    if (c.name != "Contents") continue;
    S3Object o;
    o.key = c.ChildText("Key");
    if (o.key.empty()) return Status::Failure("S3 listing has an entry without a key");
    std::string size = Trim(c.ChildText("Size"));
    auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), o.size);
    if (ec != std::errc() || end != size.data() + size.size() || size.empty())
      return Status::Failure(fmt::format("S3 listing: key '{}' has size '{}'", o.key, size));
    o.etag = Unquote(c.ChildText("ETag"));
    page.objects.push_back(std::move(o));
  }
  std::string truncated = Trim(root.ChildText("IsTruncated"));
  page.truncated = truncated == "true";
  if (!page.truncated && !truncated.empty() && truncated != "false")
    return Status::Failure(fmt::format("S3 listing: IsTruncated is '{}'", truncated));
  if (page.truncated) {
    page.next_token = root.ChildText("NextContinuationToken");
    if (page.next_token.empty())
      return Status::Failure("S3 listing is truncated but has no NextContinuationToken");
  }
  return page;
}

std::optional<S3Error> ParseS3Error(const XmlNode& root) {
  if (root.name != "Error") return std::nullopt;
  S3Error e{root.ChildText("Code"), root.ChildText("Message"), root.ChildText("Resource"),
            root.ChildText("RequestId")};
  if (e.code.empty()) return std::nullopt;
  return e;
}

std::string Md5Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  return Hex(std::string(reinterpret_cast<char*>(md), n));
}

std::string ContentMd5(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  unsigned char out[64];
  int len = EVP_EncodeBlock(out, md, static_cast<int>(n));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(len));
}

S3Client::S3Client(S3ClientOptions options, CredentialChain* credentials)
    : options_(std::move(options)), credentials_(credentials) {
  if (options_.endpoint.empty()) options_.endpoint = DefaultS3Endpoint(options_.region);
}

Result<S3Client::Reply> S3Client::Send(
    const std::string& method, const std::string& bucket, const std::string& key,
    const std::vector<std::pair<std::string, std::string>>& query,
    std::vector<std::pair<std::string, std::string>> headers, std::string_view body) {
  CK_ASSIGN_OR_RETURN(S3Target target,
                      S3RequestTarget(options_.endpoint, options_.addressing, bucket, key));
  std::string url = target.url;
  if (!query.empty()) {
    std::string qs;
    for (const auto& [k, v] : query)
      qs += (qs.empty() ? "?" : "&") + UriEncode(k, false) + "=" + UriEncode(v, false);
    url += qs;
  }
  int transport_failures = 0;
  bool renewed = false;
  Status last = Status::Failure(method + ": no attempt made");
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      retries_++;
      std::this_thread::sleep_for(std::chrono::milliseconds(
          BackoffMs(attempt - 1, options_.base_backoff_ms, options_.max_backoff_ms, BackoffRng())));
    }
    CK_ASSIGN_OR_RETURN(Credentials creds, credentials_->Get());
    SignableRequest sr;
    sr.method = method;
    sr.path = target.path;
    sr.query = query;
    sr.headers = headers;
    sr.headers.emplace_back("Host", target.host);
    sr.body = std::string(body);
    SigningParams sp;
    sp.region = options_.region;
    sp.service = "s3";
    sp.time = SystemClock::Default().Now();
    sp.normalize_path = false;
    sp.sign_body = true;
    SignHeaders(sr, creds, sp);
    HttpRequest req;
    req.method = method;
    req.url = url;
    req.headers = std::move(sr.headers);
    req.body = std::move(sr.body);
    req.timeout_ms = options_.timeout_ms;
    auto resp = HttpSend(req);
    if (!resp.ok()) {
      log::Debug("s3 {} {}: {} (attempt {})", method, key, resp.status().message(), attempt + 1);
      last = resp.status();
      if (++transport_failures >= options_.max_transport_attempts) return last;
      continue;
    }
    Reply reply;
    reply.status = resp->status;
    reply.headers = std::move(resp->headers);
    reply.body = std::move(resp->body);
    if (reply.status >= 200 && reply.status < 300) return reply;
    if (auto doc = ParseXml(reply.body); doc.ok()) {
      if (auto e = ParseS3Error(*doc)) reply.error = *e;
    }
    if (reply.error.code.empty()) reply.error.code = fmt::format("HTTP{}", reply.status);
    log::Debug("s3 {} {}: HTTP {} {} (attempt {})", method, key, reply.status, reply.error.code,
               attempt + 1);
    if (reply.error.code == "ExpiredToken" && !renewed) {
      renewed = true;
      credentials_->Invalidate();
      continue;
    }
    if (!IsRetryableS3(reply.error.code, reply.status) || attempt + 1 == options_.max_attempts)
      return reply;
    last = Status::Failure(fmt::format("{} failed: {}", method, reply.error.code));
  }
  return last;
}

Status S3Client::ErrorStatus(const std::string& what, const std::string& bucket,
                             const std::string& key, const Reply& reply) const {
  const std::string& c = reply.error.code;
  std::string where =
      key.empty() ? fmt::format("s3://{}", bucket) : fmt::format("s3://{}/{}", bucket, key);
  if (c == "NoSuchBucket" || (key.empty() && reply.status == 404))
    return Status::Usage(
        fmt::format("bucket '{}' does not exist at {}", bucket, options_.endpoint));
  if (c == "InvalidAccessKeyId")
    return Status::Usage(
        fmt::format("{} {}: the access key id is not known to {} (InvalidAccessKeyId)", what, where,
                    options_.endpoint));
  if (c == "SignatureDoesNotMatch")
    return Status::Usage(fmt::format(
        "{} {}: {} rejected the request signature (SignatureDoesNotMatch): the secret access key "
        "does not match the access key id",
        what, where, options_.endpoint));
  if (c == "AccessDenied" || reply.status == 403)
    return Status::Failure(
        fmt::format("{} {}: access denied by {} ({})", what, where, options_.endpoint, c));
  if (c == "AuthorizationHeaderMalformed" || c == "PermanentRedirect" ||
      c == "IllegalLocationConstraintException")
    return Status::Usage(fmt::format("{} {}: region '{}' is wrong for this bucket ({}: {})", what,
                                     where, options_.region, c, reply.error.message));
  return Status::Failure(
      fmt::format("{} {}: HTTP {} {}{}", what, where, reply.status, c,
                  reply.error.message.empty() ? "" : ": " + reply.error.message));
}

Result<bool> S3Client::PutIfAbsent(const std::string& bucket, const std::string& key,
                                   std::string_view data) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("PUT", bucket, key, {},
                                    {{"Content-MD5", ContentMd5(data)},
                                     {"If-None-Match", "*"},
                                     {"Content-Type", "application/octet-stream"}},
                                    data));
  if (r.status == 412) return false;
  // A retried PUT whose first attempt did land also answers 412: the object is there.
  if (r.status >= 200 && r.status < 300) return true;
  return ErrorStatus("upload of", bucket, key, r);
}

Status S3Client::Put(const std::string& bucket, const std::string& key, std::string_view data) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("PUT", bucket, key, {},
                                    {{"Content-MD5", ContentMd5(data)},
                                     {"Content-Type", "application/octet-stream"}},
                                    data));
  if (r.status >= 200 && r.status < 300) return Status::Ok();
  return ErrorStatus("upload of", bucket, key, r);
}

Result<std::optional<std::string>> S3Client::Get(const std::string& bucket,
                                                 const std::string& key) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("GET", bucket, key, {}, {}, {}));
  if (r.status == 404 && r.error.code != "NoSuchBucket") return std::optional<std::string>();
  if (r.status < 200 || r.status >= 300) return ErrorStatus("download of", bucket, key, r);
  // A single-part upload's ETag is the hex MD5 of its bytes; a multipart one has a '-'.
  auto it = r.headers.find("etag");
  if (it != r.headers.end()) {
    std::string etag = AsciiLower(Unquote(it->second));
    if (etag.size() == 32 && etag.find('-') == std::string::npos && etag != Md5Hex(r.body))
      return Status::Failure(fmt::format(
          "download of s3://{}/{}: the bytes received do not match the object's MD5 (ETag {})",
          bucket, key, etag));
  }
  return std::optional<std::string>(std::move(r.body));
}

Result<std::optional<uint64_t>> S3Client::Head(const std::string& bucket, const std::string& key) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("HEAD", bucket, key, {}, {}, {}));
  if (r.status == 404) return std::optional<uint64_t>();
  if (r.status < 200 || r.status >= 300) return ErrorStatus("HEAD of", bucket, key, r);
  uint64_t size = 0;
  if (auto it = r.headers.find("content-length"); it != r.headers.end())
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), size);
  return std::optional<uint64_t>(size);
}

Status S3Client::Delete(const std::string& bucket, const std::string& key) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("DELETE", bucket, key, {}, {}, {}));
  if ((r.status >= 200 && r.status < 300) || (r.status == 404 && r.error.code == "NoSuchKey"))
    return Status::Ok();
  return ErrorStatus("delete of", bucket, key, r);
}

Result<S3ListPage> S3Client::ListPage(const std::string& bucket, const std::string& prefix,
                                      const std::string& continuation_token) {
  std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"}, {"prefix", prefix}};
  if (!continuation_token.empty()) q.emplace_back("continuation-token", continuation_token);
  CK_ASSIGN_OR_RETURN(Reply r, Send("GET", bucket, "", q, {}, {}));
  if (r.status < 200 || r.status >= 300) return ErrorStatus("listing of", bucket, prefix, r);
  CK_ASSIGN_OR_RETURN(XmlNode doc, ParseXml(r.body));
  auto page = ParseListObjectsV2(doc);
  if (!page.ok())
    return page.status().Annotate(fmt::format("listing of s3://{}/{}", bucket, prefix));
  return page;
}

Result<std::vector<S3Object>> S3Client::List(const std::string& bucket, const std::string& prefix) {
  std::vector<S3Object> out;
  std::string token;
  for (int pages = 0;; ++pages) {
    CK_ASSIGN_OR_RETURN(S3ListPage page, ListPage(bucket, prefix, token));
    for (auto& o : page.objects) out.push_back(std::move(o));
    if (!page.truncated) break;
    if (page.next_token == token)
      return Status::Failure(fmt::format(
          "listing of s3://{}/{}: the server repeated a continuation token", bucket, prefix));
    token = page.next_token;
  }
  return out;
}

Status S3Client::CheckBucket(const std::string& bucket) {
  CK_ASSIGN_OR_RETURN(Reply r, Send("HEAD", bucket, "", {}, {}, {}));
  if (r.status >= 200 && r.status < 300) return Status::Ok();
  // HEAD has no body: tell the codes apart by status.
  if (r.status == 404) r.error.code = "NoSuchBucket";
  if (r.status == 403) {
    // Ask again with a GET (a one-key listing), whose error body names the cause.
    CK_ASSIGN_OR_RETURN(Reply g,
                        Send("GET", bucket, "", {{"list-type", "2"}, {"max-keys", "1"}}, {}, {}));
    if (g.status >= 200 && g.status < 300) return Status::Ok();
    return ErrorStatus("access to", bucket, "", g);
  }
  return ErrorStatus("access to", bucket, "", r);
}

}  // namespace cloudkeep::aws
