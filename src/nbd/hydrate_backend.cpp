#include "nbd/hydrate_backend.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/net.h"

namespace cloudkeep::nbd {

namespace {

bool AllZero(const char* p, uint64_t n) {
  if (n < 16) {
    for (uint64_t i = 0; i < n; ++i)
      if (p[i]) return false;
    return true;
  }
  for (int i = 0; i < 16; ++i)
    if (p[i]) return false;
  return std::memcmp(p, p + 16, n - 16) == 0;
}

void AddExtent(std::vector<Extent>* out, size_t first, uint64_t length, uint32_t flags) {
  if (length == 0) return;
  if (out->size() > first && out->back().flags == flags) {
    out->back().length += length;
    return;
  }
  out->push_back(Extent{length, flags});
}

}  // namespace

Result<HydrateTarget> PrepareHydrateTarget(const std::string& path, uint64_t size,
                                           const HydrateOptions& options) {
  const std::string& map = options.map_path;
  if (map.empty()) return Status::Usage("a hydrate needs a map file path");
  HydrateTarget out;
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT)
    return Status::Usage(fmt::format("cannot use '{}': {}", path, std::strerror(errno)));
  if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return Status::Usage(fmt::format("'{}' is neither a regular file nor a block device", path));
  bool block = exists && S_ISBLK(st.st_mode);
  bool map_exists = ::access(map.c_str(), F_OK) == 0;

  if (block) {
    if (map.rfind("/dev/", 0) == 0)
      return Status::Usage(fmt::format(
          "the hydrate map of block device '{}' must be on a persistent file system, not '{}' "
          "(pass --hydrate-map FILE)",
          path, map));
    // O_EXCL on a block device fails while anything (a file system, LVM, swap) holds it.
    UniqueFd probe(::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (!probe.valid())
      return Status::Usage(fmt::format("refusing to hydrate onto '{}': {}", path,
                                       errno == EBUSY ? "it is in use (mounted, or held by "
                                                        "another program)"
                                                      : std::strerror(errno)));
    uint64_t dev_size = 0;
    if (::ioctl(probe.get(), BLKGETSIZE64, &dev_size) != 0)
      return Status::FromErrno("cannot read the size of " + path, errno);
    if (dev_size < size)
      return Status::Usage(fmt::format(
          "device '{}' ({} bytes) is smaller than the export ({} bytes)", path, dev_size, size));
  }

  MapHeader expect{MapKind::kHydrate, size, options.region_size, options.identity};
  if (map_exists) {
    // Checks that it is a hydrate of the same thing, and whether anything is done yet.
    CK_ASSIGN_OR_RETURN(auto bm, DurableBitmap::Open(map, expect));
    out.resumed = true;
    if (!exists) {
      if (bm->Count() > 0)
        return Status::Usage(fmt::format(
            "'{}' is missing, but its hydrate map '{}' records {} regions copied; remove the map "
            "to start again",
            path, map, bm->Count()));
    } else if (!block && static_cast<uint64_t>(st.st_size) < size) {
      if (bm->Count() > 0)
        return Status::Usage(
            fmt::format("'{}' has {} bytes, fewer than the export's {}", path, st.st_size, size));
    }
  } else {
    if (exists && !block)
      return Status::Usage(fmt::format(
          "'{}' exists and is not an unfinished hydrate (there is no '{}'): a finished copy or "
          "another file is never overwritten; remove it to hydrate again",
          path, map));
    // The map first: the target never holds a byte without a map that marks it incomplete.
    CK_RETURN_IF_ERROR(DurableBitmap::Create(map, expect).status());
  }
  if (!block) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return Status::FromErrno("cannot create " + path, errno);
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("cannot stat " + path, errno);
    if (static_cast<uint64_t>(st.st_size) < size &&
        ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
      return Status::FromErrno("cannot size " + path, errno);
    out.created = !exists;
    if (out.created) CK_RETURN_IF_ERROR(FsyncDir(DirName(path)));
  }
  CK_ASSIGN_OR_RETURN(auto fb, FileBackend::Open(path, true));
  out.target = std::move(fb);
  return out;
}

HydrateBackend::HydrateBackend(std::shared_ptr<Backend> base, std::shared_ptr<FileBackend> target,
                               HydrateOptions options)
    : target_(std::move(target)), options_(std::move(options)), base_(std::move(base)) {
  size_ = base_->Size();
  rs_ = options_.region_size;
}

Result<std::unique_ptr<HydrateBackend>> HydrateBackend::Open(std::shared_ptr<Backend> base,
                                                             std::shared_ptr<FileBackend> target,
                                                             HydrateOptions options) {
  if (options.region_size < 4096 || (options.region_size & (options.region_size - 1)))
    return Status::Usage(fmt::format(
        "hydrate region size {} is not a power of two of at least 4096", options.region_size));
  if (!target->Caps().writable)
    return Status::Usage(fmt::format("hydrate target '{}' is not writable", target->path()));
  if (target->Size() < base->Size())
    return Status::Usage(
        fmt::format("hydrate target '{}' ({} bytes) is smaller than the export "
                    "({} bytes)",
                    target->path(), target->Size(), base->Size()));
  std::unique_ptr<HydrateBackend> h(
      new HydrateBackend(std::move(base), std::move(target), std::move(options)));
  MapHeader expect{MapKind::kHydrate, h->size_, h->rs_, h->options_.identity};
  if (::access(h->options_.map_path.c_str(), F_OK) == 0) {
    CK_ASSIGN_OR_RETURN(h->bitmap_, DurableBitmap::Open(h->options_.map_path, expect));
  } else {
    CK_ASSIGN_OR_RETURN(h->bitmap_, DurableBitmap::Create(h->options_.map_path, expect));
  }
  h->resumed_from_ = h->Progress().done_bytes;
  // Everything was copied before a crash that came before the map was removed.
  if (h->bitmap_->All()) CK_RETURN_IF_ERROR(h->Sync());
  return h;
}

HydrateBackend::~HydrateBackend() {
  Stop();
}

std::shared_ptr<Backend> HydrateBackend::Base() const {
  std::lock_guard<std::mutex> l(mu_);
  return base_;
}

BackendCaps HydrateBackend::Caps() const {
  BackendCaps t = target_->Caps();
  BackendCaps c;
  c.writable = c.flush = c.fua = c.zero = c.extents = c.cache = true;
  c.trim = t.trim;
  c.fast_zero = t.fast_zero;
  // One target descriptor and one map for every connection: one Flush covers all.
  c.multi_conn = true;
  return c;
}

std::string HydrateBackend::Description() const {
  auto base = Base();
  if (!base) return target_->path();
  return fmt::format("{}, hydrating to {}", base->Description(), target_->path());
}

HydrateProgress HydrateBackend::Progress() const {
  HydrateProgress p;
  p.total_bytes = size_;
  p.complete = complete_.load();
  if (p.complete) {
    p.done_bytes = size_;
  } else {
    uint64_t n = bitmap_->Count();
    p.done_bytes = n * rs_;
    uint64_t last = bitmap_->bits() - 1;
    if (n > 0 && bitmap_->Test(last)) p.done_bytes -= rs_ - RegionLen(last);
    p.done_bytes = std::min(p.done_bytes, size_);
  }
  std::lock_guard<std::mutex> l(mu_);
  p.copied_bytes = copied_;
  p.resumed_from_bytes = resumed_from_;
  p.failed_regions = failed_regions_;
  p.error = error_;
  if (start_ns_) {
    uint64_t end = end_ns_ ? end_ns_ : MonoNs();
    double secs = static_cast<double>(end - start_ns_) / 1e9;
    if (secs > 0) p.bytes_per_second = static_cast<double>(copied_) / secs;
  }
  return p;
}

Status HydrateBackend::CopyRegions(uint64_t first, uint64_t last, std::vector<char>* buf,
                                   bool background) {
  auto base = Base();
  for (uint64_t r = first; r <= last;) {
    if (!base || Done(r)) {
      ++r;
      continue;
    }
    uint64_t r2 = std::min(bitmap_->NextSet(r, last + 1),
                           r + std::max<uint64_t>(1, options_.batch_bytes / rs_));
    uint64_t off = r * rs_, len = std::min(r2 * rs_, size_) - off;
    buf->resize(len);
    Status s = base->Pread(buf->data(), len, off);
    if (!s.ok()) {
      if (!background) return s;
      if (r2 - r > 1) {
        // Find the damaged regions one by one; copy the rest.
        for (uint64_t k = r; k < r2; ++k) {
          Status one = CopyRegions(k, k, buf, true);
          if (!one.ok()) return one;
        }
        r = r2;
        continue;
      }
      log::Error("hydrate: region at offset {} ({} bytes) cannot be read, left to copy: {}", off,
                 len, s.message());
      std::lock_guard<std::mutex> l(mu_);
      ++failed_regions_;
      r = r2;
      continue;
    }
    for (uint64_t k = r; k < r2; ++k) {
      uint64_t koff = k * rs_, klen = RegionLen(k);
      const char* data = buf->data() + (koff - off);
      // Zero regions stay sparse (a hole in a file, BLKZEROOUT on a device).
      Status w = AllZero(data, klen) ? target_->Zero(klen, koff, true, false, false)
                                     : target_->Pwrite(data, klen, koff, false);
      if (!w.ok()) return w;
      bitmap_->Set(k);
    }
    if (background) {
      std::lock_guard<std::mutex> l(mu_);
      copied_ += len;
    }
    r = r2;
  }
  return Status::Ok();
}

Status HydrateBackend::Pread(void* buf, uint64_t count, uint64_t offset) {
  if (complete_) return target_->Pread(buf, count, offset);
  auto* p = static_cast<char*>(buf);
  const uint64_t end = offset + count;
  const uint64_t limit = (end + rs_ - 1) / rs_;
  for (uint64_t pos = offset; pos < end;) {
    uint64_t r = pos / rs_;
    bool done = Done(r);
    uint64_t next = done ? bitmap_->NextClear(r, limit) : bitmap_->NextSet(r, limit);
    uint64_t run_end = std::min(end, next * rs_);
    std::shared_ptr<Backend> base;
    if (!done) base = Base();
    // No base: the copy completed meanwhile, and the target has everything.
    Status s = base ? base->Pread(p + (pos - offset), run_end - pos, pos)
                    : target_->Pread(p + (pos - offset), run_end - pos, pos);
    CK_RETURN_IF_ERROR(s);
    pos = run_end;
  }
  return Status::Ok();
}

Status HydrateBackend::Write(const void* buf, uint64_t count, uint64_t offset, bool fua,
                             bool zero) {
  if (complete_)
    return zero ? target_->Zero(count, offset, true, false, fua)
                : target_->Pwrite(buf, count, offset, fua);
  if (count == 0) return fua ? Flush() : Status::Ok();
  const uint64_t end = offset + count;
  const uint64_t first = offset / rs_, last = (end - 1) / rs_;
  RangeLock::Guard guard = locks_.Lock(first * rs_, (last + 1) * rs_);
  // A region this write covers only in part gets the rest of its bytes from
  // the base first; then the whole region is the target's.
  auto partial = [&](uint64_t r) { return offset > r * rs_ || end < r * rs_ + RegionLen(r); };
  std::vector<char> tmp;
  if (!Done(first) && partial(first)) CK_RETURN_IF_ERROR(CopyRegions(first, first, &tmp, false));
  if (last != first && !Done(last) && partial(last))
    CK_RETURN_IF_ERROR(CopyRegions(last, last, &tmp, false));
  CK_RETURN_IF_ERROR(zero ? target_->Zero(count, offset, true, false, false)
                          : target_->Pwrite(buf, count, offset, false));
  for (uint64_t r = first; r <= last; ++r) bitmap_->Set(r);
  guard.Release();
  return fua ? Flush() : Status::Ok();
}

Status HydrateBackend::Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) {
  return Write(buf, count, offset, fua, false);
}

Status HydrateBackend::Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) {
  if (fast && !target_->Caps().fast_zero) return Status::FromErrno("zeroing is not fast", ENOTSUP);
  if (complete_) return target_->Zero(count, offset, may_trim, fast, fua);
  return Write(nullptr, count, offset, fua, true);
}

Status HydrateBackend::Trim(uint64_t count, uint64_t offset, bool fua) {
  if (complete_) return target_->Trim(count, offset, fua);
  // Trimmed bytes may read back as anything (proto.md NBD_CMD_TRIM): regions
  // not copied yet keep the base's bytes; copied ones are trimmed on the target.
  const uint64_t end = offset + count;
  const uint64_t first = offset / rs_, last = (end - 1) / rs_;
  RangeLock::Guard guard = locks_.Lock(first * rs_, (last + 1) * rs_);
  for (uint64_t pos = offset; pos < end;) {
    uint64_t r = pos / rs_;
    bool done = Done(r);
    uint64_t next = done ? bitmap_->NextClear(r, last + 1) : bitmap_->NextSet(r, last + 1);
    uint64_t run_end = std::min(end, next * rs_);
    if (done) CK_RETURN_IF_ERROR(target_->Trim(run_end - pos, pos, false));
    pos = run_end;
  }
  guard.Release();
  return fua ? Flush() : Status::Ok();
}

Status HydrateBackend::Cache(uint64_t count, uint64_t offset) {
  if (complete_) return Status::Ok();
  // Prefetch means: copy these regions now.
  const uint64_t first = offset / rs_, last = (offset + count - 1) / rs_;
  RangeLock::Guard guard = locks_.Lock(first * rs_, (last + 1) * rs_);
  std::vector<char> buf;
  return CopyRegions(first, last, &buf, false);
}

Status HydrateBackend::Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) {
  if (complete_) {
    if (target_->Caps().extents) return target_->Extents(count, offset, out);
    out->push_back(Extent{count, 0});
    return Status::Ok();
  }
  const size_t first = out->size();
  const uint64_t end = offset + count;
  const uint64_t limit = (end + rs_ - 1) / rs_;
  for (uint64_t pos = offset; pos < end && out->size() - first < 4096;) {
    uint64_t r = pos / rs_;
    bool done = Done(r);
    uint64_t next = done ? bitmap_->NextClear(r, limit) : bitmap_->NextSet(r, limit);
    uint64_t run_end = std::min(end, next * rs_);
    std::shared_ptr<Backend> src;
    if (done)
      src = target_;
    else
      src = Base();
    if (!src) src = target_;
    if (!src->Caps().extents) {
      AddExtent(out, first, run_end - pos, 0);
      pos = run_end;
      continue;
    }
    std::vector<Extent> part;
    CK_RETURN_IF_ERROR(src->Extents(run_end - pos, pos, &part));
    if (part.empty()) return Status::FromErrno("no extents returned", EIO);
    for (const Extent& e : part) {
      uint64_t len = std::min(e.length, run_end - pos);
      AddExtent(out, first, len, e.flags);
      pos += len;
      if (pos >= run_end) break;
    }
  }
  return Status::Ok();
}

Status HydrateBackend::Sync() {
  std::lock_guard<std::mutex> l(sync_mu_);
  if (complete_) return target_->Flush();
  // Capture before the data sync: every bit captured belongs to data already
  // written, which this fdatasync makes durable before the map says so.
  DurableBitmap::Pending pending = bitmap_->Capture();
  CK_RETURN_IF_ERROR(target_->Flush());
  CK_RETURN_IF_ERROR(bitmap_->Persist(pending));
  if (bitmap_->All()) {
    // Every region is durable: the target is complete, and the map that
    // marked it incomplete goes.
    CK_RETURN_IF_ERROR(bitmap_->Remove());
    complete_ = true;
    std::shared_ptr<Backend> old;
    {
      std::lock_guard<std::mutex> g(mu_);
      old.swap(base_);
      if (start_ns_ && !end_ns_) end_ns_ = MonoNs();
    }
    cv_.notify_all();
    log::Info("hydrate complete: {} holds all {} bytes; served from it alone", target_->path(),
              size_);
  }
  return Status::Ok();
}

Status HydrateBackend::Flush() {
  return Sync();
}

void HydrateBackend::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (running_ || thread_.joinable() || complete_) return;
  running_ = true;
  start_ns_ = MonoNs();
  thread_ = std::thread([this] { Run(); });
}

void HydrateBackend::Run() {
  std::vector<char> buf;
  const uint64_t bits = bitmap_->bits();
  const uint64_t batch = std::max<uint64_t>(1, options_.batch_bytes / rs_);
  uint64_t since_sync = 0;
  uint64_t last_sync_ns = MonoNs();
  Status failed;
  for (uint64_t r = 0; r < bits;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) break;
    }
    r = bitmap_->NextClear(r, bits);
    if (r >= bits) break;
    uint64_t r2 = std::min(bitmap_->NextSet(r, bits), r + batch);
    uint64_t before;
    {
      std::lock_guard<std::mutex> l(mu_);
      before = copied_;
    }
    {
      RangeLock::Guard guard = locks_.Lock(r * rs_, r2 * rs_);
      failed = CopyRegions(r, r2 - 1, &buf, true);
    }
    if (!failed.ok()) break;
    {
      std::lock_guard<std::mutex> l(mu_);
      since_sync += copied_ - before;
    }
    r = r2;
    uint64_t now = MonoNs();
    if (since_sync >= options_.sync_every_bytes ||
        now - last_sync_ns >= static_cast<uint64_t>(options_.sync_every.count()) * 1000) {
      failed = Sync();
      if (!failed.ok()) break;
      since_sync = 0;
      last_sync_ns = now;
    }
  }
  if (failed.ok()) failed = Sync();
  std::lock_guard<std::mutex> l(mu_);
  if (!failed.ok()) {
    error_ = failed.message();
    log::Error("hydrate of {} stopped: {}", target_->path(), error_);
  } else if (!complete_ && failed_regions_ > 0 && !stop_) {
    error_ = fmt::format("{} regions could not be read from the snapshot; {} stays incomplete",
                         failed_regions_, target_->path());
    log::Error("hydrate: {}", error_);
  }
  if (!end_ns_) end_ns_ = MonoNs();
  running_ = false;
  cv_.notify_all();
}

void HydrateBackend::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (bitmap_) {
    Status s = Sync();
    if (!s.ok()) log::Error("hydrate: cannot record progress at stop: {}", s.message());
  }
}

bool HydrateBackend::WaitComplete(Micros timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, timeout, [&] { return complete_.load() || (!running_ && thread_.joinable()); });
  return complete_.load();
}

}  // namespace cloudkeep::nbd
