#include "nbd/overlay_backend.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "nbd/fd_io.h"

namespace cloudkeep::nbd {

namespace {

// Stop appending extents after this many: the client asks again from there.
constexpr size_t kMaxExtents = 4096;

// Appends to `out`, merging with the last extent appended by this call.
void AddExtent(std::vector<Extent>* out, size_t first, uint64_t length, uint32_t flags) {
  if (length == 0) return;
  if (out->size() > first && out->back().flags == flags) {
    out->back().length += length;
    return;
  }
  out->push_back(Extent{length, flags});
}

}  // namespace

OverlayBackend::OverlayBackend(std::shared_ptr<Backend> base, OverlayOptions options)
    : base_(std::move(base)), options_(std::move(options)) {
  size_ = base_->Size();
  bs_ = options_.block_size;
}

OverlayBackend::~OverlayBackend() {
  // A clean stop keeps every write: the map catches up with the data.
  if (bitmap_ && bitmap_->persistent()) (void)Flush();
}

Result<std::unique_ptr<OverlayBackend>> OverlayBackend::Open(std::shared_ptr<Backend> base,
                                                             OverlayOptions options) {
  if (options.block_size < 512 || (options.block_size & (options.block_size - 1)))
    return Status::Usage(fmt::format("overlay block size {} is not a power of two of at least 512",
                                     options.block_size));
  std::unique_ptr<OverlayBackend> o(new OverlayBackend(std::move(base), std::move(options)));
  const std::string& path = o->options_.path;
  const uint64_t size = o->size_;

  if (path.empty()) {
    const std::string& dir = o->options_.tmp_dir;
    o->fd_ = UniqueFd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!o->fd_.valid()) {
      // O_TMPFILE needs filesystem support; an unlinked named file does the same.
      std::string tmpl = dir + "/cloudkeep-overlay.XXXXXX";
      std::vector<char> name(tmpl.begin(), tmpl.end());
      name.push_back('\0');
      int fd = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd < 0) return Status::FromErrno("cannot create a temporary overlay in " + dir, errno);
      ::unlink(name.data());
      o->fd_ = UniqueFd(fd);
    }
    if (::ftruncate(o->fd_.get(), static_cast<off_t>(size)) != 0)
      return Status::FromErrno("cannot size the temporary overlay", errno);
    o->bitmap_ = DurableBitmap::InMemory(size, o->bs_);
    return o;
  }

  MapHeader expect{MapKind::kOverlay, size, o->bs_, o->options_.identity};
  std::string map = OverlayMapPath(path);
  struct stat st {};
  bool data_exists = ::stat(path.c_str(), &st) == 0;
  if (data_exists && !S_ISREG(st.st_mode))
    return Status::Usage(fmt::format("overlay '{}' is not a regular file", path));
  if (::access(map.c_str(), F_OK) == 0) {
    CK_ASSIGN_OR_RETURN(o->bitmap_, DurableBitmap::Open(map, expect));
    o->resumed_ = true;
    if (!data_exists && o->bitmap_->Count() > 0)
      return Status::Usage(
          fmt::format("overlay data '{}' is missing, but its map '{}' records {} "
                      "written blocks",
                      path, map, o->bitmap_->Count()));
  } else {
    if (data_exists)
      return Status::Usage(fmt::format(
          "'{}' exists and is not a cloudkeep overlay (there is no '{}'); remove it or choose "
          "another --overlay",
          path, map));
    // The map first: a data file never exists without the map that explains it.
    CK_ASSIGN_OR_RETURN(o->bitmap_, DurableBitmap::Create(map, expect));
  }
  o->fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!o->fd_.valid()) return Status::FromErrno("cannot open overlay " + path, errno);
  if (::fstat(o->fd_.get(), &st) != 0) return Status::FromErrno("cannot stat " + path, errno);
  if (static_cast<uint64_t>(st.st_size) != size) {
    if (o->bitmap_->Count() > 0)
      return Status::Usage(
          fmt::format("overlay '{}' has {} bytes, its export {}", path, st.st_size, size));
    if (::ftruncate(o->fd_.get(), static_cast<off_t>(size)) != 0)
      return Status::FromErrno("cannot size overlay " + path, errno);
  }
  if (!data_exists) CK_RETURN_IF_ERROR(FsyncDir(DirName(path)));
  return o;
}

BackendCaps OverlayBackend::Caps() const {
  BackendCaps c;
  c.writable = c.flush = c.fua = c.trim = c.zero = c.fast_zero = c.extents = true;
  c.cache = base_->Caps().cache;
  // One descriptor and one bitmap for every connection: one Flush covers all.
  c.multi_conn = true;
  return c;
}

std::string OverlayBackend::Description() const {
  return fmt::format("{}, writable overlay {}", base_->Description(),
                     options_.path.empty() ? "(temporary)" : options_.path);
}

Status OverlayBackend::OverlayPread(void* buf, uint64_t count, uint64_t offset) {
  return PreadFull(fd_.get(), buf, count, offset, "overlay");
}

Status OverlayBackend::OverlayPwrite(const void* buf, uint64_t count, uint64_t offset) {
  return PwriteFull(fd_.get(), buf, count, offset, "overlay");
}

Status OverlayBackend::OverlayZero(uint64_t count, uint64_t offset) {
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(count)) == 0)
    return Status::Ok();
  if (errno != EOPNOTSUPP && errno != ENOSYS)
    return Status::FromErrno("cannot punch a hole in the overlay", errno);
  std::vector<char> zeros(std::min<uint64_t>(count, 1 << 20), 0);
  for (uint64_t done = 0; done < count;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), count - done);
    CK_RETURN_IF_ERROR(OverlayPwrite(zeros.data(), n, offset + done));
    done += n;
  }
  return Status::Ok();
}

Status OverlayBackend::ReadBlock(uint64_t b, char* buf, uint64_t* len) {
  uint64_t start = b * bs_;
  *len = std::min(bs_, size_ - start);
  if (bitmap_->Test(b)) return OverlayPread(buf, *len, start);
  return base_->Pread(buf, *len, start);
}

Status OverlayBackend::Pread(void* buf, uint64_t count, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  const uint64_t end = offset + count;
  const uint64_t limit = (end + bs_ - 1) / bs_;
  for (uint64_t pos = offset; pos < end;) {
    uint64_t b = pos / bs_;
    bool in_overlay = bitmap_->Test(b);
    uint64_t next = in_overlay ? bitmap_->NextClear(b, limit) : bitmap_->NextSet(b, limit);
    uint64_t run_end = std::min(end, next * bs_);
    Status s = in_overlay ? OverlayPread(p + (pos - offset), run_end - pos, pos)
                          : base_->Pread(p + (pos - offset), run_end - pos, pos);
    CK_RETURN_IF_ERROR(s);
    pos = run_end;
  }
  return Status::Ok();
}

Status OverlayBackend::Write(const void* buf, uint64_t count, uint64_t offset, bool fua) {
  if (count == 0) return fua ? Flush() : Status::Ok();
  const auto* src = static_cast<const char*>(buf);
  const uint64_t end = offset + count;
  const uint64_t first = offset / bs_, last = (end - 1) / bs_;
  RangeLock::Guard guard = locks_.Lock(first * bs_, (last + 1) * bs_);

  // The part of block b this write covers, and whether that is all of it.
  auto covered = [&](uint64_t b, uint64_t* from, uint64_t* to) {
    uint64_t bstart = b * bs_, bend = std::min(bstart + bs_, size_);
    *from = std::max(offset, bstart);
    *to = std::min(end, bend);
    return *from == bstart && *to == bend;
  };
  std::vector<char> block;
  auto modify = [&](uint64_t b) -> Status {
    uint64_t from, to, len;
    covered(b, &from, &to);
    block.resize(bs_);
    CK_RETURN_IF_ERROR(ReadBlock(b, block.data(), &len));
    char* dst = block.data() + (from - b * bs_);
    if (src)
      std::memcpy(dst, src + (from - offset), to - from);
    else
      std::memset(dst, 0, to - from);
    return OverlayPwrite(block.data(), len, b * bs_);
  };

  uint64_t from, to;
  uint64_t full_first = first, full_last = last + 1;  // [full_first, full_last) are whole
  if (!covered(first, &from, &to)) {
    CK_RETURN_IF_ERROR(modify(first));
    full_first = first + 1;
  }
  if (last != first && !covered(last, &from, &to)) {
    CK_RETURN_IF_ERROR(modify(last));
    full_last = last;
  }
  if (full_first < full_last) {
    uint64_t a = full_first * bs_, z = std::min(full_last * bs_, size_);
    CK_RETURN_IF_ERROR(src ? OverlayPwrite(src + (a - offset), z - a, a) : OverlayZero(z - a, a));
  }
  // Only now may readers take these blocks from the overlay.
  for (uint64_t b = first; b <= last; ++b) bitmap_->Set(b);
  guard.Release();
  return fua ? Flush() : Status::Ok();
}

Status OverlayBackend::Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) {
  return Write(buf, count, offset, fua);
}

Status OverlayBackend::Trim(uint64_t count, uint64_t offset, bool fua) {
  // Recorded as zero: the base's bytes must not show through a trimmed range.
  return Write(nullptr, count, offset, fua);
}

Status OverlayBackend::Zero(uint64_t count, uint64_t offset, bool /*may_trim*/, bool /*fast*/,
                            bool fua) {
  // Punching a hole and setting bits is always fast, so FAST_ZERO never fails here.
  return Write(nullptr, count, offset, fua);
}

Status OverlayBackend::Flush() {
  std::lock_guard<std::mutex> l(flush_mu_);
  // Capture first: every bit captured belongs to a write whose data reached
  // the overlay before the bit was set, hence before this fdatasync.
  DurableBitmap::Pending pending = bitmap_->Capture();
  if (::fdatasync(fd_.get()) != 0) return Status::FromErrno("cannot fdatasync the overlay", errno);
  return bitmap_->Persist(pending);
}

Status OverlayBackend::Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) {
  const size_t first = out->size();
  const uint64_t end = offset + count;
  const uint64_t limit = (end + bs_ - 1) / bs_;
  const bool base_extents = base_->Caps().extents;
  for (uint64_t pos = offset; pos < end && out->size() - first < kMaxExtents;) {
    uint64_t b = pos / bs_;
    bool in_overlay = bitmap_->Test(b);
    uint64_t next = in_overlay ? bitmap_->NextClear(b, limit) : bitmap_->NextSet(b, limit);
    uint64_t run_end = std::min(end, next * bs_);
    if (in_overlay) {
      // Holes in the overlay are blocks written as zeroes (or trimmed).
      while (pos < run_end) {
        off_t d = ::lseek(fd_.get(), static_cast<off_t>(pos), SEEK_DATA);
        if (d < 0 && errno != ENXIO) return Status::FromErrno("overlay SEEK_DATA", errno);
        uint64_t data = d < 0 ? run_end : std::min<uint64_t>(static_cast<uint64_t>(d), run_end);
        if (data > pos) {
          AddExtent(out, first, data - pos, Extent::kHole | Extent::kZero);
          pos = data;
          continue;
        }
        off_t h = ::lseek(fd_.get(), static_cast<off_t>(pos), SEEK_HOLE);
        if (h < 0) return Status::FromErrno("overlay SEEK_HOLE", errno);
        uint64_t hole =
            std::min<uint64_t>(std::max<uint64_t>(static_cast<uint64_t>(h), pos + 1), run_end);
        AddExtent(out, first, hole - pos, 0);
        pos = hole;
      }
    } else if (base_extents) {
      std::vector<Extent> from_base;
      CK_RETURN_IF_ERROR(base_->Extents(run_end - pos, pos, &from_base));
      if (from_base.empty()) return Status::FromErrno("base returned no extents", EIO);
      for (const Extent& e : from_base) {
        uint64_t len = std::min(e.length, run_end - pos);
        AddExtent(out, first, len, e.flags);
        pos += len;
        if (pos >= run_end) break;
      }
    } else {
      AddExtent(out, first, run_end - pos, 0);
      pos = run_end;
    }
  }
  return Status::Ok();
}

Status OverlayBackend::Cache(uint64_t count, uint64_t offset) {
  if (!base_->Caps().cache) return Status::Ok();
  const uint64_t end = offset + count;
  const uint64_t limit = (end + bs_ - 1) / bs_;
  for (uint64_t pos = offset; pos < end;) {
    uint64_t b = pos / bs_;
    bool in_overlay = bitmap_->Test(b);
    uint64_t next = in_overlay ? bitmap_->NextClear(b, limit) : bitmap_->NextSet(b, limit);
    uint64_t run_end = std::min(end, next * bs_);
    if (!in_overlay) CK_RETURN_IF_ERROR(base_->Cache(run_end - pos, pos));
    pos = run_end;
  }
  return Status::Ok();
}

}  // namespace cloudkeep::nbd
