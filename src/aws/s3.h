// An S3 REST client for the snapshot store's S3 backend: object PUT (plain
// or create-only with If-None-Match: *), GET, HEAD, DELETE and
// ListObjectsV2, signed with SigV4 (service "s3", unsigned-path rules:
// no dot-segment removal, x-amz-content-sha256 on every request).
//
// Integrity: every PUT carries Content-MD5, which S3 checks before it stores
// the object (400 BadDigest otherwise); every GET of an object uploaded in one
// part is checked against its ETag (the hex MD5 of the bytes) before it is
// returned, so a body damaged on the way is an error, not data.
//
// Retries: lost connections, timeouts, 5xx, 503 SlowDown and the 4xx codes S3
// documents as transient (RequestTimeout, Throttling, 429) are retried with
// capped exponential backoff and full jitter (aws/backoff.h); everything else
// comes back to the caller at once. Transport failures are retried fewer
// times, so that a wrong --endpoint-url fails in seconds.
//
// Addressing: path-style (http://HOST/BUCKET/KEY) or virtual-hosted
// (http://BUCKET.HOST/KEY). kAuto picks virtual-hosted for AWS's own
// endpoints when the bucket name is a DNS label, path-style otherwise (as
// every S3-compatible server accepts it).
//
// The parsers (ParseS3Url, ParseListObjectsV2, ParseS3Error) take untrusted
// input, hold no state and have unit tests and a fuzz target. S3Client is
// safe for concurrent use (HttpSend keeps one curl handle per thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/xml.h"
#include "core/status.h"

namespace cloudkeep::aws {

// s3://BUCKET[/PREFIX]: the prefix has no leading '/' and, when not empty,
// ends with exactly one '/'. kUsage naming the value for anything else.
struct S3Location {
  std::string bucket;
  std::string prefix;
  std::string ToString() const;  // s3://BUCKET/PREFIX
};
bool IsS3Url(std::string_view s);
Result<S3Location> ParseS3Url(std::string_view url);
// 3-63 characters of [a-z0-9.-], starting and ending with a letter or digit.
bool ValidBucketName(std::string_view name);

enum class S3Addressing { kAuto, kPath, kVirtual };

// Where one request goes: the URL for curl, the Host header and the path to
// sign (not yet percent-encoded), from the endpoint, bucket and key.
struct S3Target {
  std::string url;
  std::string host;
  std::string path;
};
Result<S3Target> S3RequestTarget(const std::string& endpoint, S3Addressing addressing,
                                 const std::string& bucket, const std::string& key);
// https://s3.REGION.amazonaws.com (s3.amazonaws.com for us-east-1).
std::string DefaultS3Endpoint(const std::string& region);

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without the quotes
};
struct S3ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};
// <ListBucketResult>: kFailure for any other root or a truncated page
// without a continuation token.
Result<S3ListPage> ParseListObjectsV2(const XmlNode& root);

struct S3Error {
  std::string code, message, resource, request_id;
};
// <Error><Code/><Message/><Resource/><RequestId/></Error>, nullopt otherwise.
std::optional<S3Error> ParseS3Error(const XmlNode& root);

struct S3ClientOptions {
  std::string endpoint;  // --endpoint-url, else DefaultS3Endpoint(region)
  std::string region;
  S3Addressing addressing = S3Addressing::kAuto;
  int max_attempts = 8;
  int max_transport_attempts = 3;
  int base_backoff_ms = 100;
  int max_backoff_ms = 10000;
  long timeout_ms = 120000;
};

class S3Client {
 public:
  S3Client(S3ClientOptions options, CredentialChain* credentials);

  // Writes the object only if no object has the key (If-None-Match: *):
  // true when written, false when the key existed (412).
  Result<bool> PutIfAbsent(const std::string& bucket, const std::string& key,
                           std::string_view data);
  // Writes (or overwrites) the object.
  Status Put(const std::string& bucket, const std::string& key, std::string_view data);
  // The object's bytes, nullopt when there is no such key.
  Result<std::optional<std::string>> Get(const std::string& bucket, const std::string& key);
  // The object's size, nullopt when there is no such key.
  Result<std::optional<uint64_t>> Head(const std::string& bucket, const std::string& key);
  // Deleting a key that does not exist succeeds (as S3 itself says).
  Status Delete(const std::string& bucket, const std::string& key);
  // One page of ListObjectsV2 (up to 1000 keys).
  Result<S3ListPage> ListPage(const std::string& bucket, const std::string& prefix,
                              const std::string& continuation_token);
  // Every key under `prefix`, following continuation tokens.
  Result<std::vector<S3Object>> List(const std::string& bucket, const std::string& prefix);
  // HEAD of the bucket: kUsage naming it when it does not exist, kFailure
  // naming the endpoint or the keys when S3 refuses.
  Status CheckBucket(const std::string& bucket);

  uint64_t retries() const { return retries_; }
  const S3ClientOptions& options() const { return options_; }

 private:
  struct Reply {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;
    S3Error error;  // when status is not 2xx
  };
  Result<Reply> Send(const std::string& method, const std::string& bucket, const std::string& key,
                     const std::vector<std::pair<std::string, std::string>>& query,
                     std::vector<std::pair<std::string, std::string>> headers,
                     std::string_view body);
  Status ErrorStatus(const std::string& what, const std::string& bucket, const std::string& key,
                     const Reply& reply) const;
  S3ClientOptions options_;
  CredentialChain* credentials_;
  std::atomic<uint64_t> retries_{0};
};

// Base64 of the MD5 of `data` (the Content-MD5 header).
std::string ContentMd5(std::string_view data);
std::string Md5Hex(std::string_view data);

}  // namespace cloudkeep::aws
