#include "providers/local/store_layout.h"

#include <fmt/format.h>

#include "core/fs.h"

namespace cloudkeep::local::layout {

namespace {

constexpr std::string_view kManifestSuffix = ".json";
constexpr std::string_view kStagedChunkName = "chunk-";
constexpr std::string_view kRunMarkerName = "run-";

// The rest of `key` after `prefix` when it is a single name (no '/'), else nullopt.
std::optional<std::string_view> NameUnder(std::string_view key, std::string_view prefix) {
  if (key.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = key.substr(prefix.size());
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  return rest;
}

}  // namespace

std::string ConfigKey() {
  return "config";
}
std::string LockKey() {
  return "lock";
}

std::string ChunkFanoutDir(const ChunkHash& h) {
  return std::string(kChunksPrefix) + HashHex(h).substr(0, 2);
}

std::string ChunkKey(const ChunkHash& h) {
  return ChunkFanoutDir(h) + "/" + HashHex(h);
}

std::optional<ChunkHash> ParseChunkKey(std::string_view key) {
  if (key.substr(0, kChunksPrefix.size()) != kChunksPrefix) return std::nullopt;
  std::string_view rest = key.substr(kChunksPrefix.size());
  // "<hh>/<64 hex>", and <hh> must be the hash's own first two digits.
  if (rest.size() != 2 + 1 + 64 || rest[2] != '/') return std::nullopt;
  ChunkHash h;
  if (!HashFromHex(rest.substr(3), &h) || rest.substr(0, 2) != rest.substr(3, 2))
    return std::nullopt;
  return h;
}

std::string ManifestName(std::string_view id) {
  return std::string(id) + std::string(kManifestSuffix);
}

std::string ManifestKey(std::string_view id) {
  return std::string(kSnapshotsPrefix) + ManifestName(id);
}

std::optional<std::string> ParseManifestKey(std::string_view key) {
  auto name = NameUnder(key, kSnapshotsPrefix);
  if (!name || name->size() <= kManifestSuffix.size() ||
      name->substr(name->size() - kManifestSuffix.size()) != kManifestSuffix ||
      name->find(kPartialWriteInfix) != std::string_view::npos || name->front() == '.')
    return std::nullopt;
  return std::string(name->substr(0, name->size() - kManifestSuffix.size()));
}

std::string StagedChunkKey(const ChunkHash& h) {
  return std::string(kTmpPrefix) + std::string(kStagedChunkName) + HashHex(h);
}

std::optional<ChunkHash> ParseStagedChunkKey(std::string_view key) {
  auto name = NameUnder(key, kTmpPrefix);
  if (!name || name->substr(0, kStagedChunkName.size()) != kStagedChunkName) return std::nullopt;
  ChunkHash h;
  if (!HashFromHex(name->substr(kStagedChunkName.size()), &h)) return std::nullopt;
  return h;
}

std::string RunMarkerKey(std::string_view kind, long pid) {
  return fmt::format("{}{}{}-{}", kTmpPrefix, kRunMarkerName, kind, pid);
}

bool IsRunMarkerKey(std::string_view key) {
  auto name = NameUnder(key, kTmpPrefix);
  // A marker mid-write (".tmp-<pid>") is still a marker: the run it belongs
  // to died before it finished writing it.
  return name && name->size() > kRunMarkerName.size() &&
         name->substr(0, kRunMarkerName.size()) == kRunMarkerName;
}

bool IsPartialWrite(std::string_view key) {
  size_t slash = key.rfind('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  size_t at = name.find(kPartialWriteInfix);
  if (at == std::string_view::npos || at == 0) return false;
  std::string_view pid = name.substr(at + kPartialWriteInfix.size());
  if (pid.empty()) return false;
  for (char c : pid)
    if (c < '0' || c > '9') return false;
  return true;
}

bool IsStoreEntry(std::string_view name) {
  // "config.tmp-<pid>" is a store being created by a run that died.
  return name == LockKey() || name == "chunks" || name == "snapshots" || name == "tmp" ||
         name == ConfigKey() || (name.substr(0, 6) == "config" && IsPartialWrite(name)) ||
         name == "lost+found";
}

std::string KeyPath(const std::string& root, std::string_view key) {
  return root + "/" + std::string(key);
}

const std::vector<std::string>& Directories() {
  static const std::vector<std::string> kDirs = {"chunks", "snapshots", "tmp"};
  return kDirs;
}

std::string ClonePath(const std::string& src, std::string_view id) {
  return fmt::format("{}/.{}.cloudkeep-{}.clone", DirName(src), BaseName(src), id);
}

std::string RestoreTempPath(const std::string& target, long pid) {
  return fmt::format("{}/.{}.cloudkeep-restore-{}", DirName(target), BaseName(target), pid);
}

}  // namespace cloudkeep::local::layout
