// DirBackend, the directory behind the store's object interface, and the
// store's lock objects over it. DirBackend: put-if-absent
// never replaces (also between threads racing on one key), a listing is by
// prefix, sorted, recursive, and hides partial writes; deleting a missing key
// succeeds.
#include "providers/local/object_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <thread>

#include "core/fs.h"
#include "providers/local/store.h"

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

// The lock-object protocol of a store without flock (store.h), driven through
// DirBackend: an exclusive lock keeps a second run out and names its holder;
// shared locks coexist; a lock of this host whose pid is gone is stale at once.
class RemoteLockTest : public DirBackendTest {
 protected:
  std::unique_ptr<LocalStore> OpenStore() {
    auto s = LocalStore::OpenRemote(std::make_unique<DirBackend>(root_.string()), true);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  size_t LockObjects() { return DirBackend(root_.string()).List("locks/")->size(); }
};

TEST_F(RemoteLockTest, ExclusiveKeepsOthersOutAndIsReleased) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(1)).ok());
  EXPECT_EQ(LockObjects(), 1u);
  Status s = b->Lock(LocalStore::LockMode::kShared, std::chrono::milliseconds(300));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("still locked by"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << s.message();
  // The loser left no lock of its own behind.
  EXPECT_EQ(LockObjects(), 1u);
  a.reset();  // released when the store is closed
  EXPECT_EQ(LockObjects(), 0u);
  EXPECT_TRUE(b->Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(1)).ok());
}

TEST_F(RemoteLockTest, SharedLocksCoexistAndBlockExclusive) {
  auto a = OpenStore();
  auto b = OpenStore();
  auto c = OpenStore();
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(a->Lock(LocalStore::LockMode::kShared, std::chrono::seconds(1)).ok());
  ASSERT_TRUE(b->Lock(LocalStore::LockMode::kShared, std::chrono::seconds(1)).ok());
  EXPECT_EQ(LockObjects(), 2u);
  EXPECT_FALSE(c->Lock(LocalStore::LockMode::kExclusive, std::chrono::milliseconds(300)).ok());
}

TEST_F(RemoteLockTest, DeadProcessLockIsStale) {
  auto a = OpenStore();
  ASSERT_TRUE(a);
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  // A pid that cannot be running: above the kernel's pid_max.
  std::string dead =
      std::string("{\"host\":\"") + host +
      "\",\"pid\":2147483000,\"exclusive\":true,\"time\":" + std::to_string(::time(nullptr)) +
      ",\"since\":\"then\"}\n";
  DirBackend raw(root_.string());
  ASSERT_TRUE(raw.Put("locks/00dead.json", dead).ok());
  // Another host's fresh lock is not stale: it blocks.
  std::string other = "{\"host\":\"elsewhere\",\"pid\":1,\"exclusive\":true,\"time\":" +
                      std::to_string(::time(nullptr)) + ",\"since\":\"now\"}\n";
  ASSERT_TRUE(raw.Put("locks/01other.json", other).ok());
  Status s = a->Lock(LocalStore::LockMode::kExclusive, std::chrono::milliseconds(300));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("elsewhere"), std::string::npos) << s.message();
  EXPECT_FALSE(raw.Get("locks/00dead.json")->has_value()) << "the dead pid's lock was kept";
  // Another host's lock older than kLockStale is stale too.
  std::string old = "{\"host\":\"elsewhere\",\"pid\":1,\"exclusive\":true,\"time\":" +
                    std::to_string(::time(nullptr) - 31 * 60) + ",\"since\":\"long ago\"}\n";
  ASSERT_TRUE(raw.Put("locks/01other.json", old).ok());
  EXPECT_TRUE(a->Lock(LocalStore::LockMode::kExclusive, std::chrono::seconds(1)).ok());
  EXPECT_EQ(LockObjects(), 1u);
}

}  // namespace
}  // namespace cloudkeep::local
