// HydrateBackend: serve a Backend at once while copying it into a file or
// block device in the background; when the copy is complete, the export is
// served from that target alone.
//
// The export is split into regions (the store's chunk size). A bitmap says
// which regions of the target already hold the export's bytes: reads take
// those from the target and the rest from the base. A background thread
// copies every region not yet done, in order. Client writes go to the
// target: a write covering part of a region that is not done first fills
// the rest of the region from the base, and then marks it done, so the
// background copy never overwrites a client's bytes. A range lock makes the
// background copy of a region and a client write to it take turns.
//
// Crash safety (docs/nbd-map-format.md): the bitmap lives beside the target
// in a map file (PATH.cloudkeep-hydrate). A bit reaches the map only after
// the target's data for it is durable (fdatasync), so after a kill -9 at any
// moment every region the map marks done is really there, and running the
// same hydrate again resumes from the map. The map exists exactly while the
// target is incomplete: it is created (atomically) before the first byte of
// the target is written and removed after the final fdatasync. A target
// without its map is complete; a target with one is not, and says whose
// copy it is.
//
// Durability: Flush() fdatasyncs the target and then persists the map, so
// flushed client writes survive a crash and a resume never copies over them.
//
// Thread safety: every method may be called concurrently; Start/Stop from
// one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/duration.h"
#include "nbd/backend.h"
#include "nbd/durable_bitmap.h"
#include "nbd/file_backend.h"
#include "nbd/range_lock.h"

namespace cloudkeep::nbd {

struct HydrateOptions {
  std::string map_path;               // the map file; HydrateMapPath(target) for a file
  std::string identity;               // what is being copied ("snapshot snap-… of …")
  uint64_t region_size = 512 * 1024;  // a power of two
  uint64_t batch_bytes = 8 << 20;     // the background copy reads this much at a time
  // The background copy makes its progress durable this often (bytes or time).
  uint64_t sync_every_bytes = 64ull << 20;
  Micros sync_every = std::chrono::seconds(2);
};

struct HydrateProgress {
  uint64_t done_bytes = 0;  // bytes of the target that hold the export's bytes
  uint64_t total_bytes = 0;
  uint64_t copied_bytes = 0;        // copied by the background thread in this run
  double bytes_per_second = 0;      // of the background copy in this run
  uint64_t resumed_from_bytes = 0;  // done when this run started (0: a fresh start)
  bool complete = false;            // the target holds everything; the map is gone
  uint64_t failed_regions = 0;      // regions the base could not read (left not done)
  std::string error;                // why the background copy stopped, if it did
};

// What PrepareHydrateTarget found.
struct HydrateTarget {
  std::shared_ptr<FileBackend> target;
  bool created = false;  // a new file was made
  bool resumed = false;  // a map was found: an interrupted hydrate goes on
};

// Opens (or creates, sparse, `size` bytes) the target of a hydrate, and
// decides between a fresh start and a resume by the map's presence:
//  - map present: resume; the target must exist and be large enough, and
//    the map must be a hydrate of `identity` (checked again by Open);
//  - no map, no target file: a new file; the map is created first;
//  - no map, an existing regular file: kUsage (a finished hydrate or some
//    other file; it is never overwritten);
//  - a block device: must not be mounted or held open (O_EXCL), at least
//    `size` bytes, and `map_path` must not be under /dev (not durable).
Result<HydrateTarget> PrepareHydrateTarget(const std::string& path, uint64_t size,
                                           const HydrateOptions& options);

class HydrateBackend : public Backend {
 public:
  // `target` must be writable and at least base->Size() bytes. Creates the
  // map if PrepareHydrateTarget did not leave one (a fresh start), or loads it.
  static Result<std::unique_ptr<HydrateBackend>> Open(std::shared_ptr<Backend> base,
                                                      std::shared_ptr<FileBackend> target,
                                                      HydrateOptions options);
  ~HydrateBackend() override;  // Stop()

  // Starts the background copy (once).
  void Start();
  // Stops the background copy and makes its progress durable; idempotent.
  void Stop();
  HydrateProgress Progress() const;
  // Blocks until the copy is complete or stopped, or `timeout` passes;
  // returns Progress().complete.
  bool WaitComplete(Micros timeout);

  uint64_t Size() const override { return size_; }
  BackendCaps Caps() const override;
  BlockSize BlockSizes() const override { return target_->BlockSizes(); }
  std::string Description() const override;
  Status Pread(void* buf, uint64_t count, uint64_t offset) override;
  Status Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) override;
  Status Flush() override;
  Status Trim(uint64_t count, uint64_t offset, bool fua) override;
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) override;
  Status Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) override;
  Status Cache(uint64_t count, uint64_t offset) override;

  const std::string& map_path() const { return options_.map_path; }

 private:
  HydrateBackend(std::shared_ptr<Backend> base, std::shared_ptr<FileBackend> target,
                 HydrateOptions options);
  std::shared_ptr<Backend> Base() const;
  bool Done(uint64_t r) const { return complete_.load() || bitmap_->Test(r); }
  uint64_t RegionLen(uint64_t r) const { return std::min(rs_, size_ - r * rs_); }
  // Copies not-done regions in [first, last] from the base; caller holds their lock.
  Status CopyRegions(uint64_t first, uint64_t last, std::vector<char>* buf, bool background);
  Status Write(const void* buf, uint64_t count, uint64_t offset, bool fua, bool zero);
  // fdatasync of the target, then the map; completes the hydrate when all is done.
  Status Sync();
  void Run();

  std::shared_ptr<FileBackend> target_;
  HydrateOptions options_;
  uint64_t size_ = 0;
  uint64_t rs_ = 0;
  std::unique_ptr<DurableBitmap> bitmap_;
  RangeLock locks_;
  std::mutex sync_mu_;  // one Sync at a time

  mutable std::mutex mu_;  // guards base_, the fields of progress_ below, stop_
  std::condition_variable cv_;
  std::shared_ptr<Backend> base_;  // released when complete
  bool stop_ = false;
  bool running_ = false;
  std::thread thread_;
  std::atomic<bool> complete_{false};
  uint64_t resumed_from_ = 0;
  uint64_t copied_ = 0;
  uint64_t failed_regions_ = 0;
  std::string error_;
  uint64_t start_ns_ = 0, end_ns_ = 0;
};

}  // namespace cloudkeep::nbd
