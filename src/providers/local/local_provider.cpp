#include "providers/local/local_provider.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "aws/s3.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/parallel.h"
#include "providers/local/exporter.h"
#include "providers/local/store_layout.h"
#include "snapshot/block_devices.h"

namespace cloudkeep::local {

using snapshot::Snapshot;
using snapshot::Volume;

namespace {

struct CapturedVolume {
  Volume volume;
  std::string id;                        // snapshot id chosen at capture
  TimePoint created;                     // the point in time
  std::string source;                    // what Finalize reads: the clone or the volume itself
  std::string clone;                     // FICLONE copy to delete afterwards, if any
  std::optional<ExportResult> exported;  // set when the data was read during capture
  std::string identity;                  // image files: see Manifest::source_identity
  int64_t ctime_ns = 0;
};

// "dev:ino:size:mtime_ns:ctime_ns" of an image file; empty for devices.
std::string FileIdentity(const std::string& path, int64_t* ctime_ns) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  *ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  return fmt::format("{}:{}:{}:{}:{}", st.st_dev, st.st_ino, st.st_size,
                     st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, *ctime_ns);
}

// The chunk table of an earlier snapshot of the same, untouched file. Every
// write changes a file's ctime, which no user can set; requiring the earlier
// capture to be at least a second younger than that ctime rules out a write
// landing in the same timestamp tick just after it (git's "racy" case).
std::optional<Manifest> UnchangedSince(LocalStore& store, const CapturedVolume& cv) {
  if (cv.identity.empty()) return std::nullopt;
  auto manifests = store.ScanManifests().good;
  std::optional<Manifest> best;
  for (auto& m : manifests) {
    if (m.snapshot.volume_id != cv.volume.id || m.source_identity != cv.identity) continue;
    if (m.chunk_size != store.chunk_size()) continue;
    int64_t captured_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(m.snapshot.created.time_since_epoch())
            .count();
    if (captured_ns < cv.ctime_ns + 1000000000LL) continue;
    if (!best || m.snapshot.created > best->snapshot.created) best = std::move(m);
  }
  if (best) {
    for (const auto& h : best->chunks)
      if (!IsZeroHash(h) && !store.chunks().Exists(h)) return std::nullopt;
  }
  return best;
}

class LocalCapture final : public snapshot::CaptureHandle {
 public:
  std::vector<CapturedVolume> volumes;
};

// An instant copy sharing extents with `src` (XFS, btrfs). Empty on failure.
std::string CloneFile(const std::string& src, const std::string& id, std::string* why) {
  std::string dst = layout::ClonePath(src, id);
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) {
    *why = std::strerror(errno);
    return "";
  }
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) {
    *why = std::strerror(errno);
    return "";
  }
  if (::ioctl(out.get(), FICLONE, in.get()) != 0) {
    *why = std::strerror(errno);
    out.Reset();
    ::unlink(dst.c_str());
    return "";
  }
  return dst;
}

bool MatchesFilter(const Snapshot& s, const snapshot::SnapshotFilter& f) {
  if (!f.volume_ids.empty() &&
      std::find(f.volume_ids.begin(), f.volume_ids.end(), s.volume_id) == f.volume_ids.end() &&
      std::find(f.volume_ids.begin(), f.volume_ids.end(), s.volume_device) == f.volume_ids.end())
    return false;
  if (f.created_before && s.created >= *f.created_before) return false;
  for (const auto& [k, v] : f.tags) {
    auto it = s.tags.find(k);
    if (it == s.tags.end() || it->second != v) return false;
  }
  return true;
}

// Writes `len` bytes at `off`, leaving 4 KiB blocks of zeros as holes when
// the target is a sparse file.
Status WriteSparse(int fd, const char* data, uint64_t len, uint64_t off, bool sparse,
                   const std::string& what) {
  constexpr uint64_t kBlock = 4096;
  uint64_t pos = 0;
  while (pos < len) {
    uint64_t n = std::min(kBlock, len - pos);
    if (sparse && IsAllZero(data + pos, n)) {
      pos += n;
      continue;
    }
    // Coalesce consecutive non-zero blocks into one write.
    uint64_t end = pos + n;
    while (end < len) {
      uint64_t m = std::min(kBlock, len - end);
      if (sparse && IsAllZero(data + end, m)) break;
      end += m;
    }
    uint64_t done = 0;
    while (done < end - pos) {
      ssize_t w =
          ::pwrite(fd, data + pos + done, end - pos - done, static_cast<off_t>(off + pos + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Status::FromErrno("cannot write " + what, errno);
      done += static_cast<uint64_t>(w);
    }
    pos = end;
  }
  return Status::Ok();
}

}  // namespace

LocalProvider::LocalProvider(LocalProviderOptions options) : options_(std::move(options)) {
  if (options_.store_root.empty()) options_.store_root = LocalStore::DefaultRoot();
}
LocalProvider::~LocalProvider() = default;

Result<LocalStore*> LocalProvider::OpenStore(bool create,
                                             std::optional<LocalStore::LockMode> lock) {
  if (!store_) {
    if (aws::IsS3Url(options_.store_root)) {
      S3BackendOptions o{options_.store_root, options_.endpoint_url, options_.region,
                         options_.profile, aws::S3Addressing::kAuto};
      if (const char* a = std::getenv("CLOUDKEEP_S3_ADDRESSING"); a && *a) {
        std::string v = a;
        if (v == "path")
          o.addressing = aws::S3Addressing::kPath;
        else if (v == "virtual")
          o.addressing = aws::S3Addressing::kVirtual;
        else if (v != "auto")
          return Status::Usage(fmt::format(
              "invalid CLOUDKEEP_S3_ADDRESSING '{}': expected auto, path or virtual", v));
      }
      CK_ASSIGN_OR_RETURN(auto backend, OpenS3Backend(o));
      CK_ASSIGN_OR_RETURN(store_, LocalStore::OpenRemote(std::move(backend), create));
    } else {
      CK_ASSIGN_OR_RETURN(store_, LocalStore::Open(options_.store_root, create));
    }
  }
  // The store may have been opened unlocked (a listing before a prune): take
  // the lock now, before anything is changed.
  if (lock) CK_RETURN_IF_ERROR(store_->Lock(*lock, options_.lock_wait));
  return store_.get();
}

Result<std::vector<Volume>> LocalProvider::ListVolumes(bool include_all) {
  return snapshot::ListBlockDevices(include_all);
}

Result<Volume> LocalProvider::ResolveVolume(const std::string& spec) {
  return snapshot::DescribeVolume(spec);
}

std::string LocalProvider::CanonicalVolumeId(const std::string& spec) {
  auto v = snapshot::DescribeVolume(spec);
  return v.ok() ? v->id : spec;
}

Status LocalProvider::Prepare(const snapshot::CreateRequest& request) {
  if (request.volumes.empty()) return Status::Usage("no volumes to snapshot");
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(true, LocalStore::LockMode::kExclusive));
  // The store must not live on a volume being captured: its writes would land in the snapshot.
  struct stat st_store {};
  if (::stat(store->root().c_str(), &st_store) == 0) {
    for (const auto& v : request.volumes) {
      struct stat st {};
      if (v.kind != "file" && ::stat(v.device.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
          st.st_rdev == st_store.st_dev) {
        return Status::Usage(
            fmt::format("store '{}' is on volume '{}' itself; put the store elsewhere",
                        store->root(), v.device));
      }
    }
  }
  return store->BeginRun("create", {});
}

Result<std::unique_ptr<snapshot::CaptureHandle>> LocalProvider::Capture(
    const snapshot::CreateRequest& request) {
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(true, LocalStore::LockMode::kExclusive));
  auto capture = std::make_unique<LocalCapture>();
  std::vector<std::string> clones;
  for (const auto& v : request.volumes) {
    CapturedVolume cv;
    cv.volume = v;
    cv.id = NewSnapshotId();
    cv.created = SystemClock::Default().Now();
    cv.source = v.device;
    if (v.kind == "file") cv.identity = FileIdentity(v.device, &cv.ctime_ns);
    std::string why = "not an image file";
    if (v.kind == "file" && !options_.no_reflink) {
      // Record the clone's name before it exists, so that a kill at any instant cannot leak it.
      std::vector<std::string> planned = clones;
      planned.push_back(layout::ClonePath(v.device, cv.id));
      CK_RETURN_IF_ERROR(store->UpdateRunClones(planned));
      cv.clone = CloneFile(v.device, cv.id, &why);
      if (!cv.clone.empty()) {
        cv.source = cv.clone;
        clones.push_back(cv.clone);
        // Record it at once, so that a crash before Finalize does not leak it.
        CK_RETURN_IF_ERROR(store->UpdateRunClones(clones));
        capture->notes.push_back(fmt::format(
            "{}: captured by reflink (FICLONE), an instant point-in-time copy", v.device));
      }
    }
    if (cv.clone.empty()) {
      if (request.metadata.consistency != snapshot::Consistency::kCrash) {
        // Frozen now: read it all before the thaw, or the snapshot is not what was promised.
        CK_ASSIGN_OR_RETURN(
            cv.exported, ExportVolume(*store, v.device, v.size_bytes, WorkerCount(options_.threads),
                                      options_.zstd_level, "reading " + v.device));
        capture->notes.push_back(fmt::format("{}: read in place while frozen ({})", v.device, why));
      } else {
        capture->notes.push_back(fmt::format(
            "{}: read in place ({}); crash-consistent only if the volume was being written",
            v.device, why));
      }
    }
    capture->volumes.push_back(std::move(cv));
  }
  return std::unique_ptr<snapshot::CaptureHandle>(std::move(capture));
}

void LocalProvider::Abandon(std::unique_ptr<snapshot::CaptureHandle> capture) {
  auto* c = dynamic_cast<LocalCapture*>(capture.get());
  if (c)
    for (const auto& v : c->volumes)
      if (!v.clone.empty()) ::unlink(v.clone.c_str());
  if (store_) {
    store_->chunks().DiscardStaged();
    store_->FinishRun();
  }
}

Result<std::vector<Snapshot>> LocalProvider::Finalize(
    std::unique_ptr<snapshot::CaptureHandle> handle, const snapshot::SnapshotMetadata& metadata) {
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(true, LocalStore::LockMode::kExclusive));
  auto* capture = dynamic_cast<LocalCapture*>(handle.get());
  std::vector<Snapshot> out;
  Status failure;
  for (auto& cv : capture->volumes) {
    std::optional<Manifest> previous =
        cv.exported || options_.reread ? std::nullopt : UnchangedSince(*store, cv);
    if (previous) {
      log::Info(
          "{}: unchanged since {} (same inode, size, mtime and ctime); reusing its chunk table",
          cv.volume.device, previous->snapshot.id);
    }
    Result<ExportResult> exported =
        cv.exported ? Result<ExportResult>(std::move(*cv.exported))
        : previous
            ? Result<ExportResult>(ExportResult{std::move(previous->chunks), {}})
            : ExportVolume(*store, cv.source, cv.volume.size_bytes, WorkerCount(options_.threads),
                           options_.zstd_level, "exporting " + cv.volume.device);
    Status s = exported.status();
    if (s.ok()) s = store->SyncData();
    if (s.ok()) s = store->chunks().Publish();
    if (!s.ok()) {
      store->chunks().DiscardStaged();
      failure = s.sys_errno() == ENOSPC
                    ? Status::Failure(fmt::format(
                          "the store {} is full ({}); no snapshot of {} was recorded and "
                          "the store is unchanged",
                          store->root(), s.message(), cv.volume.device))
                    : s;
      break;
    }
    Manifest m;
    m.chunk_size = store->chunk_size();
    m.chunks = std::move(exported->table);
    m.source_identity = cv.identity;
    Snapshot& snap = m.snapshot;
    snap.id = cv.id;
    snap.volume_id = cv.volume.id;
    snap.volume_device = cv.volume.device;
    snap.created = cv.created;
    snap.size_bytes = cv.volume.size_bytes;
    snap.consistency = metadata.consistency;
    snap.tags = metadata.tags;
    snap.description = metadata.description;
    snap.database = metadata.database;
    snap.freeze_us = metadata.freeze_us;
    snap.lock_us = metadata.lock_us;
    std::set<ChunkHash> unique;
    for (const auto& h : m.chunks)
      if (!IsZeroHash(h)) unique.insert(h);
    uint64_t stored = 0;
    for (const auto& h : unique) stored += store->chunks().StoredSize(h);
    snap.chunks = unique.size();
    snap.stored_bytes = stored;
    snap.new_bytes = exported->stats.new_bytes;
    s = store->CommitManifest(m);
    if (!s.ok()) {
      failure = s;
      break;
    }
    if (!cv.clone.empty()) {
      ::unlink(cv.clone.c_str());
      cv.clone.clear();
    }
    out.push_back(snap);
  }
  for (auto& cv : capture->volumes)
    if (!cv.clone.empty()) ::unlink(cv.clone.c_str());
  if (!failure.ok()) {
    // Chunks published for this failed volume are unreferenced; collect them now.
    (void)store->CollectGarbage();
    store->FinishRun();
    return failure;
  }
  store->FinishRun();
  return out;
}

Result<std::vector<Snapshot>> LocalProvider::ListSnapshots(const snapshot::SnapshotFilter& filter) {
  // A store that does not exist is an error, not an empty list: a typo in
  // --store must not look like "no snapshots yet".
  auto opened = OpenStore(false, std::nullopt);
  if (!opened.ok()) return opened.status();
  LocalStore::ManifestScan scan = (*opened)->ScanManifests();
  std::vector<Snapshot> out;
  for (auto& m : scan.good)
    if (MatchesFilter(m.snapshot, filter)) out.push_back(std::move(m.snapshot));
  // A damaged manifest's volume and time are unknown: it is listed under any
  // filter, so that nobody takes its absence for "no such snapshot".
  for (auto& d : scan.damaged) {
    Snapshot s;
    s.id = d.id;
    s.state = "damaged";
    s.damaged = d.reason;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Result<Snapshot> LocalProvider::GetSnapshot(const std::string& id) {
  if (!snapshot::IsSnapshotId(id)) {
    return Status::Usage(
        fmt::format("invalid snapshot id '{}': expected snap- and 17 hex digits", id));
  }
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(false, std::nullopt));
  if (!store->HasSnapshot(id))
    return Status::Usage(fmt::format("unknown snapshot '{}' in store {}", id, store->root()));
  auto m = store->LoadManifest(id);
  if (!m.ok()) {
    // The snapshot exists but its record cannot be read: say so, so that it
    // can still be shown and deleted; restore and serve fail on the manifest.
    Snapshot damaged;
    damaged.id = id;
    damaged.state = "damaged";
    damaged.damaged = m.status().message();
    return damaged;
  }
  return m->snapshot;
}

Result<std::vector<snapshot::DeleteOutcome>> LocalProvider::DeleteSnapshots(
    const std::vector<std::string>& ids, const snapshot::DeleteOptions& options) {
  std::vector<snapshot::DeleteOutcome> out;
  if (options.dry_run) {
    CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(false, std::nullopt));
    for (const auto& id : ids)
      out.push_back({id,
                     store->HasSnapshot(id) ? snapshot::DeleteResult::kWouldDelete
                                            : snapshot::DeleteResult::kAlreadyGone,
                     ""});
    return out;
  }
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(false, LocalStore::LockMode::kExclusive));
  CK_RETURN_IF_ERROR(store->BeginRun("delete", {}));
  for (const auto& id : ids) {
    if (!store->HasSnapshot(id)) {
      out.push_back({id, snapshot::DeleteResult::kAlreadyGone, ""});
      continue;
    }
    Status s = store->RemoveManifest(id);
    out.push_back({id, s.ok() ? snapshot::DeleteResult::kDeleted : snapshot::DeleteResult::kFailed,
                   s.ok() ? "" : s.message()});
  }
  auto removed = store->CollectGarbage();
  if (!removed.ok()) return removed.status();
  log::Debug("freed {} chunks", *removed);
  store->FinishRun();
  return out;
}

Status LocalProvider::Restore(const std::string& id, const std::string& target,
                              const snapshot::RestoreOptions& options) {
  CK_ASSIGN_OR_RETURN(Snapshot snap, GetSnapshot(id));
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(false, LocalStore::LockMode::kShared));
  CK_ASSIGN_OR_RETURN(Manifest m, store->LoadManifest(id));

  struct stat st {};
  bool exists = ::stat(target.c_str(), &st) == 0;
  bool is_block = exists && S_ISBLK(st.st_mode);
  std::string write_path = target;
  UniqueFd fd;
  if (is_block) {
    // btrfs reports an anonymous device number in mountinfo, so match the source path too.
    char real_target[PATH_MAX];
    std::string rt = ::realpath(target.c_str(), real_target) ? real_target : target;
    for (const auto& m : ReadMountInfo(options_.paths.mountinfo)) {
      char real_source[PATH_MAX];
      bool same_source = m.source.rfind("/dev/", 0) == 0 &&
                         ::realpath(m.source.c_str(), real_source) && rt == real_source;
      if ((m.major == ::major(st.st_rdev) && m.minor == ::minor(st.st_rdev)) || same_source) {
        return Status::Usage(fmt::format("refusing to restore onto '{}': it is mounted at {}",
                                         target, m.mountpoint));
      }
    }
    // O_EXCL on a block device fails while anything (a filesystem, LVM, swap) holds it.
    fd = UniqueFd(::open(target.c_str(), O_WRONLY | O_EXCL | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EBUSY) {
        return Status::Usage(
            fmt::format("refusing to restore onto '{}': it is in use (mounted, or held by "
                        "another program)",
                        target));
      }
      return Status::Usage(
          fmt::format("cannot open '{}' for restore: {}", target, std::strerror(errno)));
    }
    uint64_t dev_size = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &dev_size) == 0 && dev_size < snap.size_bytes) {
      return Status::Usage(
          fmt::format("device '{}' ({} bytes) is smaller than snapshot {} ({} bytes)", target,
                      dev_size, id, snap.size_bytes));
    }
  } else {
    if (exists && !S_ISREG(st.st_mode)) {
      return Status::Usage(
          fmt::format("restore target '{}' is neither a regular file nor a block device", target));
    }
    if (exists && !options.force) {
      return Status::Usage(
          fmt::format("restore target '{}' exists; pass --force to replace it", target));
    }
    if (exists) {
      // Replacing a file that a loop device or a running VM still reads
      // through an open descriptor would leave them on the old inode: the
      // restore would look done and nobody would see it.
      auto loops = snapshot::LoopDevicesBackedBy(target);
      if (!loops.empty())
        return Status::Usage(
            fmt::format("refusing to restore onto '{}': it backs loop device {} (detach it first)",
                        target, loops.front()));
      auto writers = snapshot::WritersOf(target);
      if (!writers.empty())
        return Status::Usage(
            fmt::format("refusing to restore onto '{}': process {} has it open for writing", target,
                        writers.front()));
    }
    // Write beside the target and rename at the end: a failed restore leaves the old file alone.
    write_path = layout::RestoreTempPath(target, ::getpid());
    fd = UniqueFd(::open(write_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      return Status::Usage(
          fmt::format("cannot create restore target '{}': {}", target, std::strerror(errno)));
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(snap.size_bytes)) != 0) {
      Status s = Status::FromErrno("cannot size " + write_path, errno);
      ::unlink(write_path.c_str());
      return s;
    }
  }

  const uint64_t cs = m.chunk_size;
  uint64_t done = 0;  // the writer's alone
  log::Progress progress("restoring " + id);
  // The workers read, decompress and verify chunks; one writer thread writes
  // them in volume order. A single sequential writer neither contends for the
  // target's inode lock nor scatters its dirty pages, and it can push them to
  // disk behind itself (sync_file_range) so that the kernel is never left
  // holding the whole image dirty; at most `window` chunks wait in memory.
  auto read_chunk = [&](size_t i) -> Result<std::string> {
    if (IsZeroHash(m.chunks[i])) return std::string();
    uint64_t off = i * cs;
    uint64_t len = std::min(cs, snap.size_bytes - off);
    auto data = store->chunks().Get(m.chunks[i]);
    if (!data.ok()) return data.status().Annotate(fmt::format("snapshot {} at offset {}", id, off));
    if (data->size() != len) {
      return Status::Failure(
          fmt::format("chunk at offset {} has {} bytes, expected {}", off, data->size(), len));
    }
    return data;
  };
  constexpr uint64_t kWritebackStep = 8 << 20;
  uint64_t started = 0;  // writeback issued for [0, started)
  uint64_t waited = 0;   // and complete for [0, waited)
  auto write_chunk = [&](size_t i, std::string data) -> Status {
    uint64_t off = i * cs;
    uint64_t len = std::min(cs, snap.size_bytes - off);
    if (!data.empty()) {
      CK_RETURN_IF_ERROR(WriteSparse(fd.get(), data.data(), len, off, !is_block, target));
    } else if (is_block) {
      uint64_t range[2] = {off, len};
      if (::ioctl(fd.get(), BLKZEROOUT, range) != 0) {
        std::string zeros(len, '\0');
        CK_RETURN_IF_ERROR(WriteSparse(fd.get(), zeros.data(), len, off, false, target));
      }
    }
    // Start writeback of each step behind us and wait for the one before it:
    // the kernel never holds more than two steps of this file dirty, and the
    // final fsync finds little left to do. Advisory: fsync below is what counts.
    uint64_t end = off + len;
    if (end - started >= kWritebackStep) {
      (void)::sync_file_range(fd.get(), static_cast<off_t>(started),
                              static_cast<off_t>(end - started), SYNC_FILE_RANGE_WRITE);
      if (started > waited) {
        (void)::sync_file_range(
            fd.get(), static_cast<off_t>(waited), static_cast<off_t>(started - waited),
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      }
      waited = started;
      started = end;
    }
    progress.Update(done += len, snap.size_bytes);
    return Status::Ok();
  };
  const int workers = WorkerCount(options_.threads);
  Status result = ParallelForOrdered<std::string>(
      m.chunks.size(), {workers}, 2 * static_cast<size_t>(workers) + 2, read_chunk, write_chunk);
  progress.Finish();
  if (result.ok() && ::fsync(fd.get()) != 0)
    result = Status::FromErrno("cannot fsync " + write_path, errno);
  fd.Reset();
  if (!result.ok()) {
    if (!is_block) ::unlink(write_path.c_str());
    return result;
  }
  if (!is_block) {
    if (::rename(write_path.c_str(), target.c_str()) != 0) {
      Status s = Status::FromErrno("cannot rename restored image to " + target, errno);
      ::unlink(write_path.c_str());
      return s;
    }
    CK_RETURN_IF_ERROR(FsyncDir(DirName(target)));
  }
  return Status::Ok();
}

Result<snapshot::VerifyReport> LocalProvider::Verify(const std::vector<std::string>& ids) {
  for (const auto& id : ids) CK_RETURN_IF_ERROR(GetSnapshot(id).status());
  CK_ASSIGN_OR_RETURN(LocalStore * store, OpenStore(false, LocalStore::LockMode::kShared));
  snapshot::VerifyReport report;
  // Manifests one by one, so that one damaged manifest is a finding, not the end.
  std::vector<std::string> names = ids;
  if (names.empty()) names = store->ManifestIds();
  struct Use {
    std::string snapshot;
    uint64_t offset;
  };
  std::map<ChunkHash, std::vector<Use>> uses;
  std::vector<Manifest> manifests;
  for (const auto& id : names) {
    auto m = store->LoadManifest(id);
    if (!m.ok()) {
      report.problems.push_back({layout::ManifestName(id), m.status().message(), {id}, {}});
      continue;
    }
    ++report.snapshots_checked;
    for (size_t i = 0; i < m->chunks.size(); ++i)
      if (!IsZeroHash(m->chunks[i])) uses[m->chunks[i]].push_back({id, i * m->chunk_size});
  }
  std::vector<ChunkHash> todo;
  for (const auto& [h, u] : uses) todo.push_back(h);
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  std::vector<std::pair<ChunkHash, std::string>> bad;
  log::Progress progress("verifying");
  // Every chunk is checked: a bad one is a finding to report, not a reason to stop.
  auto verify_chunk = [&](size_t i) -> Status {
    auto data = store->chunks().Get(todo[i]);
    if (!data.ok()) {
      std::string why = data.status().message();
      if (data.status().sys_errno() == ENOENT) why = "missing";
      std::lock_guard<std::mutex> lock(mu);
      bad.emplace_back(todo[i], why);
    } else {
      progress.Update(bytes += data->size(), 0);
    }
    return Status::Ok();
  };
  (void)ParallelFor(todo.size(), {WorkerCount(options_.threads)}, verify_chunk);
  progress.Finish();
  report.chunks_checked = todo.size();
  report.bytes_checked = bytes;
  std::sort(bad.begin(), bad.end());
  for (const auto& [h, why] : bad) {
    snapshot::VerifyProblem p;
    p.chunk = HashHex(h);
    p.problem = why;
    for (const auto& u : uses[h]) {
      if (std::find(p.snapshots.begin(), p.snapshots.end(), u.snapshot) == p.snapshots.end())
        p.snapshots.push_back(u.snapshot);
      if (p.offsets.size() < 16) p.offsets.push_back(u.offset);
    }
    report.problems.push_back(std::move(p));
  }
  if (ids.empty()) {
    for (const auto& h : store->chunks().List())
      if (!uses.count(h)) ++report.unreferenced_chunks;
  }
  return report;
}

}  // namespace cloudkeep::local
