// HydrateBackend over an in-memory base into a real file: usable at once,
// the background copy never overwrites a client's write (also while they
// race), a crash mid-copy (a child that _exits) resumes from the map
// instead of restarting, a damaged base region leaves the target marked
// incomplete, and PrepareHydrateTarget never overwrites a file that is not
// an unfinished hydrate.
#include "nbd/hydrate_backend.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "mem_backend.h"

namespace cloudkeep::nbd {
namespace {

using testing::MemBackend;
using testing::Pattern;
namespace fs = std::filesystem;

constexpr uint64_t kRegion = 64 * 1024;

class HydrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-hydrate-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    target_ = dir_ + "/disk.img";
    // 4 MiB and a partial region; a zero stretch in the middle.
    std::string bytes = Pattern(4 * 1024 * 1024 + 3000, 5);
    std::fill(bytes.begin() + 1024 * 1024, bytes.begin() + 1536 * 1024, '\0');
    base_ = std::make_shared<MemBackend>(bytes);
  }
  void TearDown() override {
    EXPECT_EQ(base_->writes(), 0u);
    fs::remove_all(dir_);
  }
  HydrateOptions Options() {
    HydrateOptions o;
    o.map_path = HydrateMapPath(target_);
    o.identity = "memory base";
    o.region_size = kRegion;
    o.sync_every_bytes = 256 * 1024;
    o.batch_bytes = 256 * 1024;
    return o;
  }
  std::unique_ptr<HydrateBackend> Open() {
    auto t = PrepareHydrateTarget(target_, base_->Size(), Options());
    EXPECT_TRUE(t.ok()) << t.status().message();
    if (!t.ok()) return nullptr;
    last_target_ = *t;
    auto h = HydrateBackend::Open(base_, t->target, Options());
    EXPECT_TRUE(h.ok()) << h.status().message();
    return h.ok() ? std::move(h).value() : nullptr;
  }
  std::string ReadAll(Backend& b) {
    std::string s(b.Size(), '\0');
    Status st = b.Pread(s.data(), s.size(), 0);
    EXPECT_TRUE(st.ok()) << st.message();
    return s;
  }
  std::string TargetBytes() {
    auto r = ReadFile(target_);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->substr(0, base_->Size()) : "";
  }
  std::string dir_, target_;
  std::shared_ptr<MemBackend> base_;
  HydrateTarget last_target_;
};

TEST_F(HydrateTest, UsableAtOnceThenCompleteFromTheTargetAlone) {
  auto h = Open();
  ASSERT_TRUE(h);
  EXPECT_TRUE(last_target_.created);
  EXPECT_FALSE(last_target_.resumed);
  EXPECT_TRUE(fs::exists(HydrateMapPath(target_))) << "the map must mark the target incomplete";
  // Before any copying, reads come from the base.
  EXPECT_EQ(ReadAll(*h), base_->bytes());
  EXPECT_FALSE(h->Progress().complete);
  h->Start();
  ASSERT_TRUE(h->WaitComplete(std::chrono::seconds(30)));
  HydrateProgress p = h->Progress();
  EXPECT_TRUE(p.complete);
  EXPECT_EQ(p.done_bytes, base_->Size());
  EXPECT_EQ(p.total_bytes, base_->Size());
  EXPECT_FALSE(fs::exists(HydrateMapPath(target_))) << "a complete target has no map";
  EXPECT_EQ(TargetBytes(), base_->bytes());
  // Served from the target alone: the base is not read any more.
  uint64_t reads = base_->reads();
  EXPECT_EQ(ReadAll(*h), base_->bytes());
  EXPECT_EQ(base_->reads(), reads);
  // The zero stretch stayed sparse.
  std::vector<Extent> ext;
  ASSERT_TRUE(h->Extents(512 * 1024, 1024 * 1024, &ext).ok());
  ASSERT_FALSE(ext.empty());
  EXPECT_EQ(ext[0].flags, Extent::kHole | Extent::kZero);
}

TEST_F(HydrateTest, ClientWritesAreNeverOverwrittenByTheCopy) {
  auto h = Open();
  ASSERT_TRUE(h);
  std::string model = base_->bytes();
  // Partial region, region-spanning, zeroes, before the copy starts.
  std::string a = Pattern(100, 1), b = Pattern(3 * kRegion, 2);
  ASSERT_TRUE(h->Pwrite(a.data(), a.size(), 5000, false).ok());
  model.replace(5000, a.size(), a);
  ASSERT_TRUE(h->Pwrite(b.data(), b.size(), 2 * kRegion + 777, false).ok());
  model.replace(2 * kRegion + 777, b.size(), b);
  ASSERT_TRUE(h->Zero(1000, 20 * kRegion + 10, false, false, false).ok());
  model.replace(20 * kRegion + 10, 1000, std::string(1000, '\0'));
  EXPECT_EQ(ReadAll(*h), model);
  h->Start();
  ASSERT_TRUE(h->WaitComplete(std::chrono::seconds(30)));
  EXPECT_EQ(TargetBytes(), model);
}

// Writers hammer regions while the background copy runs (slowed down so
// that they meet): every write must survive, none may be half applied.
TEST_F(HydrateTest, WritesRacingTheBackgroundCopySurvive) {
  base_->SetDelay(1000);
  auto h = Open();
  ASSERT_TRUE(h);
  h->Start();
  constexpr int kThreads = 4;
  std::vector<std::string> models(kThreads);
  std::string model = base_->bytes();
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int k = 0; k < 300; ++k) {
        // Each thread owns every kThreads-th 16 KiB slice: disjoint, so the final bytes are known.
        uint64_t slice = (rng() % (base_->Size() / 16384 / kThreads)) * kThreads + t;
        uint64_t off = slice * 16384 + rng() % 8000;
        uint64_t len = 1 + rng() % 8000;
        std::string data = Pattern(len, static_cast<uint32_t>(t * 100000 + k));
        ASSERT_TRUE(h->Pwrite(data.data(), len, off, false).ok());
        std::lock_guard<std::mutex> l(mu);
        model.replace(off, len, data);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ReadAll(*h), model);
  base_->SetDelay(0);
  ASSERT_TRUE(h->WaitComplete(std::chrono::seconds(60)));
  EXPECT_EQ(TargetBytes(), model);
}

TEST_F(HydrateTest, KilledMidCopyResumesWhereItWas) {
  std::string flushed = Pattern(1000, 9);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    base_->SetDelay(2000);  // 2 ms per 64 KiB: about 32 ms for the first megabyte
    auto t = PrepareHydrateTarget(target_, base_->Size(), Options());
    if (!t.ok()) _exit(2);
    auto h = HydrateBackend::Open(base_, t->target, Options());
    if (!h.ok()) _exit(3);
    if (!(*h)->Pwrite(flushed.data(), flushed.size(), 3 * 1024 * 1024 + 5, false).ok()) _exit(4);
    if (!(*h)->Flush().ok()) _exit(5);
    (*h)->Start();
    while ((*h)->Progress().done_bytes < 1024 * 1024) usleep(1000);
    usleep(20000);
    _exit(0);  // as kill -9, in the middle of the copy
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  ASSERT_TRUE(fs::exists(HydrateMapPath(target_))) << "an interrupted hydrate keeps its map";

  auto h = Open();
  ASSERT_TRUE(h);
  EXPECT_TRUE(last_target_.resumed);
  HydrateProgress p = h->Progress();
  EXPECT_GE(p.resumed_from_bytes, 512 * 1024u) << "it restarted instead of resuming";
  EXPECT_LT(p.resumed_from_bytes, base_->Size());
  h->Start();
  ASSERT_TRUE(h->WaitComplete(std::chrono::seconds(30)));
  std::string model = base_->bytes();
  model.replace(3 * 1024 * 1024 + 5, flushed.size(), flushed);
  EXPECT_EQ(TargetBytes(), model);
  // Only what was not done was copied again.
  EXPECT_LE(h->Progress().copied_bytes, base_->Size() - p.resumed_from_bytes);
}

TEST_F(HydrateTest, ADamagedBaseRegionLeavesTheTargetMarkedIncomplete) {
  base_->FailRange(2 * 1024 * 1024 + 10, 2 * 1024 * 1024 + 11);
  auto h = Open();
  ASSERT_TRUE(h);
  h->Start();
  EXPECT_FALSE(h->WaitComplete(std::chrono::seconds(30)));
  HydrateProgress p = h->Progress();
  EXPECT_FALSE(p.complete);
  EXPECT_EQ(p.failed_regions, 1u);
  EXPECT_EQ(p.done_bytes, base_->Size() - kRegion);
  EXPECT_FALSE(p.error.empty());
  EXPECT_TRUE(fs::exists(HydrateMapPath(target_)));
  // The damaged region is an error; its neighbours read fine.
  std::string buf(4096, '\0');
  EXPECT_FALSE(h->Pread(buf.data(), 4096, 2 * 1024 * 1024).ok());
  ASSERT_TRUE(h->Pread(buf.data(), 4096, 2 * 1024 * 1024 + kRegion).ok());
  EXPECT_EQ(buf, base_->bytes().substr(2 * 1024 * 1024 + kRegion, 4096));
  // A client that writes the whole region repairs it, and the hydrate can complete.
  std::string whole = base_->bytes().substr(2 * 1024 * 1024, kRegion);
  ASSERT_TRUE(h->Pwrite(whole.data(), kRegion, 2 * 1024 * 1024, false).ok());
  ASSERT_TRUE(h->Flush().ok());
  EXPECT_TRUE(h->Progress().complete);
  EXPECT_FALSE(fs::exists(HydrateMapPath(target_)));
}

TEST_F(HydrateTest, NeverOverwritesAFileThatIsNotAnUnfinishedHydrate) {
  ASSERT_TRUE(WriteFileAtomic(target_, "precious").ok());
  auto t = PrepareHydrateTarget(target_, base_->Size(), Options());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
  EXPECT_NE(t.status().message().find("not an unfinished hydrate"), std::string::npos);
  EXPECT_EQ(*ReadFile(target_), "precious");
  EXPECT_FALSE(fs::exists(HydrateMapPath(target_)));
}

TEST_F(HydrateTest, RefusesToResumeAHydrateOfSomethingElse) {
  { ASSERT_TRUE(Open()); }  // stopped before the copy: map stays
  HydrateOptions o = Options();
  o.identity = "snapshot snap-0123456789abcdef0";
  auto t = PrepareHydrateTarget(target_, base_->Size(), o);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kUsage);
  EXPECT_NE(t.status().message().find("memory base"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace cloudkeep::nbd
