// DirBackend, the directory behind the store's object interface: put-if-absent
// never replaces (also between threads racing on one key), a listing is by
// prefix, sorted, recursive, and hides partial writes; deleting a missing key
// succeeds.
#include "providers/local/object_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/fs.h"

namespace cloudkeep::local {
namespace {

namespace fs = std::filesystem;

class DirBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ck-objbackend-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(DirBackendTest, PutIfAbsentNeverReplaces) {
  DirBackend b(root_.string());
  auto first = b.PutIfAbsent("chunks/ab/one", "first");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(*first);
  auto second = b.PutIfAbsent("chunks/ab/one", "second");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  auto got = b.Get("chunks/ab/one");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, "first");
  // No temporary file is left beside it.
  EXPECT_EQ(ListDir((root_ / "chunks/ab").string()).size(), 1u);
}

TEST_F(DirBackendTest, RacingWritersOneWins) {
  DirBackend b(root_.string());
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r =
          b.PutIfAbsent("snapshots/snap-1.json", std::string(1000, static_cast<char>('a' + i)));
      if (r.ok() && *r) wins++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  auto got = b.Get("snapshots/snap-1.json");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->size(), 1000u);
  EXPECT_EQ(**got, std::string(1000, (**got)[0]));
}

TEST_F(DirBackendTest, ListByPrefixSortedAndWithoutPartialWrites) {
  DirBackend b(root_.string());
  ASSERT_TRUE(b.PutIfAbsent("chunks/bb/2", "xx").ok());
  ASSERT_TRUE(b.PutIfAbsent("chunks/aa/1", "x").ok());
  ASSERT_TRUE(b.PutIfAbsent("snapshots/s.json", "{}").ok());
  ASSERT_TRUE(WriteFileAtomic((root_ / "chunks/aa/3.tmp-99").string(), "partial").ok());
  auto all = b.List("chunks/");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "chunks/aa/1");
  EXPECT_EQ((*all)[0].size, 1u);
  EXPECT_EQ((*all)[1].key, "chunks/bb/2");
  auto one = b.List("chunks/b");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].key, "chunks/bb/2");
  auto none = b.List("locks/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(DirBackendTest, GetMissingAndDeleteMissing) {
  DirBackend b(root_.string());
  auto got = b.Get("snapshots/nope.json");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_TRUE(b.Delete("snapshots/nope.json").ok());
  ASSERT_TRUE(b.Put("locks/l", "one").ok());
  ASSERT_TRUE(b.Put("locks/l", "two").ok());
  EXPECT_EQ(**b.Get("locks/l"), "two");
  EXPECT_TRUE(b.Delete("locks/l").ok());
  EXPECT_FALSE(b.Get("locks/l")->has_value());
}

}  // namespace
}  // namespace cloudkeep::local
