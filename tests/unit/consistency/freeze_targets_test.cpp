#include <gtest/gtest.h>

#include "snapshot/freeze.h"

namespace cloudkeep::snapshot {
namespace {

std::vector<MountEntry> Mounts() {
  return {{0, 1, "/", "ext4", "/dev/vda"},
          {7, 0, "/srv/db", "xfs", "/dev/loop0"},
          {7, 1, "/srv/log", "xfs", "/dev/loop1"}};
}

Volume Vol(const std::string& id, std::vector<std::string> mounts) {
  Volume v;
  v.id = id;
  v.device = id;
  v.kind = "file";
  v.mountpoints = std::move(mounts);
  return v;
}

TEST(FreezeTargets, VolumesMountpointsSortedAndUnique) {
  auto t = ResolveFreezeTargets(
      {}, {Vol("b.img", {"/srv/log"}), Vol("a.img", {"/srv/db", "/srv/log"})}, Mounts());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(*t, (std::vector<std::string>{"/srv/db", "/srv/log"}));
}

TEST(FreezeTargets, UnmountedVolumeIsUsageError) {
  auto t = ResolveFreezeTargets({}, {Vol("a.img", {})}, Mounts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
  EXPECT_NE(t.status().message().find("'a.img'"), std::string::npos);
}

TEST(FreezeTargets, NamedPathMustBeMountpoint) {
  FreezeRequest r;
  r.mountpoints = {"/definitely/not/mounted"};
  auto t = ResolveFreezeTargets(r, {}, Mounts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
  EXPECT_NE(t.status().message().find("'/definitely/not/mounted'"), std::string::npos);
}

TEST(FreezeTargets, RootRefusedWithoutFreezeRoot) {
  FreezeRequest r;
  r.mountpoints = {"/"};
  auto t = ResolveFreezeTargets(r, {}, Mounts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
  EXPECT_NE(t.status().message().find("--freeze-root"), std::string::npos);
  r.allow_root = true;
  auto ok = ResolveFreezeTargets(r, {}, Mounts());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, std::vector<std::string>{"/"});
}

TEST(FreezeTargets, RootOfAVolumeIsRefusedToo) {
  auto t = ResolveFreezeTargets({}, {Vol("/dev/vda", {"/"})}, Mounts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
}

TEST(FreezeTargets, ImageOnFrozenFilesystemIsRefused) {
  // The test binary's directory and "/tmp" may share a filesystem; pick a
  // path certainly on the same one as the mountpoint by using it itself.
  Volume v = Vol(CK_SOURCE_DIR "/CMakeLists.txt", {});
  v.device = CK_SOURCE_DIR "/CMakeLists.txt";
  Status s = CheckNothingWrittenToFrozen({CK_SOURCE_DIR}, {v});
  EXPECT_EQ(s.code(), Status::Code::kUsage);
  v.kind = "disk";
  EXPECT_TRUE(CheckNothingWrittenToFrozen({CK_SOURCE_DIR}, {v}).ok());
}

}  // namespace
}  // namespace cloudkeep::snapshot
