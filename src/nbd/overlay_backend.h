// OverlayBackend: a writable copy-on-write view of a read-only Backend.
//
// Writes go to a sparse overlay file at the same offsets as the export; the
// base is never written. A bitmap with one bit per block (4 KiB) says which
// blocks the overlay holds: reads take those blocks from the overlay and
// everything else from the base. A write that covers part of a block first
// copies the rest of the block from the base (read-modify-write). Trim and
// write-zeroes are recorded in the overlay as zero blocks (a punched hole
// with its bit set), so the base's bytes never show through again.
//
// With a path the overlay persists: FILE holds the data and
// FILE.cloudkeep-overlay the bitmap (docs/nbd-map-format.md), so stopping
// and serving again with the same FILE keeps every flushed write; a map
// that names another base is refused. Without one it is an unlinked
// temporary file, gone when the backend is.
//
// Durability: Flush() fdatasyncs the overlay, then writes the bitmap pages
// that changed and fdatasyncs the map; a bit reaches the map only after its
// block's data is durable, so after a crash every block the map claims holds
// data written before the last flush. FUA writes flush.
//
// Thread safety: every method may be called concurrently, for overlapping
// ranges too; writers of one block are serialised by a range lock, readers
// take no lock (a block's bit is set only after its data is in the overlay).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/fs.h"
#include "nbd/backend.h"
#include "nbd/durable_bitmap.h"
#include "nbd/range_lock.h"

namespace cloudkeep::nbd {

struct OverlayOptions {
  std::string path;  // "": an unlinked temporary file in tmp_dir
  std::string tmp_dir = "/var/tmp";
  std::string identity;        // what the base is; recorded in a persistent map
  uint32_t block_size = 4096;  // a power of two
};

class OverlayBackend : public Backend {
 public:
  // kUsage for a path that exists without its map (not an overlay), a map of
  // another base or size, or a path that is not a regular file.
  static Result<std::unique_ptr<OverlayBackend>> Open(std::shared_ptr<Backend> base,
                                                      OverlayOptions options);
  ~OverlayBackend() override;

  uint64_t Size() const override { return size_; }
  BackendCaps Caps() const override;
  BlockSize BlockSizes() const override { return base_->BlockSizes(); }
  std::string Description() const override;
  Status Pread(void* buf, uint64_t count, uint64_t offset) override;
  Status Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) override;
  Status Flush() override;
  Status Trim(uint64_t count, uint64_t offset, bool fua) override;
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) override;
  Status Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) override;
  Status Cache(uint64_t count, uint64_t offset) override;

  // The overlay data file ("" for a temporary one) and its map.
  const std::string& path() const { return options_.path; }
  std::string map_path() const { return bitmap_->path(); }
  // True when an existing overlay was opened again.
  bool resumed() const { return resumed_; }
  uint64_t blocks_written() const { return bitmap_->Count(); }

 private:
  OverlayBackend(std::shared_ptr<Backend> base, OverlayOptions options);
  // Reads block `b` as the export shows it now into `buf` (block_size bytes,
  // shorter for the last block); caller holds the block's range lock.
  Status ReadBlock(uint64_t b, char* buf, uint64_t* len);
  // Writes [offset, offset + count) — data, or zeroes when buf is null.
  Status Write(const void* buf, uint64_t count, uint64_t offset, bool fua);
  Status OverlayPread(void* buf, uint64_t count, uint64_t offset);
  Status OverlayPwrite(const void* buf, uint64_t count, uint64_t offset);
  Status OverlayZero(uint64_t count, uint64_t offset);

  std::shared_ptr<Backend> base_;
  OverlayOptions options_;
  uint64_t size_ = 0;
  uint64_t bs_ = 4096;
  UniqueFd fd_;
  std::unique_ptr<DurableBitmap> bitmap_;
  RangeLock locks_;
  std::mutex flush_mu_;
  bool resumed_ = false;
};

}  // namespace cloudkeep::nbd
