// SnapshotBackend: one snapshot of a LocalStore as a read-only NBD export.
//
// Nothing is restored: a read maps its offsets to chunks of the manifest's
// chunk table and reads each chunk with ChunkStore::Get, which decompresses
// it and checks it against its SHA-256 name. Decompressed chunks are kept in
// a bounded LRU cache; a chunk that several readers want at once is read and
// decompressed once (single flight) and the others wait for it. All-zero
// chunks are not stored: they read as zeroes and answer BLOCK_STATUS as
// hole|zero, and every other chunk as data.
//
// A chunk that fails verification (damaged, missing, wrong length) is an I/O
// error (EIO) for each read that touches it, with one log line naming the
// chunk and the offset; its bytes are never returned, and it is not cached.
//
// The store is opened with its shared lock, held for as long as the backend
// lives, so that a `snapshot delete` or `prune` cannot take chunks away from
// under an export (they wait for the lock; so do new snapshots).
//
// Thread safety: every method may be called from any number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/duration.h"
#include "nbd/backend.h"
#include "providers/local/manifest.h"
#include "providers/local/store.h"

namespace cloudkeep::local {

constexpr uint64_t kDefaultSnapshotCacheBytes = 256ull << 20;
// Smaller caches are raised to this (and to 8 chunks when chunks are larger).
constexpr uint64_t kMinSnapshotCacheBytes = 8ull << 20;

struct SnapshotBackendOptions {
  uint64_t cache_bytes = kDefaultSnapshotCacheBytes;
  Micros lock_wait = std::chrono::minutes(10);
};

struct SnapshotCacheStats {
  uint64_t hits = 0;    // chunk found decompressed in the cache
  uint64_t misses = 0;  // chunk read and decompressed
  uint64_t joined = 0;  // waited for another reader's decompression of the same chunk
  uint64_t evictions = 0;
  uint64_t errors = 0;  // chunk reads that failed verification
  uint64_t cached_bytes = 0;
  uint64_t capacity_bytes = 0;
};

class SnapshotBackend : public nbd::Backend {
 public:
  // kUsage for a malformed or unknown id, or a store that does not exist.
  static Result<std::unique_ptr<SnapshotBackend>> Open(const std::string& store_root,
                                                       const std::string& snapshot_id,
                                                       SnapshotBackendOptions options = {});

  uint64_t Size() const override { return size_; }
  nbd::BackendCaps Caps() const override;
  std::string Description() const override;
  Status Pread(void* buf, uint64_t count, uint64_t offset) override;
  Status Extents(uint64_t count, uint64_t offset, std::vector<nbd::Extent>* out) override;
  Status Cache(uint64_t count, uint64_t offset) override;

  const snapshot::Snapshot& snapshot() const { return manifest_.snapshot; }
  uint64_t chunk_size() const { return manifest_.chunk_size; }
  const std::string& store_root() const { return store_->root(); }
  // What an overlay or hydrate map records as its base ("snapshot snap-…").
  std::string Identity() const;
  SnapshotCacheStats Stats() const;

 private:
  SnapshotBackend() = default;
  using Chunk = std::shared_ptr<const std::string>;
  // The decompressed bytes of chunk i (not a zero chunk), from the cache or the store.
  Result<Chunk> GetChunk(uint64_t i);
  void Insert(uint64_t i, Chunk data);  // caller holds mu_

  std::unique_ptr<LocalStore> store_;
  Manifest manifest_;
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;

  struct Flight {
    bool done = false;
    Chunk data;
    Status status;
    std::condition_variable cv;
  };
  struct Entry {
    Chunk data;
    std::list<uint64_t>::iterator lru;
  };
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> cache_;
  std::list<uint64_t> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::shared_ptr<Flight>> flights_;
  std::set<uint64_t> reported_;  // damaged chunks already logged
  uint64_t cached_bytes_ = 0;
  SnapshotCacheStats stats_;
};

}  // namespace cloudkeep::local
