// ObjectBackend: the narrow interface a snapshot store's bytes go through,
// so that one store format (docs/store-format.md, names in store_layout.h)
// lives in a directory or in an S3 bucket.
//
// Keys are store_layout.h's keys ('/'-separated, relative to the store root).
// Every backend offers exactly these operations and states what it guarantees
// (Guarantees below); the store's crash safety is built only on what every
// backend guarantees:
//   - PutIfAbsent is atomic: of two writers of one key, one wins and the
//     other is told the key exists; a reader sees either no object or all of
//     its bytes, never a part.
//   - After PutIfAbsent returns, Get and List see the object (S3 has been
//     strongly read-after-write consistent since December 2020; radosgw is).
//   - There is no rename and no lock primitive: a manifest is put last, after
//     every chunk it names; exclusive work takes a lock object (store.h).
//
// DirBackend: files under a root directory; put-if-absent is a write to a
// temporary name, fsync, then link(2) to the key (EEXIST: present) and an
// fsync of the directory, so a key never names missing bytes.
// S3Backend: objects under s3://BUCKET/PREFIX through aws::S3Client (Content-
// MD5 on every upload, MD5 re-check on download, retries with capped backoff
// and full jitter).
//
// Thread safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credentials.h"
#include "aws/s3.h"
#include "core/status.h"

namespace cloudkeep::local {

struct ObjectInfo {
  std::string key;  // relative to the store root
  uint64_t size = 0;
};

class ObjectBackend {
 public:
  struct Guarantees {
    bool atomic_put_if_absent = true;  // always true: the store relies on it
    bool rename = false;               // atomic rename of a key (directories)
    bool flock = false;                // advisory file locks (directories)
    bool durable_on_return = true;     // a returned put survives a crash of this host
  };
  virtual ~ObjectBackend() = default;
  // "s3://bucket/prefix/" or the directory, for messages.
  virtual std::string Describe() const = 0;
  virtual Guarantees guarantees() const = 0;
  // True when written, false when an object with the key already existed.
  virtual Result<bool> PutIfAbsent(const std::string& key, std::string_view data) = 0;
  // Writes or replaces (only for objects one writer owns: the lock object).
  virtual Status Put(const std::string& key, std::string_view data) = 0;
  // nullopt when there is no object with the key.
  virtual Result<std::optional<std::string>> Get(const std::string& key) const = 0;
  // Every object whose key starts with `prefix`, sorted by key; the backend
  // follows its own pagination.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) const = 0;
  // Removing a key that does not exist succeeds.
  virtual Status Delete(const std::string& key) = 0;
};

class DirBackend final : public ObjectBackend {
 public:
  explicit DirBackend(std::string root) : root_(std::move(root)) {}
  std::string Describe() const override { return root_; }
  Guarantees guarantees() const override { return {true, true, true, true}; }
  Result<bool> PutIfAbsent(const std::string& key, std::string_view data) override;
  Status Put(const std::string& key, std::string_view data) override;
  Result<std::optional<std::string>> Get(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) const override;
  Status Delete(const std::string& key) override;

 private:
  Status MakeParents(const std::string& key) const;
  std::string root_;
};

class S3Backend final : public ObjectBackend {
 public:
  S3Backend(aws::S3Location location, std::unique_ptr<aws::S3Client> client,
            std::unique_ptr<aws::CredentialChain> credentials, std::unique_ptr<aws::Imds> imds);
  std::string Describe() const override { return location_.ToString(); }
  Guarantees guarantees() const override { return {true, false, false, true}; }
  Result<bool> PutIfAbsent(const std::string& key, std::string_view data) override;
  Status Put(const std::string& key, std::string_view data) override;
  Result<std::optional<std::string>> Get(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) const override;
  Status Delete(const std::string& key) override;
  aws::S3Client& client() { return *client_; }

 private:
  aws::S3Location location_;
  std::unique_ptr<aws::Imds> imds_;
  std::unique_ptr<aws::CredentialChain> credentials_;
  std::unique_ptr<aws::S3Client> client_;
};

struct S3BackendOptions {
  std::string url;           // s3://BUCKET/PREFIX
  std::string endpoint_url;  // --endpoint-url; empty: AWS's endpoint for the region
  std::string region;        // --region
  std::string profile;       // --profile
  aws::S3Addressing addressing = aws::S3Addressing::kAuto;
};
// Parses the URL (kUsage naming it), resolves credentials and region through
// the AWS credential chain, and checks that the bucket answers (kUsage naming
// the bucket when it does not exist, naming the endpoint when nothing answers).
Result<std::unique_ptr<S3Backend>> OpenS3Backend(const S3BackendOptions& options);

}  // namespace cloudkeep::local
