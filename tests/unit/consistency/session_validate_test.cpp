#include <gtest/gtest.h>

#include "snapshot/consistency.h"

namespace cloudkeep::snapshot {
namespace {

Status Validate(ConsistencyOptions o) {
  return ConsistencySession(std::move(o)).Validate({});
}

TEST(SessionValidate, NothingAskedIsFine) {
  EXPECT_TRUE(Validate({}).ok());
}

TEST(SessionValidate, FlagsThatNeedAnother) {
  ConsistencyOptions o;
  o.freeze_root = true;
  EXPECT_EQ(Validate(o).code(), Status::Code::kUsage);
  o = {};
  o.mysql_status_file = "/srv/db/status.json";
  EXPECT_EQ(Validate(o).code(), Status::Code::kUsage);
  o = {};
  o.mysql = true;
  o.mysql_lock = "global";
  EXPECT_EQ(Validate(o).code(), Status::Code::kUsage);
  o.mysql_lock = "backup-stage";
  EXPECT_TRUE(Validate(o).ok());
  o.lock_tries = 0;
  EXPECT_EQ(Validate(o).code(), Status::Code::kUsage);
}

TEST(SessionValidate, FreezeOfNothingIsRefused) {
  ConsistencyOptions o;
  o.freeze = true;
  Volume v;
  v.id = "/srv/unmounted.img";
  Status s = ConsistencySession(o).Validate({v});
  EXPECT_EQ(s.code(), Status::Code::kUsage);
}

TEST(SessionValidate, EndWithoutBeginDoesNothing) {
  ConsistencyOptions o;
  o.post_hooks = {"exit 1"};
  ConsistencySession s(o);
  SnapshotMetadata m;
  EXPECT_TRUE(s.End(&m).ok());
}

TEST(SessionValidate, HooksAloneKeepCrashConsistency) {
  ConsistencyOptions o;
  o.pre_hooks = {"true"};
  o.post_hooks = {"true"};
  ConsistencySession s(o);
  SnapshotMetadata m;
  ASSERT_TRUE(s.Begin({}, &m).ok());
  EXPECT_EQ(m.consistency, Consistency::kCrash);
  EXPECT_TRUE(s.End(&m).ok());
  EXPECT_EQ(m.consistency, Consistency::kCrash);
  EXPECT_FALSE(m.freeze_us.has_value());
}

TEST(SessionValidate, FailedPreHookStillRunsPostHooks) {
  char tmpl[] = "/tmp/ck-session-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  std::string log = tmpl;
  ConsistencyOptions o;
  o.pre_hooks = {"exit 4"};
  o.post_hooks = {"echo ran >> " + log};
  ConsistencySession s(o);
  SnapshotMetadata m;
  EXPECT_FALSE(s.Begin({}, &m).ok());
  (void)s.End(&m);
  FILE* f = std::fopen(log.c_str(), "r");
  char buf[16] = {0};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  EXPECT_EQ(std::string(buf, n), "ran\n");
  ::unlink(log.c_str());
}

}  // namespace
}  // namespace cloudkeep::snapshot
