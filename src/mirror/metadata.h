// Metadata: a node's external metadata file (docs/mirror-format.md).
//
// It holds the resource and node it belongs to, the device size, the
// generation identifiers, state flags, the activity log and the dirty
// bitmap for the peer. The backing device itself carries no metadata, so
// it stays byte-identical to what the NBD client sees.
//
// Crash safety: the superblock (everything but the bitmap) is written to
// one of two 4 KiB slots in turn, each with a sequence number and a CRC-32C,
// then fdatasync; a torn write spoils only the slot being written and the
// other still holds the previous state. Bitmap pages are written in place:
// bits are set (and made durable) before the write they stand for, and a
// torn page can only leave extra set bits — more resync, never less.
// `Create` writes a whole new file through write-fsync-rename.
//
// The activity log bounds what a primary that crashes must resync: before a
// write touches an extent (al_extent_size) not in the log, the extent is
// recorded (one superblock write); extents with no write in flight leave the
// log least recently used first. After a crash as primary every logged
// extent is marked dirty ("one write ahead").
//
// Thread safety: every method is internally locked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "mirror/bitmap.h"
#include "mirror/generation.h"

namespace cloudkeep::mirror {

constexpr uint32_t kMetaVersion = 1;
constexpr uint64_t kSlotBytes = 4096;
constexpr uint64_t kBitmapOffset = 2 * kSlotBytes;
constexpr uint32_t kMaxAlExtents = 400;

enum MetaFlags : uint32_t {
  kFlagPrimary = 1,  // set while this node is primary; still set at start = it crashed as primary
  kFlagInconsistent = 2,    // a resync into this copy has started and not finished
  kFlagOutdated = 4,        // the peer is known to have newer data
  kFlagCrashedPrimary = 8,  // it crashed as primary; cleared by the next resync
  kFlagDiscard = 16,        // the operator chose to discard this copy's changes (split brain)
};

struct Superblock {
  uint64_t seq = 0;
  std::string resource;
  std::string node;
  std::string peer;
  uint64_t device_size = 0;
  uint64_t granularity = 0;
  uint64_t al_extent_size = 0;
  uint32_t al_slots = 0;
  uint32_t flags = 0;
  Generations gen;
  uint64_t created_unix = 0;
  std::vector<uint64_t> al;  // extent numbers in the activity log
  // The newest fencing token this node accepted writes under (issue 13): a
  // restarted standby still refuses a deposed primary's older token.
  uint64_t max_token = 0;

  // 4 KiB slot with the CRC in its last 4 bytes.
  std::vector<uint8_t> Serialize() const;
  // kFailure naming the problem when the slot is not a valid superblock.
  static Result<Superblock> Parse(const uint8_t* data, size_t size);
};

class Metadata {
 public:
  // Writes a new metadata file at `path` (atomically) and opens it.
  static Result<std::unique_ptr<Metadata>> Create(const std::string& path, const Superblock& sb);
  // Opens an existing file: kUsage when it is missing or not cloudkeep mirror metadata.
  static Result<std::unique_ptr<Metadata>> Open(const std::string& path);
  // Reads the superblock only (for status and checks without opening for writing).
  static Result<Superblock> Peek(const std::string& path);

  Superblock sb() const;
  // Applies `fn` to the superblock and writes it to the other slot durably.
  Status Update(const std::function<void(Superblock&)>& fn);

  // Bitmap. MarkDirty persists the pages it changed before returning,
  // unless every extent of the range is in the activity log: then a crash
  // marks those whole extents anyway (RecoverActivityLog), so the bits can
  // wait until the extent leaves the log (AlBegin flushes the bitmap before
  // it drops an extent) — DRBD's lazy bitmap. This keeps the write path
  // free of metadata syncs while the peer is away, at any granularity.
  Status MarkDirty(uint64_t offset, uint64_t length);
  Status MarkAllDirty();
  // Clears in memory; durable at the next FlushBitmap (a crash before leaves bits set: safe).
  void ClearInMemory(uint64_t offset, uint64_t length);
  void ClearAllInMemory();
  Status FlushBitmap();
  // ORs `other` in and persists.
  Status MergeBitmap(const Bitmap& other);
  Bitmap BitmapCopy() const;
  uint64_t DirtyBytes() const;
  uint64_t DirtyBits() const;
  bool AnyDirty(uint64_t offset, uint64_t length) const;
  uint64_t granularity() const;

  // Activity log: AlBegin before a write (may write the superblock), AlEnd after it.
  Status AlBegin(uint64_t offset, uint64_t length);
  void AlEnd(uint64_t offset, uint64_t length);
  // Startup after a crash as primary: the logged extents become dirty, the log empties.
  Status RecoverActivityLog();

  const std::string& path() const { return path_; }

 private:
  Metadata() = default;
  Status WriteSuperblockLocked();
  Status FlushBitmapLocked();
  std::vector<uint64_t> Extents(uint64_t offset, uint64_t length) const;

  std::string path_;
  UniqueFd fd_;
  mutable std::mutex mu_;
  std::condition_variable al_cv_;
  Superblock sb_;
  int next_slot_ = 0;
  Bitmap bitmap_;
  // Activity log in memory: extent -> writes in flight, and LRU order.
  std::map<uint64_t, int> al_refs_;
  std::list<uint64_t> al_lru_;  // front = most recently used
};

}  // namespace cloudkeep::mirror
