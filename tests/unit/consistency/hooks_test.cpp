#include "snapshot/hooks.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/fs.h"

namespace cloudkeep::snapshot {
namespace {

std::string TempLog() {
  char tmpl[] = "/tmp/ck-hooks-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  return tmpl;
}

TEST(Hooks, PreHooksRunInOrderAndStopAtFirstFailure) {
  std::string log = TempLog();
  std::vector<HookReport> reports;
  Status s =
      RunPreHooks({"echo one >> " + log, "echo two >> " + log + "; exit 3", "echo three >> " + log},
                  std::chrono::seconds(30), &reports);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kFailure);
  EXPECT_NE(s.message().find("exited with status 3"), std::string::npos) << s.message();
  EXPECT_EQ(reports.size(), 2u);
  EXPECT_EQ(*ReadFile(log), "one\ntwo\n");
  ::unlink(log.c_str());
}

TEST(Hooks, PostHooksRunInReverseEvenAfterAFailure) {
  std::string log = TempLog();
  std::vector<HookReport> reports;
  Status s = RunPostHooks({"echo first >> " + log + "; exit 1",
                           "echo $CLOUDKEEP_HOOK >> " + log + "; false", "echo last >> " + log},
                          std::chrono::seconds(30), &reports);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(reports.size(), 3u);
  EXPECT_EQ(*ReadFile(log), "last\npost\nfirst\n");
  // The first failure in run order is reported.
  EXPECT_NE(s.message().find("false"), std::string::npos) << s.message();
  ::unlink(log.c_str());
}

TEST(Hooks, TimeoutKillsTheHook) {
  std::vector<HookReport> reports;
  Status s = RunPreHooks({"sleep 600"}, std::chrono::milliseconds(100), &reports);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("timed out"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cloudkeep::snapshot
