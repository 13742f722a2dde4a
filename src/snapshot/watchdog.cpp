#include "snapshot/watchdog.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>

namespace cloudkeep::snapshot {

namespace {

enum Op : char {
  kFreezing = 'F',
  kFrozen = 'D',
  kFailed = 'X',
  kEnd = 'E',
};

enum class Slot : char { kNone, kFreezing, kFrozen };

struct ChildPlan {
  int sock;
  std::vector<int> fds;
  std::vector<std::string> timeout_msgs;  // built before fork: the child does not allocate
  std::vector<std::string> death_msgs;
  std::vector<Slot> slots;
  timespec deadline;
};

timespec Now() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

timespec Remaining(const timespec& deadline) {
  timespec now = Now();
  timespec r{deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
  if (r.tv_nsec < 0) {
    r.tv_nsec += 1000000000L;
    r.tv_sec -= 1;
  }
  if (r.tv_sec < 0) return timespec{0, 0};
  return r;
}

void Say(const std::string& msg) {
  ssize_t ignored = ::write(STDERR_FILENO, msg.data(), msg.size());
  (void)ignored;
}

// Thaws every announced filesystem, last frozen first.
void ThawAll(ChildPlan& p, const std::vector<std::string>& msgs) {
  for (size_t i = p.fds.size(); i-- > 0;) {
    if (p.slots[i] == Slot::kNone) continue;
    if (::ioctl(p.fds[i], FITHAW, 0) == 0) Say(msgs[i]);
    p.slots[i] = Slot::kNone;
  }
}

[[noreturn]] void ChildMain(ChildPlan& p) {
  // Survive what kills cloudkeep's process group, so the thaw still happens.
  ::setpgid(0, 0);
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGQUIT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  // Keep only the socket, the mountpoints and stderr: holding the store lock
  // or cloudkeep's stdout would change what others observe.
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
  }
  std::vector<int> keep = p.fds;
  keep.push_back(p.sock);
  keep.push_back(STDERR_FILENO);
  keep.push_back(STDIN_FILENO);
  keep.push_back(STDOUT_FILENO);
  std::sort(keep.begin(), keep.end());
  unsigned next = 0;
  for (int k : keep) {
    if (static_cast<unsigned>(k) > next) ::close_range(next, static_cast<unsigned>(k) - 1, 0);
    next = static_cast<unsigned>(k) + 1;
  }
  ::close_range(next, ~0U, 0);
  // Armed: cloudkeep freezes nothing before it has read this.
  char ready = 'r';
  if (::send(p.sock, &ready, 1, MSG_NOSIGNAL) != 1) ::_exit(1);

  bool fired = false;
  char msg[2];
  size_t have = 0;
  for (;;) {
    pollfd pfd{p.sock, POLLIN, 0};
    timespec rem = Remaining(p.deadline);
    int r = ::ppoll(&pfd, 1, fired ? nullptr : &rem, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      ThawAll(p, p.death_msgs);
      ::_exit(1);
    }
    if (r == 0) {
      ThawAll(p, p.timeout_msgs);
      fired = true;
      continue;
    }
    ssize_t n = ::read(p.sock, msg + have, sizeof msg - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // cloudkeep is gone
      ThawAll(p, p.death_msgs);
      ::_exit(0);
    }
    have += static_cast<size_t>(n);
    if (have < sizeof msg) continue;
    have = 0;
    size_t i = static_cast<unsigned char>(msg[1]);
    if (msg[0] != kEnd && i >= p.fds.size()) continue;
    switch (msg[0]) {
      case kFreezing:
        p.slots[i] = Slot::kFreezing;
        break;
      case kFrozen:
        p.slots[i] = Slot::kFrozen;
        // Past the deadline nothing may stay frozen, also a late freeze.
        if (fired) ThawAll(p, p.timeout_msgs);
        break;
      case kFailed:
        p.slots[i] = Slot::kNone;
        break;
      case kEnd: {
        char verdict = fired ? 'f' : 'c';
        ssize_t ignored = ::send(p.sock, &verdict, 1, MSG_NOSIGNAL);
        (void)ignored;
        ::_exit(0);
      }
      default:
        break;
    }
  }
}

}  // namespace

Result<std::unique_ptr<FreezeWatchdog>> FreezeWatchdog::Start(
    const std::vector<int>& fds, const std::vector<std::string>& mountpoints, Micros timeout) {
  if (fds.size() != mountpoints.size() || fds.size() > 255)
    return Status::Usage("the watchdog handles at most 255 mountpoints");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Status::FromErrno("watchdog socketpair", errno);
  UniqueFd parent_end(sv[0]), child_end(sv[1]);

  ChildPlan plan;
  plan.sock = child_end.get();
  plan.fds = fds;
  plan.slots.assign(fds.size(), Slot::kNone);
  std::string limit = FormatDuration(timeout);
  for (const auto& m : mountpoints) {
    plan.timeout_msgs.push_back(fmt::format(
        "cloudkeep watchdog: thawed {}: the freeze timeout ({}) was reached\n", m, limit));
    plan.death_msgs.push_back(
        fmt::format("cloudkeep watchdog: thawed {}: cloudkeep exited while it was frozen\n", m));
  }
  timespec now = Now();
  auto total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  plan.deadline.tv_sec = now.tv_sec + static_cast<time_t>(total_ns / 1000000000LL);
  plan.deadline.tv_nsec = now.tv_nsec + static_cast<long>(total_ns % 1000000000LL);
  if (plan.deadline.tv_nsec >= 1000000000L) {
    plan.deadline.tv_nsec -= 1000000000L;
    plan.deadline.tv_sec += 1;
  }

  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("cannot start the freeze watchdog: fork", errno);
  if (pid == 0) {
    parent_end.Release();  // closed by close_range in the child
    ChildMain(plan);
  }
  child_end.Reset();
  std::unique_ptr<FreezeWatchdog> w(new FreezeWatchdog(pid, std::move(parent_end)));
  char ready = 0;
  ssize_t n;
  do {
    n = ::recv(w->sock_.get(), &ready, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || ready != 'r')
    return Status::Failure("the freeze watchdog did not start; nothing was frozen");
  return w;
}

FreezeWatchdog::~FreezeWatchdog() {
  sock_.Reset();  // EOF: the watchdog thaws whatever is announced and exits
  if (pid_ > 0) {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

Status FreezeWatchdog::Send(char op, size_t index) {
  char msg[2] = {op, static_cast<char>(static_cast<unsigned char>(index))};
  size_t done = 0;
  while (done < sizeof msg) {
    ssize_t n = ::send(sock_.get(), msg + done, sizeof msg - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("the freeze watchdog is gone", errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FreezeWatchdog::Freezing(size_t index) {
  return Send(kFreezing, index);
}

Status FreezeWatchdog::Frozen(size_t index, bool ok) {
  return Send(ok ? kFrozen : kFailed, index);
}

Result<bool> FreezeWatchdog::Finish() {
  if (finished_) return Status::Failure("watchdog finished twice");
  finished_ = true;
  CK_RETURN_IF_ERROR(Send(kEnd, 0));
  char verdict = 0;
  ssize_t n;
  do {
    n = ::recv(sock_.get(), &verdict, 1, 0);
  } while (n < 0 && errno == EINTR);
  sock_.Reset();
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (n != 1) return Status::Failure("the freeze watchdog exited without a verdict");
  return verdict == 'f';
}

}  // namespace cloudkeep::snapshot
