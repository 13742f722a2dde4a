// FuseFile: any Backend as one regular file in a FUSE directory.
//
// `snapshot mount` needs the snapshot as a block device for the kernel to
// mount its file system. There is no nbd kernel module on these machines
// (so no nbd-client), but FUSE and loop devices work: the backend becomes a
// file <dir>/<name> through FUSE, and a loop device over that file is the
// block device (block_mount.h). The file is opened with direct I/O, so the
// kernel keeps no second copy of what the loop device's page cache holds;
// reads of up to 1 MiB reach the backend in one request.
//
// Thread safety: the FUSE session runs its own worker threads, which call
// the backend concurrently (a Backend is thread-safe). Mount/Unmount from
// one thread.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "core/status.h"
#include "nbd/backend.h"

struct fuse_session;

namespace cloudkeep::nbd {

struct FuseFileOptions {
  std::string dir;   // an empty directory; the FUSE file system is mounted on it
  std::string name;  // the one file in it
  bool writable = false;
  unsigned max_threads = 16;
};

class FuseFile {
 public:
  // Mounts and starts serving; returns once the file can be opened.
  static Result<std::unique_ptr<FuseFile>> Mount(std::shared_ptr<Backend> backend,
                                                 FuseFileOptions options);
  ~FuseFile();  // Unmount()
  FuseFile(const FuseFile&) = delete;
  FuseFile& operator=(const FuseFile&) = delete;

  // <dir>/<name>
  std::string path() const { return options_.dir + "/" + options_.name; }
  // Unmounts and stops the workers. If something still holds the file after
  // two seconds it is detached lazily and the workers end with the process.
  void Unmount();

  struct State;  // what the FUSE callbacks see

 private:
  FuseFile() = default;
  FuseFileOptions options_;
  std::unique_ptr<State> state_;
  fuse_session* session_ = nullptr;
  std::thread loop_;
};

}  // namespace cloudkeep::nbd
