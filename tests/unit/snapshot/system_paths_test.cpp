// SystemPaths: the mount table is read where SystemPaths says, so a test can
// hand every reader of it a fixture instead of /proc/self/mountinfo.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "snapshot/consistency.h"

namespace cloudkeep::snapshot {
namespace {

class SystemPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("system-paths-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "srv data");
    dir_ = std::filesystem::canonical(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A mount table in which "<dir>/srv data" is an ext4 mount of /dev/vdb1.
  std::string Fixture() {
    std::string path = (dir_ / "mountinfo").string();
    std::string escaped = (dir_ / "srv data").string();
    escaped.replace(escaped.find(' '), 1, "\\040");
    std::ofstream(path) << "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
                        << "97 22 253:17 / " << escaped
                        << " rw,relatime shared:40 - ext4 /dev/vdb1 rw\n"
                        << "a line that is not a mount\n";
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(SystemPathsTest, ReadMountInfoParsesTheFixtureAndUndoesEscapes) {
  auto mounts = ReadMountInfo(Fixture());
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[1].mountpoint, (dir_ / "srv data").string());
  EXPECT_EQ(mounts[1].major, 253u);
  EXPECT_EQ(mounts[1].minor, 17u);
  EXPECT_EQ(mounts[1].fstype, "ext4");
  EXPECT_EQ(mounts[1].source, "/dev/vdb1");
  EXPECT_TRUE(ReadMountInfo((dir_ / "missing").string()).empty());
}

TEST_F(SystemPathsTest, FreezeTargetsAreResolvedFromTheTableSystemPathsNames) {
  ConsistencyOptions o;
  o.freeze = true;
  o.freeze_mountpoints = {(dir_ / "srv data").string()};
  // By the real table the directory is no mountpoint...
  Status real = ConsistencySession(o).Validate({});
  EXPECT_EQ(real.code(), Status::Code::kUsage);
  EXPECT_NE(real.message().find("is not a mountpoint"), std::string::npos) << real.message();
  // ...by the fixture it is one.
  o.paths.mountinfo = Fixture();
  Status fixture = ConsistencySession(o).Validate({});
  EXPECT_TRUE(fixture.ok()) << fixture.message();
}

}  // namespace
}  // namespace cloudkeep::snapshot
