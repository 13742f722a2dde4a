#include "providers/local/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/log.h"
#include "core/output.h"
#include "providers/local/store_layout.h"

namespace cloudkeep::local {

namespace {

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::FromErrno("cannot create " + path, errno);
  return Status::Ok();
}

}  // namespace

std::string NewSnapshotId() {
  unsigned char buf[9];
  RAND_bytes(buf, sizeof buf);
  std::string hex;
  for (unsigned char b : buf) hex += fmt::format("{:02x}", b);
  return "snap-" + hex.substr(0, 17);
}

std::string LocalStore::DefaultRoot() {
  if (const char* env = std::getenv("CLOUDKEEP_STORE"); env && *env) return env;
  if (::geteuid() == 0) return "/var/lib/cloudkeep";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return std::string(xdg) + "/cloudkeep";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.local/share/cloudkeep";
  return "/var/lib/cloudkeep";
}

LocalStore::LocalStore(std::string root) : root_(root), chunks_(root) {}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const std::string& root, bool create) {
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return Status::Usage(fmt::format("store '{}' is not a directory", root));
  } else if (errno != ENOENT) {
    return Status::Usage(
        fmt::format("store '{}' is not accessible: {}", root, std::strerror(errno)));
  } else if (!create) {
    return Status::Usage(
        fmt::format("store '{}' does not exist (create a snapshot first, or pass --store)", root));
  }
  std::unique_ptr<LocalStore> store(new LocalStore(root));
  std::string config = layout::KeyPath(root, layout::ConfigKey());
  if (::access(config.c_str(), F_OK) != 0) {
    if (!create)
      return Status::Usage(fmt::format("'{}' is not a cloudkeep store (no config file)", root));
    // Not a store yet: refuse to take over a directory full of other things.
    if (::stat(root.c_str(), &st) == 0) {
      for (const auto& n : ListDir(root)) {
        if (!layout::IsStoreEntry(n)) {
          return Status::Usage(fmt::format(
              "store '{}' is a non-empty directory that is not a cloudkeep store", root));
        }
      }
    }
    // mkdir -p
    std::string acc;
    for (size_t i = 0; i <= root.size(); ++i) {
      if (i == root.size() || (root[i] == '/' && i > 0)) {
        acc = root.substr(0, i);
        if (::mkdir(acc.c_str(), 0700) != 0 && errno != EEXIST) {
          return Status::Usage(
              fmt::format("cannot create store '{}': {}", root, std::strerror(errno)));
        }
      }
    }
    for (const auto& dir : layout::Directories())
      CK_RETURN_IF_ERROR(MakeDir(layout::KeyPath(root, dir)));
    // A new store's chunk size may be chosen once, at creation (bench/chunk-size.sh measures it).
    uint64_t chunk_size = kDefaultChunkSize;
    if (const char* env = std::getenv("CLOUDKEEP_CHUNK_SIZE"); env && *env) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(env, &end, 10);
      if (*end || v < 4096 || v > (16u << 20) || (v & (v - 1))) {
        return Status::Usage(fmt::format(
            "invalid CLOUDKEEP_CHUNK_SIZE '{}': a power of two from 4096 to 16777216 bytes", env));
      }
      chunk_size = v;
    }
    Json cfg = {{"format", "cloudkeep-store-1"}, {"chunk_size", chunk_size}};
    CK_RETURN_IF_ERROR(WriteFileAtomic(config, cfg.dump(1) + "\n"));
  }
  CK_ASSIGN_OR_RETURN(std::string text, ReadFile(config));
  Json cfg = Json::parse(text, nullptr, false);
  if (cfg.is_discarded() || cfg.value("format", "") != "cloudkeep-store-1") {
    return Status::Failure(fmt::format("store '{}' has an unreadable config file", root));
  }
  store->chunk_size_ = cfg.value("chunk_size", kDefaultChunkSize);
  for (const auto& dir : layout::Directories())
    CK_RETURN_IF_ERROR(MakeDir(layout::KeyPath(root, dir)));
  return store;
}

Status LocalStore::Lock(LockMode mode, Micros wait) {
  // Already held in this mode or a stronger one.
  if (held_ && (*held_ == LockMode::kExclusive || mode == LockMode::kShared)) return Status::Ok();
  std::string path = layout::KeyPath(root_, layout::LockKey());
  if (!lock_fd_.valid())
    lock_fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock_fd_.valid()) {
    // A reader without write permission still gets consistency from the manifests.
    if (mode == LockMode::kShared && (errno == EACCES || errno == EROFS)) return Status::Ok();
    return Status::FromErrno("cannot open " + path, errno);
  }
  int op = mode == LockMode::kExclusive ? LOCK_EX : LOCK_SH;
  if (::flock(lock_fd_.get(), op | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Status::FromErrno("cannot lock " + path, errno);
    std::string holder;
    if (auto r = ReadFile(path); r.ok()) holder = *r;
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    log::Info("store {} is busy ({}); waiting up to {}", root_,
              holder.empty() ? "another cloudkeep" : holder, FormatDuration(wait));
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (::flock(lock_fd_.get(), op | LOCK_NB) == 0) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Failure(
            fmt::format("store {} is still locked by {} after {}; try again later", root_,
                        holder.empty() ? "another cloudkeep" : holder, FormatDuration(wait)));
      }
    }
  }
  held_ = mode;
  if (mode == LockMode::kExclusive) {
    std::string who =
        fmt::format("pid {} since {}\n", ::getpid(), FormatRfc3339(SystemClock::Default().Now()));
    if (::ftruncate(lock_fd_.get(), 0) == 0)
      (void)::pwrite(lock_fd_.get(), who.data(), who.size(), 0);
    CK_RETURN_IF_ERROR(RecoverAfterCrash());
  }
  return Status::Ok();
}

Status LocalStore::RecoverAfterCrash() {
  const std::string tmp(layout::kTmpPrefix);
  bool dead_run = false;
  // Everything under tmp/ belongs to a run that is over: staged chunks and markers alike.
  for (const auto& name : ListDir(layout::KeyPath(root_, tmp))) {
    std::string path = layout::KeyPath(root_, tmp + name);
    if (layout::IsRunMarkerKey(tmp + name)) {
      dead_run = true;
      if (auto text = ReadFile(path); text.ok()) {
        Json j = Json::parse(*text, nullptr, false);
        if (!j.is_discarded()) {
          for (const auto& c : j.value("clones", Json::array())) {
            std::string clone = c.get<std::string>();
            if (::unlink(clone.c_str()) == 0)
              log::Info("removed {} left by an interrupted run", clone);
          }
        }
      }
    }
    ::unlink(path.c_str());
  }
  // Manifests half written by WriteFileAtomic.
  const std::string snapshots(layout::kSnapshotsPrefix);
  for (const auto& name : ListDir(layout::KeyPath(root_, snapshots))) {
    if (layout::IsPartialWrite(snapshots + name))
      ::unlink(layout::KeyPath(root_, snapshots + name).c_str());
  }
  if (dead_run) {
    log::Info("an earlier run on store {} was interrupted; collecting its leftovers", root_);
    auto removed = CollectGarbage();
    if (!removed.ok()) return removed.status();
    if (*removed) log::Info("removed {} unreferenced chunks", *removed);
  }
  return Status::Ok();
}

Status LocalStore::BeginRun(const std::string& kind, const std::vector<std::string>& clones) {
  marker_ = layout::KeyPath(root_, layout::RunMarkerKey(kind, ::getpid()));
  return UpdateRunClones(clones);
}

Status LocalStore::UpdateRunClones(const std::vector<std::string>& clones) {
  Json j = {{"pid", ::getpid()}, {"clones", clones}};
  return WriteFileAtomic(marker_, j.dump() + "\n");
}

void LocalStore::FinishRun() {
  if (marker_.empty()) return;
  ::unlink(marker_.c_str());
  FsyncDir(layout::KeyPath(root_, layout::kTmpPrefix));
  marker_.clear();
}

std::string LocalStore::ManifestPath(const std::string& id) const {
  return layout::KeyPath(root_, layout::ManifestKey(id));
}

bool LocalStore::HasSnapshot(const std::string& id) const {
  return ::access(ManifestPath(id).c_str(), F_OK) == 0;
}

Result<Manifest> LocalStore::LoadManifest(const std::string& id) const {
  CK_ASSIGN_OR_RETURN(std::string text, ReadFile(ManifestPath(id)));
  auto m = DecodeManifest(text);
  if (!m.ok()) return m.status().Annotate(ManifestPath(id));
  if (m->snapshot.id != id)
    return Status::Failure(ManifestPath(id) + ": id does not match file name");
  return m;
}

std::vector<std::string> LocalStore::ManifestIds() const {
  std::vector<std::string> ids;
  const std::string snapshots(layout::kSnapshotsPrefix);
  for (const auto& name : ListDir(layout::KeyPath(root_, snapshots)))
    if (auto id = layout::ParseManifestKey(snapshots + name)) ids.push_back(std::move(*id));
  return ids;
}

LocalStore::ManifestScan LocalStore::ScanManifests() const {
  ManifestScan scan;
  for (const auto& id : ManifestIds()) {
    auto m = LoadManifest(id);
    if (m.ok())
      scan.good.push_back(std::move(m).value());
    else
      scan.damaged.push_back({id, m.status().message()});
  }
  return scan;
}

Status LocalStore::CommitManifest(const Manifest& m) {
  return WriteFileAtomic(ManifestPath(m.snapshot.id), EncodeManifest(m));
}

Status LocalStore::RemoveManifest(const std::string& id) {
  if (::unlink(ManifestPath(id).c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove " + ManifestPath(id), errno);
  return FsyncDir(layout::KeyPath(root_, layout::kSnapshotsPrefix));
}

Result<uint64_t> LocalStore::CollectGarbage() {
  ManifestScan scan = ScanManifests();
  if (!scan.damaged.empty()) {
    log::Warn(
        "unreferenced chunks are kept: {} manifest(s) are damaged and may reference them "
        "(first: {}); delete or restore them to free the space",
        scan.damaged.size(), scan.damaged.front().id);
    return uint64_t{0};
  }
  std::set<ChunkHash> live;
  for (const auto& m : scan.good)
    for (const auto& h : m.chunks)
      if (!IsZeroHash(h)) live.insert(h);
  uint64_t removed = 0;
  for (const auto& h : chunks_.List()) {
    if (live.count(h)) continue;
    CK_RETURN_IF_ERROR(chunks_.Remove(h));
    ++removed;
  }
  return removed;
}

Status LocalStore::SyncData() {
  UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open " + root_, errno);
  if (::syncfs(fd.get()) != 0) return Status::FromErrno("cannot sync store " + root_, errno);
  return Status::Ok();
}

}  // namespace cloudkeep::local
