// DurableBitmap: the map file round-trips, refuses what is not its own, and
// a bit reaches the file only through Capture/Persist.
#include "nbd/durable_bitmap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace cloudkeep::nbd {
namespace {

namespace fs = std::filesystem;

class BitmapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-bitmap-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(BitmapTest, SetNextAndCount) {
  auto bm = DurableBitmap::InMemory(1000 * 4096 + 1, 4096);
  EXPECT_EQ(bm->bits(), 1001u);
  EXPECT_EQ(bm->NextSet(0, 1001), 1001u);
  EXPECT_TRUE(bm->Set(70));
  EXPECT_FALSE(bm->Set(70));
  EXPECT_TRUE(bm->Set(1000));
  EXPECT_EQ(bm->Count(), 2u);
  EXPECT_EQ(bm->NextSet(0, 1001), 70u);
  EXPECT_EQ(bm->NextSet(71, 1001), 1000u);
  EXPECT_EQ(bm->NextSet(71, 500), 500u);
  EXPECT_EQ(bm->NextClear(70, 1001), 71u);
  for (uint64_t i = 0; i < 1001; ++i) bm->Set(i);
  EXPECT_TRUE(bm->All());
  EXPECT_EQ(bm->NextClear(0, 5000), 1001u);
}

TEST_F(BitmapTest, PersistedBitsSurviveAndUnpersistedOnesDoNot) {
  std::string path = dir_ + "/m";
  MapHeader h{MapKind::kHydrate, 100 << 20, 512 * 1024, "snapshot snap-0123456789abcdef0"};
  {
    auto bm = DurableBitmap::Create(path, h);
    ASSERT_TRUE(bm.ok()) << bm.status().message();
    (*bm)->Set(3);
    (*bm)->Set(199);
    auto pending = (*bm)->Capture();
    (*bm)->Set(100);  // after the capture: not in this persist
    ASSERT_TRUE((*bm)->Persist(pending).ok());
  }
  auto bm = DurableBitmap::Open(path, h);
  ASSERT_TRUE(bm.ok()) << bm.status().message();
  EXPECT_TRUE((*bm)->Test(3));
  EXPECT_TRUE((*bm)->Test(199));
  EXPECT_FALSE((*bm)->Test(100));
  EXPECT_EQ((*bm)->Count(), 2u);
  (*bm)->Set(100);
  ASSERT_TRUE((*bm)->Persist((*bm)->Capture()).ok());
  // Held while open: a second opener (another process, or this one) is refused.
  auto busy = DurableBitmap::Open(path, h);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Status::Code::kUsage);
  EXPECT_NE(busy.status().message().find("in use"), std::string::npos);
  bm = Status::Failure("closed");
  auto again = DurableBitmap::Open(path, h);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Count(), 3u);
}

TEST_F(BitmapTest, RefusesForeignOrDamagedMaps) {
  std::string path = dir_ + "/m";
  MapHeader h{MapKind::kOverlay, 1 << 20, 4096, "snapshot snap-0123456789abcdef0"};
  ASSERT_TRUE(DurableBitmap::Create(path, h).ok());
  EXPECT_EQ(DurableBitmap::Create(path, h).status().code(), Status::Code::kUsage);
  MapHeader other = h;
  other.identity = "snapshot snap-1111111111111111a";
  EXPECT_EQ(DurableBitmap::Open(path, other).status().code(), Status::Code::kUsage);
  other = h;
  other.kind = MapKind::kHydrate;
  EXPECT_EQ(DurableBitmap::Open(path, other).status().code(), Status::Code::kUsage);
  other = h;
  other.size = 2 << 20;
  EXPECT_EQ(DurableBitmap::Open(path, other).status().code(), Status::Code::kUsage);
  auto hdr = DurableBitmap::ReadHeader(path);
  ASSERT_TRUE(hdr.ok());
  EXPECT_EQ(hdr->identity, h.identity);
  // One flipped header byte: the checksum catches it.
  int fd = ::open(path.c_str(), O_RDWR);
  char c = 'X';
  ASSERT_EQ(::pwrite(fd, &c, 1, 70), 1);
  ::close(fd);
  auto bad = DurableBitmap::Open(path, h);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("checksum"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/junk", "not a map").ok());
  EXPECT_FALSE(DurableBitmap::Open(dir_ + "/junk", h).ok());
}

}  // namespace
}  // namespace cloudkeep::nbd
