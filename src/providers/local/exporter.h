// Reads a volume (device or file) into the ChunkStore as fixed-size chunks.
//
// Holes are found with SEEK_DATA/SEEK_HOLE and never read; all-zero chunks
// are not stored; chunks already in the store are not written again. Worker
// threads each read, hash (SHA-256), compress (zstd) and stage one chunk at a
// time; the chunk table comes back in volume order.
#pragma once

#include <string>
#include <vector>

#include "providers/local/store.h"

namespace cloudkeep::local {

struct ExportStats {
  uint64_t chunks = 0;        // non-zero chunks referenced
  uint64_t new_bytes = 0;     // bytes this export added to the store
  uint64_t stored_bytes = 0;  // bytes in the store of every chunk referenced
  uint64_t read_bytes = 0;    // bytes actually read from the volume
};

struct ExportResult {
  std::vector<ChunkHash> table;
  ExportStats stats;
};

Result<ExportResult> ExportVolume(LocalStore& store, const std::string& path, uint64_t size,
                                  int threads, int zstd_level, const std::string& progress_label);

// [offset, end) ranges that hold data; the whole file for devices.
std::vector<std::pair<uint64_t, uint64_t>> DataRanges(int fd, uint64_t size);

}  // namespace cloudkeep::local
