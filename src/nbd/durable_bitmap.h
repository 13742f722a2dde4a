// DurableBitmap: one bit per fixed-size region of an export, in memory and
// optionally in a map file that survives a crash (docs/nbd-map-format.md).
//
// The copy-on-write overlay records which blocks it holds; the hydrating
// copy records which regions of its target already hold the snapshot's
// bytes (or a client's). Bits only ever go from 0 to 1, which is what makes
// updating the file in place crash-safe: a torn page write leaves a set of
// bits between the old and the new one, and every bit in it was durable
// data before it was written (the caller's order, below).
//
// The caller keeps that order with two calls around its own data sync:
//   auto pending = bitmap.Capture();  // bits set by every write that returned
//   fdatasync(data);                  // their data is durable now
//   bitmap.Persist(pending);          // only then the map says so
//
// A map file is held with an exclusive flock(2) while open: a second
// process that opens it gets kUsage ("in use by another cloudkeep process").
//
// Thread safety: Test/Set/Count/Next* may be called from any thread at
// once; Capture/Persist from one thread at a time (the caller's flush).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "core/status.h"

namespace cloudkeep::nbd {

enum class MapKind : uint32_t { kOverlay = 1, kHydrate = 2 };

struct MapHeader {
  MapKind kind = MapKind::kOverlay;
  uint64_t size = 0;         // bytes of the export
  uint64_t granularity = 0;  // bytes per bit; a power of two
  std::string identity;      // what the regions are copies of ("snapshot snap-… size …")
};

class DurableBitmap {
 public:
  // Bits kept in memory only (a temporary overlay).
  static std::unique_ptr<DurableBitmap> InMemory(uint64_t size, uint64_t granularity);
  // Creates `path` atomically (temporary name, fsync, rename, fsync of the
  // directory) with every bit clear. kUsage when it exists.
  static Result<std::unique_ptr<DurableBitmap>> Create(const std::string& path,
                                                       const MapHeader& header);
  // Opens an existing map, checking its magic, checksum and that kind, size,
  // granularity and identity are `expect`'s: kUsage naming the file and the
  // difference otherwise (an overlay of another snapshot must not be reused).
  static Result<std::unique_ptr<DurableBitmap>> Open(const std::string& path,
                                                     const MapHeader& expect);
  // Reads the header of a map file without opening it for writing.
  static Result<MapHeader> ReadHeader(const std::string& path);

  uint64_t bits() const { return bits_; }
  uint64_t granularity() const { return granularity_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool persistent() const { return fd_.valid(); }

  bool Test(uint64_t i) const {
    return (words_[i / 64].load(std::memory_order_acquire) >> (i % 64)) & 1;
  }
  // Sets bit i; true if it was clear.
  bool Set(uint64_t i);
  uint64_t Count() const { return count_.load(std::memory_order_acquire); }
  bool All() const { return Count() == bits_; }
  // The first bit in [from, limit) that is clear (or set); `limit` if none.
  // `limit` is clamped to bits().
  uint64_t NextClear(uint64_t from, uint64_t limit) const;
  uint64_t NextSet(uint64_t from, uint64_t limit) const;

  struct Pending {
    std::vector<std::pair<uint64_t, std::vector<uint64_t>>> pages;  // page index, its words
  };
  Pending Capture();
  // Writes the captured pages and fdatasyncs the map; on failure the pages
  // stay dirty for the next attempt. A no-op for an in-memory bitmap.
  Status Persist(const Pending& pending);
  // Unlinks the map file and fsyncs its directory.
  Status Remove();

 private:
  DurableBitmap(uint64_t size, uint64_t granularity);
  Status LoadBits();
  uint64_t size_, granularity_, bits_;
  size_t nwords_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::atomic<uint64_t> count_{0};
  std::mutex dirty_mu_;
  std::set<uint64_t> dirty_pages_;
  std::string path_;
  UniqueFd fd_;
};

// "<path>.cloudkeep-overlay" and "<path>.cloudkeep-hydrate".
std::string OverlayMapPath(const std::string& data_path);
std::string HydrateMapPath(const std::string& target_path);

}  // namespace cloudkeep::nbd
