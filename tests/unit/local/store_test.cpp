// LocalStore and ChunkStore on a real directory: dedup, garbage collection,
// recovery after a run that died.
#include "providers/local/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace cloudkeep::local {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-store-test.XXXXXX";
    root_ = mkdtemp(tmpl);
    root_ += "/store";
  }
  void TearDown() override { fs::remove_all(fs::path(root_).parent_path()); }
  std::string root_;
};

TEST_F(StoreTest, StagedChunksAppearOnlyAfterPublish) {
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ChunkStore& cs = (*store)->chunks();
  std::string data(100000, 'x');
  ChunkHash h = Sha256(data.data(), data.size());
  auto added = cs.Stage(h, data, 1);
  ASSERT_TRUE(added.ok());
  EXPECT_GT(*added, 0u);
  EXPECT_LT(*added, data.size());  // compressed
  EXPECT_FALSE(cs.Exists(h));
  EXPECT_EQ(*cs.Stage(h, data, 1), 0u);  // staged once
  ASSERT_TRUE(cs.Publish().ok());
  EXPECT_TRUE(cs.Exists(h));
  EXPECT_EQ(*cs.Stage(h, data, 1), 0u);  // never written again
  auto back = cs.Get(h);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
}

TEST_F(StoreTest, IncompressibleChunksAreStoredRaw) {
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok());
  std::string data(65536, '\0');
  uint32_t x = 12345;
  for (auto& c : data) c = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  ChunkHash h = Sha256(data.data(), data.size());
  auto added = (*store)->chunks().Stage(h, data, 1);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, data.size() + 16);
  ASSERT_TRUE((*store)->chunks().Publish().ok());
  EXPECT_EQ(*(*store)->chunks().Get(h), data);
}

TEST_F(StoreTest, CorruptChunkIsDetected) {
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok());
  std::string data(4096, 'q');
  ChunkHash h = Sha256(data.data(), data.size());
  ASSERT_TRUE((*store)->chunks().Stage(h, data, 1).ok());
  ASSERT_TRUE((*store)->chunks().Publish().ok());
  std::string path = (*store)->chunks().PathOf(h);
  auto raw = ReadFile(path);
  std::string damaged = *raw;
  damaged[damaged.size() - 1] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(path, damaged).ok());
  EXPECT_FALSE((*store)->chunks().Get(h).ok());
}

TEST_F(StoreTest, GarbageCollectionKeepsReferencedChunks) {
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok());
  LocalStore& s = **store;
  std::string a(4096, 'a'), b(4096, 'b');
  ChunkHash ha = Sha256(a.data(), a.size()), hb = Sha256(b.data(), b.size());
  ASSERT_TRUE(s.chunks().Stage(ha, a, 1).ok());
  ASSERT_TRUE(s.chunks().Stage(hb, b, 1).ok());
  ASSERT_TRUE(s.chunks().Publish().ok());
  Manifest m;
  m.chunk_size = 4096;
  m.snapshot.id = "snap-0000000000000000a";
  m.snapshot.volume_id = "v";
  m.snapshot.size_bytes = 4096;
  m.chunks = {ha};
  ASSERT_TRUE(s.CommitManifest(m).ok());
  auto removed = s.CollectGarbage();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_TRUE(s.chunks().Exists(ha));
  EXPECT_FALSE(s.chunks().Exists(hb));
}

TEST_F(StoreTest, DamagedManifestIsListedAndStopsGarbageCollection) {
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok());
  LocalStore& s = **store;
  std::string a(4096, 'a');
  ChunkHash ha = Sha256(a.data(), a.size());
  ASSERT_TRUE(s.chunks().Stage(ha, a, 1).ok());
  ASSERT_TRUE(s.chunks().Publish().ok());
  Manifest m;
  m.chunk_size = 4096;
  m.snapshot.id = "snap-0000000000000000b";
  m.snapshot.volume_id = "v";
  m.snapshot.size_bytes = 4096;
  m.chunks = {ha};
  ASSERT_TRUE(s.CommitManifest(m).ok());
  // The only manifest that references the chunk is cut in half.
  std::string path = s.ManifestPath(m.snapshot.id);
  auto text = ReadFile(path);
  ASSERT_TRUE(WriteFileAtomic(path, text->substr(0, text->size() / 2)).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/snapshots/snap-0000000000000000c.json.tmp-1", "x").ok());
  LocalStore::ManifestScan scan = s.ScanManifests();
  EXPECT_TRUE(scan.good.empty());
  ASSERT_EQ(scan.damaged.size(), 1u);  // the .tmp- file of an interrupted write is no manifest
  EXPECT_EQ(scan.damaged[0].id, m.snapshot.id);
  EXPECT_NE(scan.damaged[0].reason.find("bad manifest"), std::string::npos);
  auto removed = s.CollectGarbage();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0u);
  EXPECT_TRUE(s.chunks().Exists(ha));  // it may still be referenced
  ASSERT_TRUE(s.RemoveManifest(m.snapshot.id).ok());
  EXPECT_EQ(*s.CollectGarbage(), 1u);
}

TEST_F(StoreTest, NextWriterCleansUpAfterADeadRun) {
  {
    auto store = LocalStore::Open(root_, true);
    ASSERT_TRUE(store.ok());
    LocalStore& s = **store;
    ASSERT_TRUE(s.Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(1)).ok());
    std::string clone = root_ + "/../leftover.clone";
    ASSERT_TRUE(WriteFileAtomic(clone, "x").ok());
    ASSERT_TRUE(s.BeginRun("create", {clone}).ok());
    std::string a(4096, 'a');
    ChunkHash ha = Sha256(a.data(), a.size());
    ASSERT_TRUE(s.chunks().Stage(ha, a, 1).ok());
    ASSERT_TRUE(s.chunks().Publish().ok());  // published, but no manifest: the run "dies" here
  }
  auto store = LocalStore::Open(root_, true);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(1)).ok());
  EXPECT_TRUE((*store)->chunks().List().empty());
  EXPECT_FALSE(fs::exists(root_ + "/../leftover.clone"));
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
}

TEST_F(StoreTest, RefusesAFileAndAForeignDirectory) {
  ASSERT_TRUE(WriteFileAtomic(fs::path(root_).parent_path().string() + "/afile", "x").ok());
  auto r = LocalStore::Open(fs::path(root_).parent_path().string() + "/afile", true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  fs::create_directories(root_);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/precious.txt", "x").ok());
  auto r2 = LocalStore::Open(root_, true);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(fs::exists(root_ + "/precious.txt"));
}

TEST(SnapshotIds, LookLikeEbs) {
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(snapshot::IsSnapshotId(NewSnapshotId()));
}

}  // namespace
}  // namespace cloudkeep::local
