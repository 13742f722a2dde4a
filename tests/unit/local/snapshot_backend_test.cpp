// SnapshotBackend on a real store: reads decompress and verify chunks on
// demand, zero chunks are holes, a damaged chunk fails only the reads that
// touch it, concurrent readers of one chunk decompress it once, the cache
// stays within its bound, and the shared store lock is held while serving.
#include "providers/local/snapshot_backend.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

namespace cloudkeep::local {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kChunk = 64 * 1024;

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

class SnapshotBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-snapbackend-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    root_ = dir_ + "/store";
    setenv("CLOUDKEEP_CHUNK_SIZE", "65536", 1);
    auto store = LocalStore::Open(root_, true);
    unsetenv("CLOUDKEEP_CHUNK_SIZE");
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_EQ((*store)->chunk_size(), kChunk);
    // 200 chunks and a partial one (12.5 MiB): data, a zero stretch, repeats.
    image_ = Pattern(200 * kChunk + 1234, 1);
    std::fill(image_.begin() + 10 * kChunk, image_.begin() + 20 * kChunk, '\0');
    image_.replace(30 * kChunk, kChunk, image_.substr(40 * kChunk, kChunk));  // a shared chunk
    Manifest m;
    m.chunk_size = kChunk;
    m.snapshot.id = id_ = NewSnapshotId();
    m.snapshot.volume_id = "/srv/test.img";
    m.snapshot.size_bytes = image_.size();
    for (uint64_t off = 0; off < image_.size(); off += kChunk) {
      std::string_view piece(image_.data() + off, std::min<uint64_t>(kChunk, image_.size() - off));
      if (IsAllZero(piece.data(), piece.size())) {
        m.chunks.push_back(ChunkHash{});
        continue;
      }
      ChunkHash h = Sha256(piece.data(), piece.size());
      ASSERT_TRUE((*store)->chunks().Stage(h, piece, 1).ok());
      m.chunks.push_back(h);
    }
    ASSERT_TRUE((*store)->chunks().Publish().ok());
    ASSERT_TRUE((*store)->CommitManifest(m).ok());
    manifest_ = m;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<SnapshotBackend> Open(uint64_t cache = kDefaultSnapshotCacheBytes) {
    SnapshotBackendOptions o;
    o.cache_bytes = cache;
    o.lock_wait = std::chrono::seconds(1);
    auto b = SnapshotBackend::Open(root_, id_, o);
    EXPECT_TRUE(b.ok()) << b.status().message();
    return b.ok() ? std::move(b).value() : nullptr;
  }

  std::string dir_, root_, id_, image_;
  Manifest manifest_;
};

TEST_F(SnapshotBackendTest, ReadsAreTheImage) {
  auto b = Open();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Size(), image_.size());
  EXPECT_FALSE(b->Caps().writable);
  EXPECT_TRUE(b->Caps().extents);
  std::string all(image_.size(), 'x');
  ASSERT_TRUE(b->Pread(all.data(), all.size(), 0).ok());
  EXPECT_TRUE(all == image_);
  // Unaligned reads across chunk boundaries, zero chunks, the partial last chunk.
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {kChunk - 10, 20}, {9 * kChunk + 5, 2 * kChunk}, {image_.size() - 1300, 1300}, {7, 1}}) {
    std::string got(len, 'x');
    ASSERT_TRUE(b->Pread(got.data(), len, off).ok());
    EXPECT_TRUE(got == image_.substr(off, len)) << off;
  }
  EXPECT_NE(b->Description().find(id_), std::string::npos);
  EXPECT_NE(b->Identity().find(id_), std::string::npos);
}

TEST_F(SnapshotBackendTest, ZeroChunksAreHolesInExtents) {
  auto b = Open();
  ASSERT_TRUE(b);
  std::vector<nbd::Extent> ext;
  ASSERT_TRUE(b->Extents(b->Size(), 0, &ext).ok());
  ASSERT_EQ(ext.size(), 3u);
  EXPECT_EQ(ext[0].length, 10 * kChunk);
  EXPECT_EQ(ext[0].flags, 0u);
  EXPECT_EQ(ext[1].length, 10 * kChunk);
  EXPECT_EQ(ext[1].flags, nbd::Extent::kHole | nbd::Extent::kZero);
  EXPECT_EQ(ext[2].length, b->Size() - 20 * kChunk);
  ext.clear();
  ASSERT_TRUE(b->Extents(100, 15 * kChunk + 3, &ext).ok());
  ASSERT_EQ(ext.size(), 1u);
  EXPECT_EQ(ext[0].length, 100u);
  EXPECT_EQ(b->Stats().misses, 0u) << "extents never read chunks";
}

TEST_F(SnapshotBackendTest, ADamagedChunkFailsOnlyTheReadsThatTouchIt) {
  auto b = Open();
  ASSERT_TRUE(b);
  std::string path = b->store_root() + "/chunks/" + HashHex(manifest_.chunks[50]).substr(0, 2) +
                     "/" + HashHex(manifest_.chunks[50]);
  auto raw = ReadFile(path);
  ASSERT_TRUE(raw.ok());
  std::string damaged = *raw;
  damaged[damaged.size() / 2] ^= 0x40;
  ASSERT_TRUE(WriteFileAtomic(path, damaged).ok());

  std::string buf(4096, 'x');
  for (int attempt = 0; attempt < 3; ++attempt) {
    Status s = b->Pread(buf.data(), 4096, 50 * kChunk + 100);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.sys_errno(), EIO);
    EXPECT_NE(s.message().find(HashHex(manifest_.chunks[50])), std::string::npos) << s.message();
  }
  // A read that spans it fails too; its neighbours do not.
  std::string big(3 * kChunk, 'x');
  EXPECT_FALSE(b->Pread(big.data(), big.size(), 49 * kChunk).ok());
  ASSERT_TRUE(b->Pread(buf.data(), 4096, 51 * kChunk).ok());
  EXPECT_TRUE(buf == image_.substr(51 * kChunk, 4096));
  ASSERT_TRUE(b->Pread(buf.data(), 4096, 50 * kChunk - 4096).ok());
  EXPECT_TRUE(buf == image_.substr(50 * kChunk - 4096, 4096));
  EXPECT_GE(b->Stats().errors, 3u);
}

TEST_F(SnapshotBackendTest, ConcurrentReadersOfOneChunkDecompressItOnce) {
  auto b = Open();
  ASSERT_TRUE(b);
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready++;
      while (ready < kThreads) std::this_thread::yield();
      std::string got(4096, 'x');
      if (!b->Pread(got.data(), 4096, 77 * kChunk + t * 4096).ok() ||
          got != image_.substr(77 * kChunk + t * 4096, 4096))
        bad++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, 0);
  SnapshotCacheStats s = b->Stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits + s.joined, kThreads - 1u);
}

TEST_F(SnapshotBackendTest, TheCacheStaysWithinItsBound) {
  auto b = Open(1);  // raised to the minimum
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Stats().capacity_bytes, kMinSnapshotCacheBytes);
  std::string all(image_.size(), 'x');
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE(b->Pread(all.data(), all.size(), 0).ok());
    EXPECT_TRUE(all == image_);
  }
  SnapshotCacheStats s = b->Stats();
  EXPECT_LE(s.cached_bytes, kMinSnapshotCacheBytes);
  EXPECT_GT(s.evictions, 0u);
  // A working set that fits is served from the cache on the second pass.
  auto warm = Open();
  ASSERT_TRUE(warm);
  ASSERT_TRUE(warm->Pread(all.data(), all.size(), 0).ok());
  uint64_t misses = warm->Stats().misses;
  ASSERT_TRUE(warm->Pread(all.data(), all.size(), 0).ok());
  EXPECT_EQ(warm->Stats().misses, misses);
}

TEST_F(SnapshotBackendTest, HoldsTheSharedStoreLockWhileServing) {
  auto b = Open();
  ASSERT_TRUE(b);
  auto writer = LocalStore::Open(root_, false);
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE(
      (*writer)->Lock(LocalStore::LockMode::kExclusive, std::chrono::milliseconds(200)).ok())
      << "a delete could remove chunks from under the export";
  // Other readers share it.
  auto reader = LocalStore::Open(root_, false);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->Lock(LocalStore::LockMode::kShared, std::chrono::milliseconds(200)).ok());
  reader->reset();
  b.reset();
  // Released with the backend. (The exclusive lock would also clean up; nothing is left to.)
  EXPECT_TRUE((*writer)->Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(5)).ok());
}

TEST_F(SnapshotBackendTest, BadIdsAreUsageErrors) {
  auto r = SnapshotBackend::Open(root_, "snap-nothex", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_NE(r.status().message().find("snap-nothex"), std::string::npos);
  r = SnapshotBackend::Open(root_, "snap-0123456789abcdef0", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_NE(r.status().message().find("unknown snapshot"), std::string::npos);
  r = SnapshotBackend::Open(dir_ + "/nostore", id_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::local
