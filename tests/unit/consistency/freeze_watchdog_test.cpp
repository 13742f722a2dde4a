// The watchdog's protocol without root: the descriptors are plain
// directories, so FITHAW does nothing; what is checked is when the
// watchdog reports having fired and that it exits when cloudkeep goes away.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "snapshot/freeze.h"
#include "snapshot/watchdog.h"

namespace cloudkeep::snapshot {
namespace {

TEST(FreezeWatchdog, CleanFinishWhenNotTimedOut) {
  auto fd = OpenMountpoint("/");
  ASSERT_TRUE(fd.ok());
  auto w = FreezeWatchdog::Start({fd->get()}, {"/"}, std::chrono::seconds(600));
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_TRUE((*w)->Freezing(0).ok());
  ASSERT_TRUE((*w)->Frozen(0, true).ok());
  auto fired = (*w)->Finish();
  ASSERT_TRUE(fired.ok()) << fired.status().message();
  EXPECT_FALSE(*fired);
}

TEST(FreezeWatchdog, ReportsFiredAfterTimeout) {
  auto fd = OpenMountpoint("/");
  ASSERT_TRUE(fd.ok());
  auto w = FreezeWatchdog::Start({fd->get()}, {"/"}, std::chrono::microseconds(1));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Freezing(0).ok());
  // Past a 1us deadline by any measure.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto fired = (*w)->Finish();
  ASSERT_TRUE(fired.ok());
  EXPECT_TRUE(*fired);
}

TEST(FreezeWatchdog, ExitsWhenItsOwnerDies) {
  // A child plays cloudkeep: it starts the watchdog, reports its pid and is SIGKILLed.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    auto fd = OpenMountpoint("/");
    auto w = FreezeWatchdog::Start({fd->get()}, {"/"}, std::chrono::seconds(600));
    if (!w.ok()) ::_exit(2);
    pid_t wp = (*w)->pid();
    ssize_t n = ::write(p[1], &wp, sizeof wp);
    (void)n;
    ::pause();
    ::_exit(0);
  }
  ::close(p[1]);
  pid_t watchdog = 0;
  ASSERT_EQ(::read(p[0], &watchdog, sizeof watchdog), static_cast<ssize_t>(sizeof watchdog));
  ::close(p[0]);
  ASSERT_EQ(::kill(owner, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(owner, &st, 0), owner);
  // The watchdog was re-parented; poll until it is gone (it never is if it missed the EOF,
  // and ctest's timeout reports that).
  while (::kill(watchdog, 0) == 0) {
    // A zombie re-parented to a non-reaping subreaper would still answer kill(0); check its state.
    std::string stat_path = "/proc/" + std::to_string(watchdog) + "/stat";
    FILE* f = std::fopen(stat_path.c_str(), "r");
    if (!f) break;
    char buf[256] = {0};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    auto rp = s.rfind(')');
    if (rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  SUCCEED();
}

TEST(FreezeWatchdog, IgnoresSigtermSoItCanThaw) {
  auto fd = OpenMountpoint("/");
  ASSERT_TRUE(fd.ok());
  auto w = FreezeWatchdog::Start({fd->get()}, {"/"}, std::chrono::seconds(600));
  ASSERT_TRUE(w.ok());
  // Start() returned: the watchdog is armed and already ignores SIGTERM and SIGINT.
  ASSERT_EQ(::kill((*w)->pid(), SIGTERM), 0);
  ASSERT_EQ(::kill((*w)->pid(), SIGINT), 0);
  ASSERT_TRUE((*w)->Freezing(0).ok());
  auto fired = (*w)->Finish();
  ASSERT_TRUE(fired.ok()) << fired.status().message();
  EXPECT_FALSE(*fired);
}

}  // namespace
}  // namespace cloudkeep::snapshot
