#include "mirror/bitmap.h"

#include <gtest/gtest.h>

namespace cloudkeep::mirror {
namespace {

TEST(MirrorBitmap, SetClearAndCount) {
  Bitmap b(10 * 65536 + 100, 65536);  // 11 bits, the last one short
  EXPECT_EQ(b.bits(), 11u);
  EXPECT_EQ(b.Set(65536 + 10, 10), 1u);
  EXPECT_TRUE(b.Test(1));
  EXPECT_EQ(b.Set(65536 - 1, 2), 1u);  // spans bits 0 and 1
  EXPECT_EQ(b.Count(), 2u);
  EXPECT_EQ(b.DirtyBytes(), 2u * 65536);
  b.Set(10 * 65536, 1);
  EXPECT_EQ(b.DirtyBytes(), 2u * 65536 + 100);
  // Clear only whole regions: a partial clear leaves the bit.
  EXPECT_EQ(b.Clear(0, 65535), 0u);
  EXPECT_EQ(b.Clear(0, 2 * 65536), 2u);
  EXPECT_EQ(b.Count(), 1u);
  EXPECT_EQ(b.Clear(10 * 65536, 100), 1u);  // the short last region clears with its real length
  EXPECT_EQ(b.Count(), 0u);
  EXPECT_EQ(b.Set(b.device_size(), 10), 0u);
}

TEST(MirrorBitmap, RunsAreMergedAndBounded) {
  Bitmap b(64 * 4096, 4096);
  b.Set(0, 3 * 4096);
  b.Set(10 * 4096, 4096);
  b.Set(20 * 4096, 40 * 4096);
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  b.ForEachRun(16 * 4096, [&](uint64_t o, uint64_t l) {
    runs.emplace_back(o / 4096, l / 4096);
    return true;
  });
  std::vector<std::pair<uint64_t, uint64_t>> want = {{0, 3}, {10, 1}, {20, 16}, {36, 16}, {52, 8}};
  EXPECT_EQ(runs, want);
  EXPECT_EQ(b.NextSet(3), 10u);
  EXPECT_EQ(b.NextSet(61), 64u);
}

TEST(MirrorBitmap, SerializeLoadUnionAndPages) {
  Bitmap b(1ull << 30, 4096);  // 262144 bits = 32 KiB = 8 pages
  EXPECT_EQ(b.StorageBytes(), 32768u);
  b.Set(0, 1);
  b.Set((1ull << 30) - 1, 1);
  auto pages = b.TakeDirtyPages();
  EXPECT_EQ(pages, (std::set<uint64_t>{0, 7}));
  auto bytes = b.Serialize();
  Bitmap c(1ull << 30, 4096);
  ASSERT_TRUE(c.Load(bytes.data(), bytes.size()));
  EXPECT_EQ(c.Count(), 2u);
  Bitmap d(1ull << 30, 4096);
  d.Set(4096 * 5, 1);
  ASSERT_TRUE(d.Union(c));
  EXPECT_EQ(d.Count(), 3u);
  EXPECT_FALSE(d.Union(Bitmap(1ull << 30, 8192)));
  EXPECT_EQ(b.PageBytes(7)[4095], 0x80);
}

}  // namespace
}  // namespace cloudkeep::mirror
