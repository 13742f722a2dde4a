// Manifest: one snapshot's metadata and chunk table, as stored in
// snapshots/<id>.json. Written last, atomically; its presence is what makes a
// snapshot exist. The format is documented in docs/store-format.md.
//
// DecodeManifest parses untrusted bytes (a store can be damaged or edited)
// and has a libFuzzer target; it never trusts a length it has not checked.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "providers/local/chunk_store.h"
#include "snapshot/model.h"

namespace cloudkeep::local {

struct Manifest {
  snapshot::Snapshot snapshot;
  uint64_t chunk_size = 0;
  // For image files: device, inode, size, mtime and ctime (ns) of the source
  // at capture, so that the next snapshot of an untouched file can reuse
  // this chunk table without reading it (as restic's and borg's file caches).
  std::string source_identity;
  // One entry per chunk_size slice of the volume; the zero hash marks an
  // all-zero slice that is not stored.
  std::vector<ChunkHash> chunks;
};

std::string EncodeManifest(const Manifest& m);
Result<Manifest> DecodeManifest(const std::string& bytes);

}  // namespace cloudkeep::local
