// Provider: where snapshots are taken and kept.
//
// One narrow interface, as nbdkit's plugins: the embedded local store
// (providers/local) and AWS EBS (providers/aws) implement it, and every
// command — create, list, show, delete, prune — is written once against it.
//
// Creating a snapshot is split in two, following docs/design.md's data flow:
//  - Capture() runs while filesystems may be frozen and databases locked. It
//    must be short (FICLONE, EBS CreateSnapshots, a btrfs snapshot) and must
//    write nothing to the captured volumes' filesystems.
//  - Finalize() runs after the thaw: it copies data into the store or waits
//    for the cloud, then records the metadata.
// A provider instance is used by one thread at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "snapshot/model.h"

namespace cloudkeep::snapshot {

// What the consistency layer learnt while the volumes were quiet; recorded
// with every snapshot of the run.
struct SnapshotMetadata {
  Consistency consistency = Consistency::kCrash;
  std::map<std::string, std::string> tags;
  std::string description;
  std::map<std::string, std::string> database;
  std::optional<int64_t> freeze_us;
  std::optional<int64_t> lock_us;
};

struct CreateRequest {
  std::vector<Volume> volumes;
  bool all_attached = false;  // AWS: one CreateSnapshots call for the instance
  bool exclude_boot = false;  // AWS: with all_attached
  bool wait = false;          // wait until the snapshot is usable (AWS: 'completed')
  SnapshotMetadata metadata;  // as known before the capture
};

// The provider's record of a capture between the two phases.
class CaptureHandle {
 public:
  virtual ~CaptureHandle() = default;
  // Human notes for the output ("read in place: crash-consistent only if the
  // volume was being written").
  std::vector<std::string> notes;
};

struct SnapshotFilter {
  std::vector<std::string> volume_ids;  // any of these; empty = all
  std::optional<TimePoint> created_before;
  std::map<std::string, std::string> tags;  // all of these
};

enum class DeleteResult { kDeleted, kAlreadyGone, kSkipped, kFailed, kWouldDelete };
const char* DeleteResultName(DeleteResult r);

struct DeleteOutcome {
  std::string snapshot_id;
  DeleteResult result = DeleteResult::kFailed;
  std::string reason;  // for skipped / failed
};

struct DeleteOptions {
  bool dry_run = false;
  int concurrency = 0;  // 0: provider default
};

struct RestoreOptions {
  bool force = false;  // overwrite an existing regular file
};

struct VerifyProblem {
  std::string chunk;                   // chunk id or manifest name
  std::string problem;                 // "hash mismatch", "missing", "unreadable manifest"
  std::vector<std::string> snapshots;  // snapshots it breaks
  std::vector<uint64_t> offsets;       // byte offsets in those snapshots (first few)
};

struct VerifyReport {
  uint64_t snapshots_checked = 0;
  uint64_t chunks_checked = 0;
  uint64_t bytes_checked = 0;
  uint64_t unreferenced_chunks = 0;
  std::vector<VerifyProblem> problems;
  bool ok() const { return problems.empty(); }
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0;

  // Volumes attached to this machine; `include_all` adds loop and ram devices.
  virtual Result<std::vector<Volume>> ListVolumes(bool include_all) = 0;
  // A VOLUME argument: a device, an image path or a provider id. kUsage when unknown.
  virtual Result<Volume> ResolveVolume(const std::string& spec) = 0;
  // The canonical volume id a `-v` filter means, even if the volume is gone.
  virtual std::string CanonicalVolumeId(const std::string& spec) = 0;

  // Before anything is frozen: take locks, clean up after dead runs, check
  // the request. Waiting happens here, never while filesystems are frozen.
  virtual Status Prepare(const CreateRequest& request) {
    (void)request;
    return Status::Ok();
  }
  virtual Result<std::unique_ptr<CaptureHandle>> Capture(const CreateRequest& request) = 0;
  virtual Result<std::vector<Snapshot>> Finalize(std::unique_ptr<CaptureHandle> capture,
                                                 const SnapshotMetadata& metadata) = 0;
  // Undoes a capture that will not be finalized (the run failed after it).
  virtual void Abandon(std::unique_ptr<CaptureHandle> capture) = 0;

  virtual Result<std::vector<Snapshot>> ListSnapshots(const SnapshotFilter& filter) = 0;
  // kUsage if the id is malformed or unknown.
  virtual Result<Snapshot> GetSnapshot(const std::string& id) = 0;
  virtual Result<std::vector<DeleteOutcome>> DeleteSnapshots(const std::vector<std::string>& ids,
                                                             const DeleteOptions& options) = 0;

  // Optional: providers that cannot restore to a path or re-read their data
  // say so with a kUsage Status naming the provider.
  virtual Status Restore(const std::string& id, const std::string& target,
                         const RestoreOptions& options);
  virtual Result<VerifyReport> Verify(const std::vector<std::string>& ids);
};

}  // namespace cloudkeep::snapshot
