#include "providers/local/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
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

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  RAND_bytes(buf.data(), static_cast<int>(buf.size()));
  std::string hex;
  for (unsigned char b : buf) hex += fmt::format("{:02x}", b);
  return hex;
}

constexpr std::string_view kLocksPrefix = "locks/";

uint64_t ChunkSizeFromEnv(Status* error) {
  uint64_t chunk_size = kDefaultChunkSize;
  if (const char* env = std::getenv("CLOUDKEEP_CHUNK_SIZE"); env && *env) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (*end || v < 4096 || v > (16u << 20) || (v & (v - 1))) {
      *error = Status::Usage(fmt::format(
          "invalid CLOUDKEEP_CHUNK_SIZE '{}': a power of two from 4096 to 16777216 bytes", env));
      return 0;
    }
    chunk_size = v;
  }
  return chunk_size;
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
    Status bad;
    uint64_t chunk_size = ChunkSizeFromEnv(&bad);
    if (!bad.ok()) return bad;
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

Result<std::unique_ptr<LocalStore>> LocalStore::OpenRemote(std::unique_ptr<ObjectBackend> backend,
                                                           bool create) {
  const std::string where = backend->Describe();
  CK_ASSIGN_OR_RETURN(std::optional<std::string> config, backend->Get(layout::ConfigKey()));
  if (!config) {
    if (!create)
      return Status::Usage(fmt::format(
          "store '{}' does not exist (no config object; create a snapshot first)", where));
    // Not a store yet: refuse to take over a prefix full of other things.
    CK_ASSIGN_OR_RETURN(auto present, backend->List(""));
    for (const auto& o : present) {
      std::string top = o.key.substr(0, o.key.find('/'));
      if (!layout::IsStoreEntry(top) && top + "/" != kLocksPrefix)
        return Status::Usage(fmt::format(
            "store '{}' holds objects that are not a cloudkeep store (first: '{}')", where, o.key));
    }
    Status bad;
    uint64_t chunk_size = ChunkSizeFromEnv(&bad);
    if (!bad.ok()) return bad;
    Json cfg = {{"format", "cloudkeep-store-1"}, {"chunk_size", chunk_size}};
    // Two hosts creating one store at once: one config wins and both read it.
    CK_RETURN_IF_ERROR(backend->PutIfAbsent(layout::ConfigKey(), cfg.dump(1) + "\n").status());
    CK_ASSIGN_OR_RETURN(config, backend->Get(layout::ConfigKey()));
    if (!config) return Status::Failure(fmt::format("store '{}': config object vanished", where));
  }
  Json cfg = Json::parse(*config, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object() || cfg.value("format", "") != "cloudkeep-store-1")
    return Status::Failure(fmt::format("store '{}' has an unreadable config object", where));
  std::unique_ptr<LocalStore> store(new LocalStore(where));
  store->chunk_size_ = cfg.value("chunk_size", kDefaultChunkSize);
  store->remote_ = std::move(backend);
  CK_ASSIGN_OR_RETURN(auto chunks, store->remote_->List(std::string(layout::kChunksPrefix)));
  std::map<ChunkHash, uint64_t> present;
  for (const auto& o : chunks)
    if (auto h = layout::ParseChunkKey(o.key)) present[*h] = o.size;
  store->chunks_.SetRemote(store->remote_.get(), std::move(present));
  return store;
}

LocalStore::~LocalStore() {
  StopLockRefresh();
  if (remote_ && !remote_lock_key_.empty()) (void)remote_->Delete(remote_lock_key_);
}

void LocalStore::StopLockRefresh() {
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);
    refresh_stop_ = true;
  }
  refresh_cv_.notify_all();
  if (refresh_.joinable()) refresh_.join();
  std::lock_guard<std::mutex> lock(refresh_mu_);
  refresh_stop_ = false;
}

Status LocalStore::RemoteLock(LockMode mode, Micros wait) {
  if (held_ && (*held_ == LockMode::kExclusive || mode == LockMode::kShared)) return Status::Ok();
  if (held_) {
    // Shared to exclusive: give the shared lock up, then wait as anyone would.
    StopLockRefresh();
    (void)remote_->Delete(remote_lock_key_);
    remote_lock_key_.clear();
    held_.reset();
  }
  const std::string host = HostName();
  const bool exclusive = mode == LockMode::kExclusive;
  const std::string own = std::string(kLocksPrefix) + RandomHex(16) + ".json";
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool placed = false, said = false;
  std::mt19937_64 rng(std::random_device{}());
  for (;;) {
    CK_ASSIGN_OR_RETURN(auto locks, remote_->List(std::string(kLocksPrefix)));
    std::string holder;
    for (const auto& o : locks) {
      if (o.key == own) continue;
      auto body = remote_->Get(o.key);
      if (!body.ok()) return body.status();
      if (!*body) continue;  // released meanwhile
      Json j = Json::parse(**body, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        log::Warn("store {}: ignoring unreadable lock object {}", root_, o.key);
        continue;
      }
      int64_t time = j.value("time", int64_t{0});
      std::string lock_host = j.value("host", "");
      long pid = j.value("pid", 0L);
      bool stale =
          UnixNow() - time > std::chrono::duration_cast<std::chrono::seconds>(kLockStale).count();
      if (!stale && lock_host == host && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 &&
          errno == ESRCH)
        stale = true;  // ours, and its process is gone
      if (stale) {
        log::Info("store {}: removing stale lock of {} pid {} ({})", root_, lock_host, pid,
                  j.value("since", ""));
        CK_RETURN_IF_ERROR(remote_->Delete(o.key));
        continue;
      }
      if (exclusive || j.value("exclusive", false)) {
        holder = fmt::format("{} pid {} since {}", lock_host, pid, j.value("since", ""));
        break;
      }
    }
    if (holder.empty() && placed) break;
    if (holder.empty()) {
      Json me = {{"host", host},
                 {"pid", ::getpid()},
                 {"exclusive", exclusive},
                 {"time", UnixNow()},
                 {"since", FormatRfc3339(SystemClock::Default().Now())}};
      CK_ASSIGN_OR_RETURN(bool put, remote_->PutIfAbsent(own, me.dump() + "\n"));
      if (!put) return Status::Failure(fmt::format("store {}: lock name {} taken", root_, own));
      remote_lock_body_ = me.dump();
      placed = true;
      continue;  // look again: another run may have placed its lock at the same moment
    }
    if (placed) {
      CK_RETURN_IF_ERROR(remote_->Delete(own));
      placed = false;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return Status::Failure(fmt::format("store {} is still locked by {} after {}; try again later",
                                         root_, holder, FormatDuration(wait)));
    if (!said) {
      log::Info("store {} is busy ({}); waiting up to {}", root_, holder, FormatDuration(wait));
      said = true;
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 1200)(rng)));
  }
  remote_lock_key_ = own;
  held_ = mode;
  refresh_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(refresh_mu_);
    while (!refresh_cv_.wait_for(lock, kLockRefresh, [this] { return refresh_stop_; })) {
      Json me = Json::parse(remote_lock_body_, nullptr, false);
      me["time"] = UnixNow();
      if (Status s = remote_->Put(remote_lock_key_, me.dump() + "\n"); !s.ok())
        log::Warn("store {}: cannot refresh the lock: {}", root_, s.message());
    }
  });
  if (exclusive) {
    // What other runs uploaded before we held the lock.
    CK_ASSIGN_OR_RETURN(auto chunks, remote_->List(std::string(layout::kChunksPrefix)));
    std::map<ChunkHash, uint64_t> present;
    for (const auto& o : chunks)
      if (auto h = layout::ParseChunkKey(o.key)) present[*h] = o.size;
    chunks_.SetRemote(remote_.get(), std::move(present));
    CK_RETURN_IF_ERROR(RemoteRecover());
  }
  return Status::Ok();
}

Status LocalStore::RemoteRecover() {
  bool dead_run = false;
  const std::string host = HostName();
  CK_ASSIGN_OR_RETURN(auto tmp, remote_->List(std::string(layout::kTmpPrefix)));
  for (const auto& o : tmp) {
    if (layout::IsRunMarkerKey(o.key)) {
      dead_run = true;
      auto body = remote_->Get(o.key);
      if (body.ok() && *body) {
        Json j = Json::parse(**body, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("host", "") == host) {
          for (const auto& c : j.value("clones", Json::array())) {
            std::string clone = c.get<std::string>();
            if (::unlink(clone.c_str()) == 0)
              log::Info("removed {} left by an interrupted run", clone);
          }
        }
      }
    }
    CK_RETURN_IF_ERROR(remote_->Delete(o.key));
  }
  if (dead_run) {
    log::Info("an earlier run on store {} was interrupted; collecting its leftovers", root_);
    CK_ASSIGN_OR_RETURN(uint64_t removed, CollectGarbage());
    if (removed) log::Info("removed {} unreferenced chunks", removed);
  }
  return Status::Ok();
}

Status LocalStore::Lock(LockMode mode, Micros wait) {
  if (remote_) return RemoteLock(mode, wait);
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
  marker_ = remote_ ? layout::RunMarkerKey(kind, ::getpid())
                    : layout::KeyPath(root_, layout::RunMarkerKey(kind, ::getpid()));
  return UpdateRunClones(clones);
}

Status LocalStore::UpdateRunClones(const std::vector<std::string>& clones) {
  Json j = {{"pid", ::getpid()}, {"clones", clones}};
  if (remote_) {
    j["host"] = HostName();
    return remote_->Put(marker_, j.dump() + "\n");
  }
  return WriteFileAtomic(marker_, j.dump() + "\n");
}

void LocalStore::FinishRun() {
  if (marker_.empty()) return;
  if (remote_) {
    if (Status s = remote_->Delete(marker_); !s.ok())
      log::Warn("store {}: cannot remove run marker: {}", root_, s.message());
    marker_.clear();
    return;
  }
  ::unlink(marker_.c_str());
  FsyncDir(layout::KeyPath(root_, layout::kTmpPrefix));
  marker_.clear();
}

std::string LocalStore::ManifestPath(const std::string& id) const {
  if (remote_) return root_ + layout::ManifestKey(id);
  return layout::KeyPath(root_, layout::ManifestKey(id));
}

bool LocalStore::HasSnapshot(const std::string& id) const {
  if (remote_) {
    auto got = remote_->Get(layout::ManifestKey(id));
    // A read error says "exists": the load that follows reports it.
    return !got.ok() || got->has_value();
  }
  return ::access(ManifestPath(id).c_str(), F_OK) == 0;
}

Result<Manifest> LocalStore::LoadManifest(const std::string& id) const {
  std::string text;
  if (remote_) {
    CK_ASSIGN_OR_RETURN(std::optional<std::string> got, remote_->Get(layout::ManifestKey(id)));
    if (!got) return Status::Failure(ManifestPath(id) + ": no such manifest");
    text = std::move(*got);
  } else {
    CK_ASSIGN_OR_RETURN(text, ReadFile(ManifestPath(id)));
  }
  auto m = DecodeManifest(text);
  if (!m.ok()) return m.status().Annotate(ManifestPath(id));
  if (m->snapshot.id != id)
    return Status::Failure(ManifestPath(id) + ": id does not match file name");
  return m;
}

std::vector<std::string> LocalStore::ManifestIds() const {
  std::vector<std::string> ids;
  if (remote_) {
    auto listed = remote_->List(std::string(layout::kSnapshotsPrefix));
    if (!listed.ok()) {
      log::Warn("store {}: {}", root_, listed.status().message());
      return ids;
    }
    for (const auto& o : *listed)
      if (auto id = layout::ParseManifestKey(o.key)) ids.push_back(std::move(*id));
    return ids;
  }
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
  if (remote_) {
    CK_ASSIGN_OR_RETURN(
        bool put, remote_->PutIfAbsent(layout::ManifestKey(m.snapshot.id), EncodeManifest(m)));
    if (!put) return Status::Failure(ManifestPath(m.snapshot.id) + " exists already");
    return Status::Ok();
  }
  return WriteFileAtomic(ManifestPath(m.snapshot.id), EncodeManifest(m));
}

Status LocalStore::RemoveManifest(const std::string& id) {
  if (remote_) return remote_->Delete(layout::ManifestKey(id));
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
  if (remote_) return Status::Ok();
  UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open " + root_, errno);
  if (::syncfs(fd.get()) != 0) return Status::FromErrno("cannot sync store " + root_, errno);
  return Status::Ok();
}

}  // namespace cloudkeep::local
