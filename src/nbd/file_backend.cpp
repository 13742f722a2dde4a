#include "nbd/file_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace cloudkeep::nbd {

Result<std::unique_ptr<FileBackend>> FileBackend::Open(const std::string& path, bool writable) {
  if (path.empty()) return Status::Usage("the export path is empty");
  UniqueFd fd(open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT) return Status::Usage("'" + path + "' does not exist");
    return Status::FromErrno("open '" + path + "'", err);
  }
  return Adopt(std::move(fd), path, writable);
}

Result<std::unique_ptr<FileBackend>> FileBackend::Adopt(UniqueFd fd, const std::string& path,
                                                        bool writable) {
  std::unique_ptr<FileBackend> b(new FileBackend());
  b->path_ = path;
  b->writable_ = writable;
  b->fd_ = std::move(fd);
  struct stat st {};
  if (fstat(b->fd_.get(), &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (S_ISBLK(st.st_mode)) {
    b->block_device_ = true;
    uint64_t size = 0;
    if (ioctl(b->fd_.get(), BLKGETSIZE64, &size) != 0)
      return Status::FromErrno("BLKGETSIZE64 '" + path + "'", errno);
    b->size_ = size;
  } else if (S_ISREG(st.st_mode)) {
    b->size_ = static_cast<uint64_t>(st.st_size);
  } else {
    return Status::Usage("'" + path + "' is neither a regular file nor a block device");
  }
  return b;
}

BackendCaps FileBackend::Caps() const {
  BackendCaps c;
  c.writable = writable_;
  c.flush = writable_;
  c.fua = writable_;
  c.trim = writable_;
  c.zero = writable_;
  c.fast_zero = writable_;
  c.extents = !block_device_;
  c.cache = true;
  c.multi_conn = true;  // one descriptor: fdatasync covers every connection's writes
  return c;
}

Status FileBackend::Pread(void* buf, uint64_t count, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (count > 0) {
    ssize_t n = pread(fd_.get(), p, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + path_, errno);
    }
    if (n == 0) {  // the file shrank under us: what is past its end reads as zeroes
      std::fill(p, p + count, 0);
      return Status::Ok();
    }
    p += n;
    count -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status FileBackend::Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) {
  if (!writable_) return Backend::Pwrite(buf, count, offset, fua);
  const auto* p = static_cast<const char*>(buf);
  uint64_t left = count;
  uint64_t at = offset;
  while (left > 0) {
    ssize_t n = pwrite(fd_.get(), p, left, static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + path_, errno);
    }
    p += n;
    left -= static_cast<uint64_t>(n);
    at += static_cast<uint64_t>(n);
  }
  return fua ? Flush() : Status::Ok();
}

Status FileBackend::Flush() {
  if (!writable_) return Status::Ok();
  if (fdatasync(fd_.get()) != 0) return Status::FromErrno("fdatasync " + path_, errno);
  return Status::Ok();
}

Status FileBackend::Trim(uint64_t count, uint64_t offset, bool fua) {
  if (!writable_) return Backend::Trim(count, offset, fua);
  if (block_device_) {
    uint64_t range[2] = {offset, count};
    // A device that cannot discard simply keeps the data: trim is advisory.
    if (ioctl(fd_.get(), BLKDISCARD, range) != 0 && errno != EOPNOTSUPP)
      return Status::FromErrno("BLKDISCARD " + path_, errno);
  } else if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(offset), static_cast<off_t>(count)) != 0 &&
             errno != EOPNOTSUPP) {
    return Status::FromErrno("punch hole in " + path_, errno);
  }
  return fua ? Flush() : Status::Ok();
}

Status FileBackend::Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) {
  if (!writable_) return Backend::Zero(count, offset, may_trim, fast, fua);
  int rc = -1;
  if (block_device_) {
    uint64_t range[2] = {offset, count};
    rc = ioctl(fd_.get(), BLKZEROOUT, range);
  } else {
    if (may_trim)
      rc = fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(offset), static_cast<off_t>(count));
    if (rc != 0)
      rc = fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(offset), static_cast<off_t>(count));
  }
  if (rc != 0) {
    // No fast way: say so when asked for fast, else write zero buffers.
    if (fast) return Status::FromErrno("fast zero on " + path_, ENOTSUP);
    static const std::string kZeros(1 << 20, '\0');
    while (count > 0) {
      uint64_t n = std::min<uint64_t>(count, kZeros.size());
      CK_RETURN_IF_ERROR(Pwrite(kZeros.data(), n, offset, false));
      count -= n;
      offset += n;
    }
  }
  return fua ? Flush() : Status::Ok();
}

Status FileBackend::Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) {
  if (block_device_) return Backend::Extents(count, offset, out);
  const uint64_t end = offset + count;
  uint64_t pos = offset;
  while (pos < end) {
    off_t data = lseek(fd_.get(), static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // only a hole from here to the end of the file
        out->push_back(Extent{end - pos, Extent::kHole | Extent::kZero});
        return Status::Ok();
      }
      return Backend::Extents(end - pos, pos, out);  // no SEEK_DATA: say allocated
    }
    uint64_t d = static_cast<uint64_t>(data);
    if (d > pos) {
      uint64_t n = std::min(d, end) - pos;
      out->push_back(Extent{n, Extent::kHole | Extent::kZero});
      pos += n;
      continue;
    }
    off_t hole = lseek(fd_.get(), static_cast<off_t>(pos), SEEK_HOLE);
    uint64_t h = hole < 0 ? end : static_cast<uint64_t>(hole);
    uint64_t n = std::min(std::max(h, pos + 1), end) - pos;
    out->push_back(Extent{n, 0});
    pos += n;
  }
  return Status::Ok();
}

Status FileBackend::Cache(uint64_t count, uint64_t offset) {
  posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(count),
                POSIX_FADV_WILLNEED);
  return Status::Ok();
}

}  // namespace cloudkeep::nbd
