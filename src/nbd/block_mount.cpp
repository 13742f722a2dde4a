#include "nbd/block_mount.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/btrfs.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/fs.h"
#include "core/log.h"
#include "nbd/fuse_file.h"
#include "nbd/partition_table.h"

namespace cloudkeep::nbd {

namespace {

using namespace std::chrono_literals;

// ---- /proc/self/mountinfo ------------------------------------------------

// Through core's parser (ReadMountInfo), at the path SystemPaths names.
bool IsMountPoint(const std::string& path, const std::string& mountinfo) {
  for (const auto& m : ReadMountInfo(mountinfo))
    if (m.mountpoint == path) return true;
  return false;
}

bool MountedFrom(const std::string& mountpoint, const std::string& device,
                 const std::string& mountinfo) {
  for (const auto& m : ReadMountInfo(mountinfo))
    if (m.mountpoint == mountpoint && m.source == device) return true;
  return false;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

// ---- processes -----------------------------------------------------------

// Field 22 of /proc/PID/stat: tells a process from a later one with its pid.
uint64_t StartTime(pid_t pid) {
  auto text = ReadFile(fmt::format("/proc/{}/stat", pid));
  if (!text.ok()) return 0;
  size_t close = text->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream ss(text->substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && ss >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return 0;
}

bool Alive(pid_t pid, uint64_t start) {
  if (pid <= 0) return false;
  uint64_t now = StartTime(pid);
  if (now == 0) return false;
  // A zombie (our own child, not reaped yet) is gone for our purposes.
  auto text = ReadFile(fmt::format("/proc/{}/stat", pid));
  if (text.ok()) {
    size_t close = text->rfind(')');
    if (close != std::string::npos && close + 2 < text->size() && (*text)[close + 2] == 'Z')
      return false;
  }
  return start == 0 || now == start;
}

bool WaitGone(pid_t pid, uint64_t start, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Alive(pid, start)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// ---- loop devices --------------------------------------------------------

std::string LoopSysfs(const std::string& device) {
  return "/sys/block/" + BaseName(device) + "/loop/backing_file";
}

// True while `device` is attached to a file under `fuse_dir`.
bool LoopBackedBy(const std::string& device, const std::string& fuse_dir) {
  auto text = ReadFile(LoopSysfs(device));
  return text.ok() && text->rfind(fuse_dir + "/", 0) == 0;
}

struct Loop {
  std::string device;
  UniqueFd fd;
};

// A free loop device over `file_fd`: read-only, autoclear, the partition's window.
Result<Loop> AttachLoop(int file_fd, const std::string& file, uint64_t offset, uint64_t size) {
  UniqueFd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl.valid()) return Status::FromErrno("cannot open /dev/loop-control", errno);
  for (int attempt = 0; attempt < 20; ++attempt) {
    int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return Status::FromErrno("no free loop device", errno);
    Loop l;
    l.device = fmt::format("/dev/loop{}", n);
    l.fd = UniqueFd(::open(l.device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!l.fd.valid()) return Status::FromErrno("cannot open " + l.device, errno);
    loop_config cfg{};
    cfg.fd = static_cast<__u32>(file_fd);
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    cfg.info.lo_offset = offset;
    cfg.info.lo_sizelimit = size;
    std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(l.fd.get(), LOOP_CONFIGURE, &cfg) == 0) return l;
    // Another program took this one between GET_FREE and CONFIGURE: next.
    if (errno != EBUSY) return Status::FromErrno("cannot set up " + l.device, errno);
  }
  return Status::Failure("cannot set up a loop device: every free one was taken meanwhile");
}

void ForgetBtrfsDevice(const std::string& device) {
  UniqueFd ctl(::open("/dev/btrfs-control", O_RDWR | O_CLOEXEC));
  if (!ctl.valid()) return;
  btrfs_ioctl_vol_args args{};
  std::strncpy(args.name, device.c_str(), BTRFS_PATH_NAME_MAX);
  (void)::ioctl(ctl.get(), BTRFS_IOC_FORGET_DEV, &args);
}

// ---- what is set up, and how it is undone ----------------------------------

struct Plan {
  std::string fuse_dir, device, mountpoint, fstype, state_file;
  std::string mountinfo = SystemPaths{}.mountinfo;
};

// Undoes a plan, last step first. `fuse` is the daemon's own FUSE session
// (it stops its workers); without it the FUSE directory is unmounted as a
// plain mount (its server is gone, or is being stopped).
Status Teardown(const Plan& p, bool lazy, FuseFile* fuse) {
  Status first;
  if (!p.mountpoint.empty() && !p.device.empty() &&
      MountedFrom(p.mountpoint, p.device, p.mountinfo)) {
    if (::umount2(p.mountpoint.c_str(), 0) != 0) {
      if (errno == EBUSY && lazy) {
        ::umount2(p.mountpoint.c_str(), MNT_DETACH);
      } else if (errno != EINVAL) {
        first = Status::FromErrno("cannot unmount " + p.mountpoint, errno);
      }
    }
  }
  if (!p.device.empty() && !p.fuse_dir.empty() && LoopBackedBy(p.device, p.fuse_dir)) {
    // Autoclear detaches it when its last user goes; this covers a loop
    // device that nothing mounted.
    UniqueFd fd(::open(p.device.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid()) (void)::ioctl(fd.get(), LOOP_CLR_FD, 0);
    for (int i = 0; i < 100 && LoopBackedBy(p.device, p.fuse_dir); ++i)
      std::this_thread::sleep_for(20ms);
  }
  if (p.fstype == "btrfs" && !p.device.empty()) ForgetBtrfsDevice(p.device);
  if (!p.fuse_dir.empty()) {
    if (fuse) {
      fuse->Unmount();
    } else if (IsMountPoint(p.fuse_dir, p.mountinfo)) {
      bool done = false;
      for (int i = 0; i < 100 && !done; ++i) {
        if (::umount2(p.fuse_dir.c_str(), 0) == 0 || errno == EINVAL)
          done = true;
        else
          std::this_thread::sleep_for(20ms);
      }
      if (!done) ::umount2(p.fuse_dir.c_str(), MNT_DETACH);
    }
    ::rmdir(p.fuse_dir.c_str());
  }
  if (!p.state_file.empty()) ::unlink(p.state_file.c_str());
  return first;
}

// ---- the watchdog ------------------------------------------------------------

// Messages, one line each: "F <fuse dir>", "L <loop device>", "M <mountpoint>",
// "T <fstype>", "S <state file>", and "D" (done: the daemon cleaned up).
[[noreturn]] void WatchdogMain(int sock, pid_t daemon) {
  ::setpgid(0, 0);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
  }
  // Keep the socket and stderr (the log) only: above all not the store's lock.
  int keep = ::dup2(sock, 3);
  ::close_range(4, ~0U, 0);
  if (devnull > 3) ::close(devnull);
  Plan p;
  std::string buf;
  char chunk[512];
  for (;;) {
    ssize_t n = ::read(keep, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line == "D") ::_exit(0);
      if (line.size() < 2) continue;
      std::string v = line.substr(2);
      switch (line[0]) {
        case 'F':
          p.fuse_dir = v;
          break;
        case 'L':
          p.device = v;
          break;
        case 'M':
          p.mountpoint = v;
          break;
        case 'T':
          p.fstype = v;
          break;
        case 'S':
          p.state_file = v;
          break;
        default:
          break;
      }
    }
  }
  std::string msg = fmt::format(
      "cloudkeep mount watchdog: serving process {} is gone; unmounting {} and releasing {}\n",
      daemon, p.mountpoint.empty() ? "(nothing mounted yet)" : p.mountpoint,
      p.device.empty() ? "(no loop device yet)" : p.device);
  ssize_t ignored = ::write(STDERR_FILENO, msg.data(), msg.size());
  (void)ignored;
  Status s = Teardown(p, true, nullptr);
  if (!s.ok()) {
    std::string err = "cloudkeep mount watchdog: " + s.message() + "\n";
    ignored = ::write(STDERR_FILENO, err.data(), err.size());
  }
  ::_exit(0);
}

class Watchdog {
 public:
  // Call while single-threaded.
  static Result<Watchdog> Start() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return Status::FromErrno("mount watchdog socketpair", errno);
    pid_t daemon = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return Status::FromErrno("cannot start the mount watchdog: fork", errno);
    if (pid == 0) {
      ::close(sv[0]);
      WatchdogMain(sv[1], daemon);
    }
    ::close(sv[1]);
    Watchdog w;
    w.pid_ = pid;
    w.sock_ = UniqueFd(sv[0]);
    return w;
  }
  Status Say(char what, const std::string& value) {
    std::string line = what == 'D' ? std::string("D\n") : std::string(1, what) + " " + value + "\n";
    if (::send(sock_.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(line.size()))
      return Status::FromErrno("the mount watchdog is gone", errno);
    return Status::Ok();
  }
  // The daemon cleaned up itself: the watchdog exits; reap it.
  void Done() {
    (void)Say('D', "");
    sock_.Reset();
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  UniqueFd sock_;
};

// ---- state files ---------------------------------------------------------------

Json StateJson(const MountInfo& i, uint64_t start) {
  Json j = i.ToJson();
  j["pid_start"] = start;
  j["fuse_dir"] = DirName(i.fuse_file);
  return j;
}

MountInfo InfoFromJson(const Json& j) {
  MountInfo i;
  i.mountpoint = j.value("mountpoint", "");
  i.device = j.value("device", "");
  i.fstype = j.value("filesystem", "");
  i.options = j.value("options", "");
  i.fuse_file = j.value("fuse_file", "");
  i.state_file = j.value("state_file", "");
  i.log_file = j.value("log_file", "");
  i.what = j.value("what", "");
  i.partition = j.value("partition", 0);
  i.offset = j.value("offset_bytes", uint64_t{0});
  i.size = j.value("size_bytes", uint64_t{0});
  i.pid = j.value("pid", 0);
  i.watchdog_pid = j.value("watchdog_pid", 0);
  return i;
}

Status MakeDirs(const std::string& path) {
  std::string acc;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      acc = path.substr(0, i);
      if (::mkdir(acc.c_str(), 0700) != 0 && errno != EEXIST)
        return Status::FromErrno("cannot create " + acc, errno);
    }
  }
  return Status::Ok();
}

std::string MountData(const std::string& options) {
  // mount(2) takes ro/nosuid/nodev as flags; the rest is the file system's.
  std::string out;
  std::istringstream ss(options);
  std::string opt;
  while (std::getline(ss, opt, ','))
    if (opt != "ro" && opt != "nosuid" && opt != "nodev") out += (out.empty() ? "" : ",") + opt;
  return out;
}

// Runs in the serving process: sets everything up, reports, serves until a
// signal, tears down. `report` gets one line of JSON (-1 in the foreground).
Status Serve(std::shared_ptr<Backend> backend, MountInfo info, const std::string& file_name,
             const SystemPaths& paths, int report,
             const std::function<void(const MountInfo&)>& on_ready) {
  auto tell = [&](const Json& doc) {
    if (report < 0) return;
    std::string line = doc.dump() + "\n";
    (void)WriteAll(report, line.data(), line.size(), "mount report");
    ::close(report);
    report = -1;
  };
  auto failed = [&](const Status& s) {
    tell({{"ok", false}, {"code", s.exit_code()}, {"message", s.message()}});
    return s;
  };

  info.pid = ::getpid();
  std::string state_dir = DirName(info.state_file);
  auto started = Watchdog::Start();
  if (!started.ok()) return failed(started.status());
  Watchdog w = std::move(started).value();
  info.watchdog_pid = w.pid();
  // Signals wait for sigwait below; the FUSE threads inherit the mask.
  sigset_t sigs, old;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &sigs, &old);

  Plan plan;
  plan.mountinfo = paths.mountinfo;
  plan.fstype = info.fstype;
  plan.state_file = info.state_file;
  std::unique_ptr<FuseFile> fuse;
  auto undo = [&](const Status& s) {
    (void)Teardown(plan, true, fuse.get());
    fuse.reset();
    w.Done();
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return failed(s);
  };

  plan.fuse_dir = fmt::format("{}/{}.fuse", state_dir, info.pid);
  if (::mkdir(plan.fuse_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return undo(Status::FromErrno("cannot create " + plan.fuse_dir, errno));
  for (auto [what, value] : {std::pair{'S', plan.state_file}, std::pair{'T', plan.fstype},
                             std::pair{'F', plan.fuse_dir}})
    if (Status s = w.Say(what, value); !s.ok()) return undo(s);
  FuseFileOptions fo;
  fo.dir = plan.fuse_dir;
  fo.name = file_name;
  auto mounted = FuseFile::Mount(backend, fo);
  if (!mounted.ok()) return undo(mounted.status());
  fuse = std::move(mounted).value();
  info.fuse_file = fuse->path();

  UniqueFd file(::open(info.fuse_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return undo(Status::FromErrno("cannot open " + info.fuse_file, errno));
  auto loop = AttachLoop(file.get(), info.fuse_file, info.offset, info.partition ? info.size : 0);
  if (!loop.ok()) return undo(loop.status());
  file.Reset();
  plan.device = info.device = loop->device;
  if (Status s = w.Say('L', plan.device); !s.ok()) return undo(s);
  plan.mountpoint = info.mountpoint;
  if (Status s = w.Say('M', plan.mountpoint); !s.ok()) return undo(s);
  std::string data = MountData(info.options);
  if (::mount(info.device.c_str(), info.mountpoint.c_str(), info.fstype.c_str(),
              MS_RDONLY | MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
    int err = errno;
    return undo(Status::Failure(fmt::format(
        "cannot mount the {} file system of {} ({} -o {}) on {}: {} (the kernel log, dmesg, "
        "says more)",
        info.fstype, info.what, info.device, info.options, info.mountpoint, std::strerror(err))));
  }
  // The mounted file system holds the loop device now; autoclear takes it
  // away when the file system goes.
  loop->fd.Reset();
  if (Status s = WriteFileAtomic(info.state_file,
                                 StateJson(info, StartTime(info.pid)).dump(1) + "\n", 0600);
      !s.ok())
    return undo(s);
  log::Info("mounted {} on {} ({} on {}, -o {}); serving as pid {}", info.what, info.mountpoint,
            info.fstype, info.device, info.options, info.pid);
  tell({{"ok", true}, {"info", info.ToJson()}});
  if (on_ready) on_ready(info);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  log::Info("signal {}: unmounting {}", sig, info.mountpoint);
  Status s = Teardown(plan, true, fuse.get());
  fuse.reset();
  w.Done();
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!s.ok()) return s;
  if (!info.log_file.empty()) ::unlink(info.log_file.c_str());
  return Status::Ok();
}

std::string PartitionList(Backend& b, const std::vector<Partition>& parts) {
  std::string out;
  for (const auto& p : parts) {
    auto fs = ProbeFilesystem(b, p.offset, p.size);
    std::string t = fs.ok() && !fs->empty() ? *fs : "no known file system";
    out += fmt::format("{}{} ({}, {})", out.empty() ? "" : ", ", p.number, t, FormatBytes(p.size));
  }
  return out.empty() ? "none" : out;
}

}  // namespace

Json MountInfo::ToJson() const {
  return {{"mountpoint", mountpoint},
          {"device", device},
          {"filesystem", fstype},
          {"options", options},
          {"partition", partition},
          {"offset_bytes", offset},
          {"size_bytes", size},
          {"fuse_file", fuse_file},
          {"pid", pid},
          {"watchdog_pid", watchdog_pid},
          {"state_file", state_file},
          {"log_file", log_file},
          {"what", what}};
}

Result<MountInfo> MountReadOnly(std::shared_ptr<Backend> backend, const MountRequest& req,
                                const std::function<void(const MountInfo&)>& on_ready) {
  if (::geteuid() != 0)
    return Status::Usage("snapshot mount needs root: it sets up a loop device and mounts");
  struct stat st {};
  if (::stat(req.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Usage(fmt::format("mount point '{}' is not a directory", req.mountpoint));
  MountInfo info;
  info.mountpoint = RealPath(req.mountpoint);
  if (IsMountPoint(info.mountpoint, req.paths.mountinfo))
    return Status::Usage(fmt::format("'{}' is already a mount point", info.mountpoint));
  info.what = req.what;
  info.size = backend->Size();
  CK_ASSIGN_OR_RETURN(auto parts, ReadPartitions(*backend));
  if (req.partition > 0) {
    const Partition* found = nullptr;
    for (const auto& p : parts)
      if (p.number == req.partition) found = &p;
    if (!found)
      return Status::Usage(fmt::format("{} has no partition {} (partitions: {})", req.what,
                                       req.partition, PartitionList(*backend, parts)));
    info.partition = found->number;
    info.offset = found->offset;
    info.size = found->size;
  } else if (!parts.empty()) {
    return Status::Usage(fmt::format("{} has a partition table; choose one with --partition N: {}",
                                     req.what, PartitionList(*backend, parts)));
  }
  CK_ASSIGN_OR_RETURN(info.fstype, ProbeFilesystem(*backend, info.offset, info.size));
  if (info.fstype.empty())
    return Status::Usage(
        fmt::format("no ext4, XFS, btrfs or FAT file system in {}{}", req.what,
                    info.partition ? fmt::format(" partition {}", info.partition) : std::string()));
  // "ro,…" for every type; nosuid and nodev because a snapshot holds whatever the volume held.
  info.options = "ro,nosuid,nodev" + ReadOnlyMountOptions(info.fstype).substr(2);
  for (const char* dev : {"/dev/fuse", "/dev/loop-control"})
    if (::access(dev, R_OK | W_OK) != 0)
      return Status::FromErrno(std::string("cannot use ") + dev, errno);
  CK_RETURN_IF_ERROR(MakeDirs(req.state_dir));

  if (req.foreground) {
    info.state_file = fmt::format("{}/{}.json", req.state_dir, ::getpid());
    CK_RETURN_IF_ERROR(Serve(backend, info, req.file_name, req.paths, -1, on_ready));
    return info;
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("cannot start the mount daemon: fork", errno);
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    pid_t self = ::getpid();
    info.state_file = fmt::format("{}/{}.json", req.state_dir, self);
    info.log_file = fmt::format("{}/{}.log", req.state_dir, self);
    // Nothing of the caller's terminal or pipes: `$(cloudkeep snapshot mount …)` must return.
    int devnull = ::open("/dev/null", O_RDWR);
    int logfd = ::open(info.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(logfd >= 0 ? logfd : devnull, STDERR_FILENO);
    if (::chdir("/") != 0) ::_exit(1);
    Status s = Serve(std::move(backend), info, req.file_name, req.paths, fds[1], nullptr);
    if (!s.ok()) log::Error("{}", s.message());
    std::fflush(nullptr);
    ::_exit(s.ok() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string line;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  Json doc = Json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    int st2 = 0;
    ::waitpid(pid, &st2, WNOHANG);
    return Status::Failure(fmt::format(
        "the mount daemon (pid {}) exited during setup; see {}/{}.log", pid, req.state_dir, pid));
  }
  if (!doc.value("ok", false)) {
    int st2 = 0;
    ::waitpid(pid, &st2, 0);
    std::string msg = doc.value("message", "mount failed");
    return doc.value("code", 1) == 2 ? Status::Usage(msg) : Status::Failure(msg);
  }
  return InfoFromJson(doc["info"]);
}

Result<MountInfo> UnmountReadOnly(const std::string& mountpoint, bool lazy,
                                  const std::string& state_dir, const SystemPaths& paths) {
  std::string mp = RealPath(mountpoint);
  if (mp.empty()) return Status::Usage(fmt::format("'{}' does not exist", mountpoint));
  MountInfo info;
  Json state;
  bool found = false;
  for (const auto& name : ListDir(state_dir)) {
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    auto text = ReadFile(state_dir + "/" + name);
    if (!text.ok()) continue;
    Json j = Json::parse(*text, nullptr, false);
    if (j.is_discarded() || j.value("mountpoint", "") != mp) continue;
    state = j;
    info = InfoFromJson(j);
    found = true;
    break;
  }
  if (!found)
    return Status::Usage(
        fmt::format("'{}' is not a file system mounted by 'cloudkeep snapshot mount'", mp));
  uint64_t start = state.value("pid_start", uint64_t{0});
  // The file system first, so that "busy" is an answer and not a lazy detach.
  if (MountedFrom(mp, info.device, paths.mountinfo) &&
      ::umount2(mp.c_str(), lazy ? MNT_DETACH : 0) != 0) {
    if (errno == EBUSY)
      return Status::Failure(fmt::format(
          "'{}' is busy: a process has a file open or its working directory there (fuser -vm "
          "{}); close them, or pass --lazy to detach it now and let it go when they are done",
          mp, mp));
    if (errno != EINVAL) return Status::FromErrno("cannot unmount " + mp, errno);
  }
  if (Alive(info.pid, start)) {
    ::kill(info.pid, SIGTERM);
    if (!WaitGone(info.pid, start, 20s)) {
      log::Warn("serving process {} did not stop in 20s; killing it", info.pid);
      ::kill(info.pid, SIGKILL);
      WaitGone(info.pid, start, 5s);
    }
  }
  // The watchdog exits when the daemon said it is done, or after cleaning up for it.
  if (info.watchdog_pid > 0) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (::kill(info.watchdog_pid, 0) == 0 && Alive(info.watchdog_pid, 0) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
  }
  // Whatever both left behind (they were both killed).
  Plan p{
      state.value("fuse_dir", ""), info.device, mp, info.fstype, info.state_file, paths.mountinfo};
  CK_RETURN_IF_ERROR(Teardown(p, true, nullptr));
  if (LoopBackedBy(info.device, p.fuse_dir))
    log::Warn(
        "{} is still held by a process with files open under {}; it is released when they "
        "close them",
        info.device, mp);
  else if (!info.log_file.empty())
    ::unlink(info.log_file.c_str());
  return info;
}

}  // namespace cloudkeep::nbd
