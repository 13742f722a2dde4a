// The store's layout: every name the embedded store gives to a file, in one
// place (LevelDB keeps its db/filename.h for the same reason). The format is
// documented in docs/store-format.md; this file is its only implementation.
//
// Names are keys: '/'-separated, relative to the store root, never starting
// with '/', the same strings an object store would use as object keys:
//
//   config                        ConfigKey()
//   lock                          LockKey()       (flock(2) target; POSIX only)
//   chunks/<hh>/<sha256-hex>      ChunkKey(h)      <hh> = first two hex digits
//   snapshots/<id>.json           ManifestKey(id)
//   tmp/chunk-<sha256-hex>        StagedChunkKey(h)
//   tmp/run-<kind>-<pid>          RunMarkerKey(kind, pid)
//   <key>.tmp-<pid>               a WriteFileAtomic write in progress
//
// Every Parse* function is the exact inverse of its builder and refuses any
// other name (a foreign file, a partial write, a chunk in the wrong fan-out
// directory), so a listing never mistakes a stray file for store data.
// Listings are by prefix (kChunksPrefix, kSnapshotsPrefix, kTmpPrefix):
// the one operation both a directory and an object store offer.
//
// What is POSIX-only is named as such: KeyPath() maps a key to a path under
// the root, and Directories()/ChunkFanoutDir() are the prefixes a file system
// must create and fsync as directories; an object store has neither.
//
// Pure functions of their arguments: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/local/chunk_store.h"

namespace cloudkeep::local::layout {

inline constexpr std::string_view kChunksPrefix = "chunks/";
inline constexpr std::string_view kSnapshotsPrefix = "snapshots/";
inline constexpr std::string_view kTmpPrefix = "tmp/";
// Appended by WriteFileAtomic (core/fs.h) to the name it is writing.
inline constexpr std::string_view kPartialWriteInfix = ".tmp-";

std::string ConfigKey();
std::string LockKey();

std::string ChunkKey(const ChunkHash& h);
std::optional<ChunkHash> ParseChunkKey(std::string_view key);

// "<id>.json": a manifest's name inside snapshots/ (what verify reports).
std::string ManifestName(std::string_view id);
std::string ManifestKey(std::string_view id);
// The id of a complete manifest's key; nullopt for anything else, including
// a manifest write in progress ("snapshots/<id>.json.tmp-<pid>").
std::optional<std::string> ParseManifestKey(std::string_view key);

std::string StagedChunkKey(const ChunkHash& h);
std::optional<ChunkHash> ParseStagedChunkKey(std::string_view key);

// `kind` is a lower-case word ("create", "delete").
std::string RunMarkerKey(std::string_view kind, long pid);
bool IsRunMarkerKey(std::string_view key);

// A file left by an interrupted WriteFileAtomic of any key.
bool IsPartialWrite(std::string_view key);

// True for every top-level name a store may hold, so that creating a store
// can refuse a directory full of other things.
bool IsStoreEntry(std::string_view top_level_name);

// POSIX mapping: the path of `key` in the store directory `root`.
std::string KeyPath(const std::string& root, std::string_view key);
// The prefixes a file system needs as directories, created with the store.
const std::vector<std::string>& Directories();
// The directory a chunk file lives in ("chunks/<hh>"), created on publish.
std::string ChunkFanoutDir(const ChunkHash& h);

// Names a run gives to files outside the store, beside the volume or the
// restore target; recorded in the run marker so that recovery finds them.
// An instant copy of image file `src` for snapshot `id`.
std::string ClonePath(const std::string& src, std::string_view id);
// Where a restore writes before renaming over `target`.
std::string RestoreTempPath(const std::string& target, long pid);

}  // namespace cloudkeep::local::layout
