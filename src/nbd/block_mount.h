// BlockMount: the file system inside a Backend, mounted read-only.
//
// Mechanism. The kernel can only mount a block device. These machines have
// no nbd kernel module (so no nbd-client), but FUSE and loop devices work:
//
//   Backend --FuseFile--> <state>/<pid>.fuse/<name>   (one file, direct I/O)
//           --loop (read-only, autoclear, offset/size of --partition)--> /dev/loopN
//           --mount(2) ro,nosuid,nodev + per-type options--> MOUNTPOINT
//
// A daemon process serves the FUSE file (it holds the backend, hence the
// store's shared lock) until `umount` (Unmount below) or SIGTERM/SIGINT;
// `mount` returns as soon as the file system is mounted. State for umount
// is in <state>/<pid>.json, the daemon's log in <state>/<pid>.log.
//
// Cleanup when the daemon dies. If the daemon is killed (SIGKILL included),
// the FUSE connection dies with it and the file system on the loop device
// would stay mounted, answering EIO, with the loop device and the FUSE
// mount under it. Loop autoclear alone cannot fix that (the mounted file
// system keeps the loop device open), nor can libfuse's auto_unmount (it
// unmounts only the FUSE directory, under a file system still mounted on
// top). So, as the freeze watchdog does for FIFREEZE, the daemon forks a
// watchdog before anything is set up: its own process group, SIGINT/SIGTERM/
// SIGHUP ignored, a socket to the daemon over which the daemon announces
// each thing it sets up. When the socket reaches EOF without a "done", the
// daemon is gone, and the watchdog detaches the mount (MNT_DETACH), lets
// the loop device go (autoclear: it detaches itself once the lazily
// unmounted file system lets go of it — at once, unless a process still has
// a file open in it), unmounts the FUSE directory, removes the state file
// and exits. Autoclear also covers the moment between LOOP_CONFIGURE and the
// announcement: the daemon's own descriptor was the only user.
//
// Thread safety: call from a single-threaded process (it forks).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "core/fs.h"
#include "core/output.h"
#include "core/status.h"
#include "nbd/backend.h"

namespace cloudkeep::nbd {

constexpr const char* kDefaultMountStateDir = "/run/cloudkeep/mounts";

struct MountRequest {
  std::string mountpoint;  // an existing directory, not a mount point yet
  int partition = 0;       // 0: the whole device; else as ReadPartitions numbers them
  std::string file_name;   // the FUSE file ("snap-….img")
  std::string what;        // recorded for umount and logs ("snapshot snap-… of /dev/sdb")
  std::string state_dir = kDefaultMountStateDir;
  bool foreground = false;  // serve in this process until SIGINT/SIGTERM
  SystemPaths paths;        // where the mount table is read
};

struct MountInfo {
  std::string mountpoint;  // real path
  std::string device;      // /dev/loopN
  std::string fstype;
  std::string options;  // as passed to mount(2), "ro,nosuid,nodev,…"
  std::string fuse_file;
  std::string state_file;
  std::string log_file;
  std::string what;
  int partition = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  pid_t pid = 0;  // the serving daemon
  pid_t watchdog_pid = 0;
  Json ToJson() const;
};

// Checks the request (root, an unused directory, a file system at the
// partition: kUsage naming what is wrong and what there is), then mounts.
// Background (default): forks the daemon and returns once it has mounted
// (or with its error). Foreground: mounts, calls on_ready, serves until
// SIGINT or SIGTERM, unmounts and returns.
Result<MountInfo> MountReadOnly(std::shared_ptr<Backend> backend, const MountRequest& request,
                                const std::function<void(const MountInfo&)>& on_ready);

// Undoes a MountReadOnly: unmounts MOUNTPOINT (kFailure naming it when it is
// busy, unless `lazy`), stops the daemon and waits for it and its watchdog,
// and cleans up what a daemon that died left. kUsage when MOUNTPOINT is not
// such a mount.
Result<MountInfo> UnmountReadOnly(const std::string& mountpoint, bool lazy,
                                  const std::string& state_dir = kDefaultMountStateDir,
                                  const SystemPaths& paths = {});

}  // namespace cloudkeep::nbd
