#include "snapshot/freeze.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

namespace cloudkeep::snapshot {

namespace {

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return p;
  return buf;
}

}  // namespace

Result<std::vector<std::string>> ResolveFreezeTargets(const FreezeRequest& request,
                                                      const std::vector<Volume>& volumes,
                                                      const std::vector<MountEntry>& mounts) {
  std::vector<std::string> out;
  if (!request.mountpoints.empty()) {
    for (const auto& named : request.mountpoints) {
      std::string real = RealPath(named);
      bool mounted = std::any_of(mounts.begin(), mounts.end(),
                                 [&](const MountEntry& m) { return m.mountpoint == real; });
      if (!mounted) return Status::Usage(fmt::format("--freeze: '{}' is not a mountpoint", named));
      out.push_back(real);
    }
  } else {
    for (const auto& v : volumes) {
      if (v.mountpoints.empty()) {
        return Status::Usage(fmt::format(
            "--freeze: volume '{}' is not mounted here, so there is nothing to freeze; name the "
            "mountpoints (--freeze MOUNTPOINT) or leave out --freeze",
            v.id));
      }
      for (const auto& m : v.mountpoints) out.push_back(m);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) return Status::Usage("--freeze: no mountpoint to freeze");
  if (!request.allow_root && std::find(out.begin(), out.end(), "/") != out.end()) {
    return Status::Usage(
        "--freeze: refusing to freeze '/' (the shell, logs and cloudkeep itself live there); add "
        "--freeze-root if that is really intended");
  }
  return out;
}

Status CheckNothingWrittenToFrozen(const std::vector<std::string>& mountpoints,
                                   const std::vector<Volume>& volumes) {
  for (const auto& m : mountpoints) {
    struct stat mst {};
    if (::stat(m.c_str(), &mst) != 0) continue;
    for (const auto& v : volumes) {
      if (v.kind != "file") continue;
      struct stat vst {};
      if (::stat(v.device.c_str(), &vst) == 0 && vst.st_dev == mst.st_dev) {
        return Status::Usage(fmt::format(
            "--freeze: image '{}' lives on '{}', which would be frozen; its copy could not be "
            "written there",
            v.device, m));
      }
    }
  }
  return Status::Ok();
}

Result<UniqueFd> OpenMountpoint(const std::string& mountpoint) {
  UniqueFd fd(::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open mountpoint " + mountpoint, errno);
  return fd;
}

Status Freeze(int fd, const std::string& mountpoint) {
  if (::ioctl(fd, FIFREEZE, 0) == 0) return Status::Ok();
  int err = errno;
  if (err == EBUSY)
    return Status::Failure(
        fmt::format("cannot freeze {}: it is already frozen (by another program?)", mountpoint));
  if (err == EOPNOTSUPP || err == ENOTTY)
    return Status::Failure(
        fmt::format("cannot freeze {}: its filesystem does not support freezing", mountpoint));
  return Status::FromErrno("cannot freeze " + mountpoint, err);
}

Status Thaw(int fd, const std::string& mountpoint, bool* not_frozen) {
  *not_frozen = false;
  if (::ioctl(fd, FITHAW, 0) == 0) return Status::Ok();
  int err = errno;
  if (err == EINVAL) {
    *not_frozen = true;
    return Status::Failure(fmt::format("{} was not frozen any more", mountpoint));
  }
  return Status::FromErrno("cannot thaw " + mountpoint, err);
}

}  // namespace cloudkeep::snapshot
