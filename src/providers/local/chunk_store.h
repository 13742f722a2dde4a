// ChunkStore: content-addressed, compressed chunks on disk.
//
// A chunk is named by the SHA-256 of its uncompressed bytes and lives at
// chunks/<first two hex digits>/<64 hex digits> (store_layout.h names it). Each file is a small
// header and the zstd-compressed bytes (or the raw bytes when zstd does not help); see
// docs/store-format.md. A chunk, once written, is never written again.
//
// Writes are staged: Stage() writes the file under tmp/ and Publish() moves
// every staged file into place after the caller has made the data durable
// (syncfs), so that a crash can never leave a chunk name with missing bytes.
//
// On an object store (SetRemote) there is no tmp/ and no rename: Stage
// uploads the chunk at once with put-if-absent (chunks go up before the
// manifest that names them), Publish has nothing left to do, and what the
// store holds is known from one listing of chunks/ taken when it was opened.
//
// Get/Exists/Stage may be called from several threads at once; Publish,
// Remove and List from one.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::local {

class ObjectBackend;
using ChunkHash = std::array<uint8_t, 32>;
std::string HashHex(const ChunkHash& h);
bool HashFromHex(std::string_view hex, ChunkHash* out);
bool IsZeroHash(const ChunkHash& h);
ChunkHash Sha256(const void* data, size_t size);
// True when every byte is zero (the chunk is not stored).
bool IsAllZero(const void* data, size_t size);

class ChunkStore {
 public:
  // `root` is the store directory; chunks/ and tmp/ are inside it.
  explicit ChunkStore(std::string root);
  // Keeps chunks in `backend` (not owned) instead of the directory; `present`
  // is every chunk it holds, with its stored size (a listing of chunks/).
  void SetRemote(ObjectBackend* backend, std::map<ChunkHash, uint64_t> present);

  // Size of the stored (compressed) chunk file, or 0 when absent.
  uint64_t StoredSize(const ChunkHash& h) const;
  bool Exists(const ChunkHash& h) const { return StoredSize(h) > 0; }

  // Compresses and writes `data` under tmp/ unless the chunk exists or was
  // staged already. Returns the bytes it will add to the store (0 if none).
  Result<uint64_t> Stage(const ChunkHash& h, std::string_view data, int zstd_level);
  // Moves staged chunks into place and fsyncs their directories.
  Status Publish();
  // Drops staged files (the run failed).
  void DiscardStaged();

  // Reads, decompresses and checks a chunk against its name.
  Result<std::string> Get(const ChunkHash& h) const;
  Status Remove(const ChunkHash& h);
  // Every chunk file present, by name; unparseable names are skipped.
  std::vector<ChunkHash> List() const;

  std::string PathOf(const ChunkHash& h) const;

 private:
  Result<std::string> Decode(const ChunkHash& h, const std::string& stored) const;
  std::string root_;
  ObjectBackend* remote_ = nullptr;
  std::map<ChunkHash, uint64_t> remote_present_;  // guarded by mu_
  mutable std::mutex mu_;
  std::set<ChunkHash> staged_;
  std::vector<ChunkHash> staged_order_;  // staged files, in the order written
};

}  // namespace cloudkeep::local
