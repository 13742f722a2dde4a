// FileBackend: an image file or a block device as an NBD export, as nbdkit's
// file plugin. pread/pwrite on one descriptor (so one fdatasync covers every
// connection: multi_conn), FUA by fdatasync after the write, trim and zero by
// fallocate (PUNCH_HOLE, ZERO_RANGE) on files and BLKDISCARD/BLKZEROOUT on
// block devices, extents by SEEK_DATA/SEEK_HOLE on files.
//
// Thread safety: all methods may be called concurrently (positional I/O).
#pragma once

#include <memory>
#include <string>

#include "core/fs.h"
#include "nbd/backend.h"

namespace cloudkeep::nbd {

class FileBackend : public Backend {
 public:
  // Opens `path` (O_RDWR when writable, else O_RDONLY). kUsage when it does
  // not exist or is neither a regular file nor a block device.
  static Result<std::unique_ptr<FileBackend>> Open(const std::string& path, bool writable);
  // Takes over a descriptor already open on `path` (the mirror opens and
  // locks its device before it serves it); kUsage as Open for other types.
  static Result<std::unique_ptr<FileBackend>> Adopt(UniqueFd fd, const std::string& path,
                                                    bool writable);

  uint64_t Size() const override { return size_; }
  BackendCaps Caps() const override;
  std::string Description() const override { return path_; }
  Status Pread(void* buf, uint64_t count, uint64_t offset) override;
  Status Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) override;
  Status Flush() override;
  Status Trim(uint64_t count, uint64_t offset, bool fua) override;
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) override;
  Status Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) override;
  Status Cache(uint64_t count, uint64_t offset) override;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  bool is_block_device() const { return block_device_; }

 private:
  FileBackend() = default;
  std::string path_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  bool writable_ = false;
  bool block_device_ = false;
};

}  // namespace cloudkeep::nbd
