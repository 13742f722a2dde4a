// LocalProvider: EBS semantics on any machine, kept in a LocalStore.
//
// Volumes are block devices or image files. Capture clones an image file
// with FICLONE when its filesystem supports reflinks (XFS, btrfs) — an
// instant, point-in-time copy — and reads everything else in place.
// Finalize exports the clone (or the volume) into the store as fixed-size,
// content-addressed chunks, several threads hashing and compressing at once.
#pragma once

#include <memory>
#include <string>

#include "core/fs.h"
#include "providers/local/store.h"
#include "snapshot/provider.h"

namespace cloudkeep::local {

struct LocalProviderOptions {
  std::string store_root;  // empty: LocalStore::DefaultRoot(); s3://BUCKET/PREFIX: in S3
  // For an S3 store: --endpoint-url, --region, --profile (else the AWS chain's).
  std::string endpoint_url;
  std::string region;
  std::string profile;
  Micros lock_wait = std::chrono::minutes(10);
  int threads = 0;  // 0: one per core, at least 2
  int zstd_level = 1;
  bool no_reflink = false;  // read image files in place even where FICLONE works
  SystemPaths paths;        // where the mount table is read (restore's "is it mounted")
  bool reread = false;      // read every image in full, never reuse an unchanged file's chunks
};

class LocalProvider final : public snapshot::Provider {
 public:
  explicit LocalProvider(LocalProviderOptions options);
  ~LocalProvider() override;

  std::string name() const override { return "local"; }
  Result<std::vector<snapshot::Volume>> ListVolumes(bool include_all) override;
  Result<snapshot::Volume> ResolveVolume(const std::string& spec) override;
  std::string CanonicalVolumeId(const std::string& spec) override;

  Status Prepare(const snapshot::CreateRequest& request) override;
  Result<std::unique_ptr<snapshot::CaptureHandle>> Capture(
      const snapshot::CreateRequest& request) override;
  Result<std::vector<snapshot::Snapshot>> Finalize(
      std::unique_ptr<snapshot::CaptureHandle> capture,
      const snapshot::SnapshotMetadata& metadata) override;
  void Abandon(std::unique_ptr<snapshot::CaptureHandle> capture) override;

  Result<std::vector<snapshot::Snapshot>> ListSnapshots(
      const snapshot::SnapshotFilter& filter) override;
  Result<snapshot::Snapshot> GetSnapshot(const std::string& id) override;
  Result<std::vector<snapshot::DeleteOutcome>> DeleteSnapshots(
      const std::vector<std::string>& ids, const snapshot::DeleteOptions& options) override;
  Status Restore(const std::string& id, const std::string& target,
                 const snapshot::RestoreOptions& options) override;
  Result<snapshot::VerifyReport> Verify(const std::vector<std::string>& ids) override;

  const std::string& store_root() const { return options_.store_root; }

 private:
  Result<LocalStore*> OpenStore(bool create, std::optional<LocalStore::LockMode> lock);
  LocalProviderOptions options_;
  std::unique_ptr<LocalStore> store_;
};

}  // namespace cloudkeep::local
