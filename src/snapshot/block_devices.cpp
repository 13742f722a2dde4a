#include "snapshot/block_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/fs.h"

namespace cloudkeep::snapshot {

namespace {

std::string ReadTrimmed(const std::string& path) {
  auto r = ReadFile(path);
  if (!r.ok()) return "";
  std::string s = *r;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// by-id link name for each device name ("sda", "nvme0n1"); the first name in
// sorted order, preferring names that carry a serial over wwn- names.
std::map<std::string, std::string> ByIdNames(const SystemPaths& paths) {
  std::map<std::string, std::string> out;
  for (const auto& name : ListDir(paths.by_id)) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink((paths.by_id + "/" + name).c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    buf[n] = 0;
    std::string target = BaseName(buf);
    auto it = out.find(target);
    bool better =
        it == out.end() || (it->second.rfind("wwn-", 0) == 0 && name.rfind("wwn-", 0) != 0);
    if (better) out[target] = name;
  }
  return out;
}

void FillMounts(Volume& v, unsigned major, unsigned minor, const std::vector<MountEntry>& mounts) {
  for (const auto& m : mounts) {
    if (m.major == major && m.minor == minor) {
      v.mountpoints.push_back(m.mountpoint);
      if (v.filesystem.empty()) v.filesystem = m.fstype;
    }
  }
  if (!v.mountpoints.empty()) v.mountpoint = v.mountpoints.front();
}

bool ParseDevNumber(const std::string& s, unsigned* major, unsigned* minor) {
  return std::sscanf(s.c_str(), "%u:%u", major, minor) == 2;
}

Volume DescribeSysBlock(const std::string& sysdir, const std::string& name, const std::string& kind,
                        const std::vector<MountEntry>& mounts,
                        const std::map<std::string, std::string>& by_id, const SystemPaths& paths) {
  Volume v;
  v.device = paths.dev + "/" + name;
  v.kind = kind;
  v.size_bytes = std::strtoull(ReadTrimmed(sysdir + "/size").c_str(), nullptr, 10) * 512;
  unsigned major = 0, minor = 0;
  ParseDevNumber(ReadTrimmed(sysdir + "/dev"), &major, &minor);
  FillMounts(v, major, minor, mounts);
  auto it = by_id.find(name);
  if (it != by_id.end()) {
    v.id = it->second;
  } else {
    v.id = v.device;
  }
  std::string backing = ReadTrimmed(sysdir + "/loop/backing_file");
  if (!backing.empty()) v.attributes["backing_file"] = backing;
  std::string serial = ReadTrimmed(sysdir + "/device/serial");
  if (!serial.empty()) v.attributes["serial"] = serial;
  if (v.filesystem.empty() && ::access(v.device.c_str(), R_OK) == 0)
    v.filesystem = ProbeFilesystem(v.device);
  return v;
}

}  // namespace

std::vector<MountEntry> MountsOfDevice(unsigned major, unsigned minor, const SystemPaths& paths) {
  std::vector<MountEntry> out;
  for (auto& m : ReadMountInfo(paths.mountinfo))
    if (m.major == major && m.minor == minor) out.push_back(m);
  return out;
}

std::string ProbeFilesystem(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  char buf[0x10048];
  ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
  if (n >= 4 && std::memcmp(buf, "XFSB", 4) == 0) return "xfs";
  if (n >= 0x10048 && std::memcmp(buf + 0x10040, "_BHRfS_M", 8) == 0) return "btrfs";
  if (n >= 0x43a && static_cast<unsigned char>(buf[0x438]) == 0x53 &&
      static_cast<unsigned char>(buf[0x439]) == 0xEF)
    return "ext4";
  return "";
}

Result<std::vector<Volume>> ListBlockDevices(bool include_all, const SystemPaths& paths) {
  auto mounts = ReadMountInfo(paths.mountinfo);
  auto by_id = ByIdNames(paths);
  std::vector<Volume> out;
  for (const auto& name : ListDir(paths.sys_block)) {
    std::string sysdir = paths.sys_block + "/" + name;
    bool pseudo =
        name.rfind("loop", 0) == 0 || name.rfind("ram", 0) == 0 || name.rfind("zram", 0) == 0;
    if (pseudo && !include_all) continue;
    std::string kind = name.rfind("loop", 0) == 0 ? "loop" : (pseudo ? "ram" : "disk");
    Volume v = DescribeSysBlock(sysdir, name, kind, mounts, by_id, paths);
    if (v.size_bytes == 0) continue;  // an unbound loop device, an empty drive
    out.push_back(v);
    for (const auto& sub : ListDir(sysdir)) {
      if (sub.rfind(name, 0) != 0 ||
          ::access((sysdir + "/" + sub + "/partition").c_str(), F_OK) != 0)
        continue;
      out.push_back(DescribeSysBlock(sysdir + "/" + sub, sub, "part", mounts, by_id, paths));
    }
  }
  return out;
}

Result<Volume> DescribeVolume(const std::string& path, const SystemPaths& paths) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Usage(fmt::format("volume '{}' does not exist: {}", path, std::strerror(errno)));
  }
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Status::FromErrno("cannot resolve " + path, errno);
  std::string rp = real;
  if (::access(rp.c_str(), R_OK) != 0) {
    return Status::Usage(
        fmt::format("volume '{}' is not readable: {}", path, std::strerror(errno)));
  }
  if (S_ISBLK(st.st_mode)) {
    unsigned major = ::major(st.st_rdev), minor = ::minor(st.st_rdev);
    std::string name = BaseName(rp);
    std::string sysdir = paths.sys_block + "/" + name;
    if (::access(sysdir.c_str(), F_OK) != 0) {
      // A partition lives under its disk's folder.
      char link[PATH_MAX];
      std::string devlink = fmt::format("/sys/dev/block/{}:{}", major, minor);
      ssize_t n = ::readlink(devlink.c_str(), link, sizeof link - 1);
      if (n > 0) {
        link[n] = 0;
        sysdir = "/sys/dev/block/" + std::string(link);
      }
    }
    std::string kind = name.rfind("loop", 0) == 0                             ? "loop"
                       : ::access((sysdir + "/partition").c_str(), F_OK) == 0 ? "part"
                                                                              : "disk";
    Volume v = DescribeSysBlock(sysdir, name, kind, ReadMountInfo(paths.mountinfo),
                                ByIdNames(paths), paths);
    v.device = rp;
    if (v.id == paths.dev + "/" + name) v.id = rp;
    // The kernel's view of the size wins over sysfs (which may be missing in containers).
    UniqueFd fd(::open(rp.c_str(), O_RDONLY | O_CLOEXEC));
    uint64_t size = 0;
    if (fd.valid() && ::ioctl(fd.get(), BLKGETSIZE64, &size) == 0) v.size_bytes = size;
    return v;
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::Usage(
        fmt::format("volume '{}' is neither a block device nor a regular image file", path));
  }
  Volume v;
  v.id = rp;
  v.device = rp;
  v.kind = "file";
  v.size_bytes = static_cast<uint64_t>(st.st_size);
  // Loop devices backed by this file carry its mounts.
  auto mounts = ReadMountInfo(paths.mountinfo);
  for (const auto& name : ListDir(paths.sys_block)) {
    if (name.rfind("loop", 0) != 0) continue;
    std::string backing = ReadTrimmed(paths.sys_block + "/" + name + "/loop/backing_file");
    if (backing != rp) continue;
    unsigned major = 0, minor = 0;
    ParseDevNumber(ReadTrimmed(paths.sys_block + "/" + name + "/dev"), &major, &minor);
    FillMounts(v, major, minor, mounts);
    v.attributes["loop_device"] = paths.dev + "/" + name;
  }
  if (v.filesystem.empty()) v.filesystem = ProbeFilesystem(rp);
  return v;
}

std::vector<std::string> LoopDevicesBackedBy(const std::string& path, const SystemPaths& paths) {
  std::vector<std::string> out;
  struct stat target {};
  if (::stat(path.c_str(), &target) != 0) return out;
  for (const auto& name : ListDir(paths.sys_block)) {
    if (name.rfind("loop", 0) != 0) continue;
    std::string backing = ReadTrimmed(paths.sys_block + "/" + name + "/loop/backing_file");
    if (backing.empty()) continue;
    struct stat st {};
    if (::stat(backing.c_str(), &st) == 0 && st.st_dev == target.st_dev &&
        st.st_ino == target.st_ino)
      out.push_back(paths.dev + "/" + name);
  }
  return out;
}

std::vector<std::string> WritersOf(const std::string& path, const SystemPaths& paths) {
  std::vector<std::string> out;
  struct stat target {};
  if (::stat(path.c_str(), &target) != 0) return out;
  const std::string self = std::to_string(::getpid());
  for (const auto& pid : ListDir(paths.proc)) {
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit) || pid == self) continue;
    std::string fd_dir = paths.proc + "/" + pid + "/fd";
    for (const auto& fd : ListDir(fd_dir)) {
      struct stat st {};
      if (::stat((fd_dir + "/" + fd).c_str(), &st) != 0 || st.st_dev != target.st_dev ||
          st.st_ino != target.st_ino)
        continue;
      // fdinfo's "flags:" is the open(2) flags in octal.
      auto info = ReadFile(paths.proc + "/" + pid + "/fdinfo/" + fd);
      if (!info.ok()) continue;
      auto at = info->find("flags:");
      if (at == std::string::npos) continue;
      unsigned long flags = std::strtoul(info->c_str() + at + 6, nullptr, 8);
      if ((flags & O_ACCMODE) == O_RDONLY) continue;
      out.push_back(pid + " (" + ReadTrimmed(paths.proc + "/" + pid + "/comm") + ")");
      break;
    }
  }
  return out;
}

}  // namespace cloudkeep::snapshot
