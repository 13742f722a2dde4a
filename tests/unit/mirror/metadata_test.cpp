#include "mirror/metadata.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/crc32c.h"

namespace cloudkeep::mirror {
namespace {

class MetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ck-mirror-meta-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "web-a.meta").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Superblock Fresh() {
    Superblock sb;
    sb.resource = "web";
    sb.node = "a";
    sb.peer = "b";
    sb.device_size = 1ull << 30;
    sb.granularity = 65536;
    sb.al_extent_size = 4 << 20;
    sb.al_slots = 7;
    sb.gen.current = 42;
    return sb;
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(MetadataTest, CreateOpenRoundTrip) {
  auto m = Metadata::Create(path_, Fresh());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(std::filesystem::file_size(path_), kBitmapOffset + 4096);
  ASSERT_TRUE((*m)->Update([](Superblock& sb) {
                    sb.gen.bitmap = 7;
                    sb.flags |= kFlagInconsistent;
                  })
                  .ok());
  ASSERT_TRUE((*m)->MarkDirty(65536 * 3, 10).ok());
  m->reset();
  auto again = Metadata::Open(path_);
  ASSERT_TRUE(again.ok()) << again.status().message();
  Superblock sb = (*again)->sb();
  EXPECT_EQ(sb.resource, "web");
  EXPECT_EQ(sb.peer, "b");
  EXPECT_EQ(sb.gen.current, 42u);
  EXPECT_EQ(sb.gen.bitmap, 7u);
  EXPECT_TRUE(sb.flags & kFlagInconsistent);
  EXPECT_EQ((*again)->DirtyBits(), 1u);
  EXPECT_TRUE((*again)->AnyDirty(65536 * 3, 1));
}

TEST_F(MetadataTest, TornSuperblockFallsBackToTheOtherSlot) {
  auto m = Metadata::Create(path_, Fresh());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Update([](Superblock& sb) { sb.gen.current = 43; }).ok());  // slot 1, seq 2
  ASSERT_TRUE((*m)->Update([](Superblock& sb) { sb.gen.current = 44; }).ok());  // slot 0, seq 3
  m->reset();
  // Tear slot 0 (the newest): the previous state in slot 1 is read.
  int fd = open(path_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  char junk[100] = {1};
  ASSERT_EQ(pwrite(fd, junk, sizeof junk, 1000), 100);
  close(fd);
  auto sb = Metadata::Peek(path_);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  EXPECT_EQ(sb->gen.current, 43u);
  // Both torn: refused, naming the file.
  fd = open(path_.c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, junk, sizeof junk, 4096 + 1000), 100);
  close(fd);
  auto bad = Metadata::Peek(path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kUsage);
  EXPECT_NE(bad.status().message().find(path_), std::string::npos);
}

TEST_F(MetadataTest, NotMetadata) {
  auto missing = Metadata::Open(path_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(path_, std::string(9000, 'x')).ok());
  auto bad = Metadata::Open(path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad magic"), std::string::npos);
}

TEST_F(MetadataTest, ActivityLogIsBoundedAndRecovered) {
  auto m = Metadata::Create(path_, Fresh());
  ASSERT_TRUE(m.ok());
  const uint64_t ext = 4 << 20;
  for (uint64_t e = 0; e < 10; e++) {
    ASSERT_TRUE((*m)->AlBegin(e * ext, 4096).ok());
    (*m)->AlEnd(e * ext, 4096);
  }
  Superblock sb = (*m)->sb();
  ASSERT_EQ(sb.al.size(), 7u);   // al_slots
  EXPECT_EQ(sb.al.front(), 9u);  // most recent first
  EXPECT_EQ(sb.al.back(), 3u);
  // Reopen as after a crash: the logged extents become dirty.
  m->reset();
  auto again = Metadata::Open(path_);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->RecoverActivityLog().ok());
  EXPECT_EQ((*again)->DirtyBytes(), 7 * ext);
  EXPECT_FALSE((*again)->AnyDirty(0, 3 * ext));
  EXPECT_TRUE((*again)->sb().al.empty());
}

// A region marked inside the activity log is set in memory only: a crash
// replays the log (whole extents), so the write path needs no metadata sync.
// Outside the log, when its extent leaves the log, and when the primary flag
// is cleared, the bits are made durable.
TEST_F(MetadataTest, BitsInsideTheActivityLogAreLazyAndNeverLost) {
  auto m = Metadata::Create(path_, Fresh());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Update([](Superblock& sb) { sb.flags |= kFlagPrimary; }).ok());
  const uint64_t ext = 4 << 20, g = 65536;
  auto on_disk = [&] { return Metadata::Open(path_).value()->DirtyBytes(); };
  ASSERT_TRUE((*m)->AlBegin(0, 4096).ok());
  ASSERT_TRUE((*m)->MarkDirty(0, 4096).ok());
  (*m)->AlEnd(0, 4096);
  EXPECT_EQ((*m)->DirtyBytes(), g);
  EXPECT_EQ(on_disk(), 0u);  // lazy: extent 0 is in the log
  // A crash now: the log's extent comes back dirty, a superset of the bit.
  {
    std::string copy = path_ + ".crash";
    std::filesystem::copy_file(path_, copy);
    auto crashed = Metadata::Open(copy);
    ASSERT_TRUE(crashed.ok());
    ASSERT_TRUE((*crashed)->RecoverActivityLog().ok());
    EXPECT_EQ((*crashed)->DirtyBytes(), ext);
  }
  // Outside the log: durable at once.
  ASSERT_TRUE((*m)->MarkDirty(100 * ext, 4096).ok());
  EXPECT_EQ(on_disk(), 2 * g);  // the pages it shares with the lazy bit go too
  // Filling the log (7 slots) pushes extent 0 out: its bit is flushed first.
  ASSERT_TRUE((*m)->Update([](Superblock&) {}).ok());
  for (uint64_t e = 1; e <= 7; e++) {
    ASSERT_TRUE((*m)->AlBegin(e * ext, 4096).ok());
    ASSERT_TRUE((*m)->MarkDirty(e * ext, 4096).ok());
    (*m)->AlEnd(e * ext, 4096);
  }
  Superblock sb = (*m)->sb();
  EXPECT_EQ(std::count(sb.al.begin(), sb.al.end(), 0u), 0);
  auto reopened = Metadata::Open(path_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->AnyDirty(0, g));
  // Clearing the primary flag (demote, clean stop) flushes the rest.
  reopened->reset();
  ASSERT_TRUE((*m)->Update([](Superblock& s) { s.flags &= ~kFlagPrimary; }).ok());
  auto after = Metadata::Open(path_);
  ASSERT_TRUE(after.ok());
  for (uint64_t e = 1; e <= 7; e++) EXPECT_TRUE((*after)->AnyDirty(e * ext, g)) << e;
}

TEST_F(MetadataTest, ClearIsDurableOnlyAfterFlush) {
  auto m = Metadata::Create(path_, Fresh());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->MarkAllDirty().ok());
  EXPECT_EQ((*m)->DirtyBytes(), 1ull << 30);
  (*m)->ClearInMemory(0, 1ull << 29);
  EXPECT_EQ(Metadata::Open(path_).value()->DirtyBytes(), 1ull << 30);
  ASSERT_TRUE((*m)->FlushBitmap().ok());
  EXPECT_EQ(Metadata::Open(path_).value()->DirtyBytes(), 1ull << 29);
}

TEST(MirrorCrc, KnownValue) {
  // CRC-32C of "123456789" (RFC 3720 appendix B.4).
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
}

}  // namespace
}  // namespace cloudkeep::mirror
