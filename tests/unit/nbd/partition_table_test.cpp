// ReadPartitions and ProbeFilesystem on synthesized images: MBR with
// logical partitions, GPT, a file system on the whole device, and damaged
// tables that must not send the parser out of bounds or round in circles.
#include "nbd/partition_table.h"

#include <gtest/gtest.h>

#include <cstring>

#include "mem_backend.h"

namespace cloudkeep::nbd {
namespace {

using testing::MemBackend;

void Put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void Put64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void MbrEntry(std::string& s, size_t sector_off, int i, uint8_t type, uint32_t lba, uint32_t n) {
  size_t e = sector_off + 446 + 16 * i;
  s[e + 4] = static_cast<char>(type);
  Put32(s, e + 8, lba);
  Put32(s, e + 12, n);
  s[sector_off + 510] = '\x55';
  s[sector_off + 511] = '\xaa';
}

TEST(Partitions, MbrPrimaryAndLogical) {
  std::string img(64 << 20, '\0');
  MbrEntry(img, 0, 0, 0x83, 2048, 8192);    // 1: 1 MiB, 4 MiB
  MbrEntry(img, 0, 1, 0x05, 20480, 81920);  // extended at 10 MiB, 40 MiB
  // EBR 1 at the start of the extended partition: logical 5 at +2048, next EBR at +40960.
  MbrEntry(img, 20480 * 512, 0, 0x83, 2048, 4096);
  MbrEntry(img, 20480 * 512, 1, 0x05, 40960, 8192);
  // EBR 2: logical 6, end of chain.
  MbrEntry(img, (20480 + 40960) * 512, 0, 0x07, 2048, 2048);
  MemBackend dev(img);
  auto parts = ReadPartitions(dev);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].number, 1);
  EXPECT_EQ((*parts)[0].offset, 1u << 20);
  EXPECT_EQ((*parts)[0].size, 4u << 20);
  EXPECT_EQ((*parts)[0].type, "0x83");
  EXPECT_EQ((*parts)[1].number, 5);
  EXPECT_EQ((*parts)[1].offset, (20480u + 2048) * 512);
  EXPECT_EQ((*parts)[2].number, 6);
  EXPECT_EQ((*parts)[2].offset, (20480u + 40960 + 2048) * 512);
  EXPECT_EQ((*parts)[2].type, "0x07");
}

TEST(Partitions, EbrLoopsAndOutOfRangeEntriesEnd) {
  std::string img(16 << 20, '\0');
  MbrEntry(img, 0, 0, 0x83, 1u << 30, 100);  // starts past the end: ignored
  MbrEntry(img, 0, 1, 0x0f, 4096, 8192);
  MbrEntry(img, 4096 * 512, 0, 0x83, 10, 0xffffffffu);  // size clamped to the device
  MbrEntry(img, 4096 * 512, 1, 0x05, 0, 100);           // points at itself: the chain ends
  MemBackend dev(img);
  auto parts = ReadPartitions(dev);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].number, 5);
  EXPECT_EQ((*parts)[0].offset + (*parts)[0].size, dev.Size());
}

TEST(Partitions, Gpt) {
  std::string img(32 << 20, '\0');
  MbrEntry(img, 0, 0, 0xee, 1, (32 << 20) / 512 - 1);
  std::memcpy(img.data() + 512, "EFI PART", 8);
  Put64(img, 512 + 72, 2);    // entries at LBA 2
  Put32(img, 512 + 80, 128);  // 128 entries
  Put32(img, 512 + 84, 128);  // of 128 bytes
  auto entry = [&](int i, uint64_t first, uint64_t last) {
    size_t e = 1024 + 128 * i;
    const uint8_t linux_fs[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
                                  0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4};
    std::memcpy(img.data() + e, linux_fs, 16);
    Put64(img, e + 32, first);
    Put64(img, e + 40, last);
  };
  entry(0, 2048, 2048 + 8191);
  entry(2, 20480, 40959);  // entry 3: numbers follow the slot
  MemBackend dev(img);
  auto parts = ReadPartitions(dev);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].number, 1);
  EXPECT_EQ((*parts)[0].offset, 1u << 20);
  EXPECT_EQ((*parts)[0].size, 4u << 20);
  EXPECT_EQ((*parts)[0].scheme, "gpt");
  EXPECT_EQ((*parts)[0].type, "0fc63daf-8483-4772-8e79-3d69d8477de4");
  EXPECT_EQ((*parts)[1].number, 3);
  EXPECT_EQ((*parts)[1].offset, 10u << 20);
}

TEST(Filesystems, MagicNumbers) {
  std::string ext(4 << 20, '\0'), xfs = ext, btrfs = ext, fat = ext, none = ext;
  ext[1080] = '\x53';
  ext[1081] = '\xef';
  std::memcpy(xfs.data(), "XFSB", 4);
  std::memcpy(btrfs.data() + 0x10040, "_BHRfS_M", 8);
  std::memcpy(fat.data() + 82, "FAT32   ", 8);
  fat[510] = '\x55';
  fat[511] = '\xaa';
  for (auto [bytes, want] : std::vector<std::pair<std::string*, std::string>>{
           {&ext, "ext4"}, {&xfs, "xfs"}, {&btrfs, "btrfs"}, {&fat, "vfat"}, {&none, ""}}) {
    MemBackend dev(*bytes);
    auto fs = ProbeFilesystem(dev, 0, dev.Size());
    ASSERT_TRUE(fs.ok());
    EXPECT_EQ(*fs, want);
    // A file system on the whole device is not a partition table (FAT ends in 55 AA).
    EXPECT_TRUE(ReadPartitions(dev)->empty());
  }
  // Offsets within a partition; a window too small for the btrfs superblock.
  std::string img(8 << 20, '\0');
  std::memcpy(img.data() + (1 << 20) + 0x10040, "_BHRfS_M", 8);
  MemBackend dev(img);
  EXPECT_EQ(*ProbeFilesystem(dev, 1 << 20, 2 << 20), "btrfs");
  EXPECT_EQ(*ProbeFilesystem(dev, 1 << 20, 0x10000), "");
  EXPECT_EQ(ReadOnlyMountOptions("xfs"), "ro,norecovery,nouuid");
  EXPECT_EQ(ReadOnlyMountOptions("ext4"), "ro,noload");
  EXPECT_EQ(ReadOnlyMountOptions("btrfs"), "ro,rescue=nologreplay");
}

}  // namespace
}  // namespace cloudkeep::nbd
