// Small file-system helpers shared by the modules: an owning file
// descriptor, whole-file reads, the write-fsync-rename-fsync sequence that
// makes a file appear atomically and durably, and where the kernel's view of
// the machine (mounts, block devices) is read from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep {

// Owns a file descriptor; closes it once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.Release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset();

 private:
  int fd_ = -1;
};

Result<std::string> ReadFile(const std::string& path);
// Writes all of `data` to fd, retrying short writes and EINTR.
Status WriteAll(int fd, const void* data, size_t size, const std::string& what);
// Writes via "<path>.tmp-<pid>", fsync, rename over `path`, fsync of the directory:
// readers see the old file or the new one, never a torn one, even after a crash.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
Status FsyncDir(const std::string& dir);
// Entry names of a directory, sorted, without "." and ".."; empty if unreadable.
std::vector<std::string> ListDir(const std::string& dir);
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);

// Where the kernel's tables are read. Every reader of them takes one of these
// (defaulted to the real paths), so that a test can point it at a fixture tree.
struct SystemPaths {
  std::string sys_block = "/sys/block";
  std::string mountinfo = "/proc/self/mountinfo";
  std::string dev = "/dev";
  std::string by_id = "/dev/disk/by-id";
  std::string proc = "/proc";
};

// One line of proc(5)'s mountinfo, with the \ooo escapes of paths undone.
struct MountEntry {
  unsigned major = 0, minor = 0;
  std::string mountpoint;
  std::string fstype;
  std::string source;
};

// The mount table at `path` (SystemPaths::mountinfo); empty if unreadable.
std::vector<MountEntry> ReadMountInfo(const std::string& path);

}  // namespace cloudkeep
