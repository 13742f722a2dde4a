// OverlayBackend over an in-memory base: reads merge overlay and base,
// partial blocks are read-modify-written, trim and zero shadow the base,
// concurrent writers of one block lose nothing, and a persistent overlay
// keeps exactly its flushed writes across a crash (a child that _exits).
#include "nbd/overlay_backend.h"

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

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-overlay-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    // 1 MiB + 1000 bytes: the last block is partial. A zero hole in the middle.
    std::string bytes = Pattern((1 << 20) + 1000, 1);
    std::fill(bytes.begin() + 65536, bytes.begin() + 131072, '\0');
    base_ = std::make_shared<MemBackend>(bytes);
  }
  void TearDown() override {
    EXPECT_EQ(base_->writes(), 0u) << "the base was written";
    fs::remove_all(dir_);
  }
  std::unique_ptr<OverlayBackend> Open(const std::string& path = "",
                                       const std::string& identity = "memory base") {
    OverlayOptions o;
    o.path = path;
    o.tmp_dir = dir_;
    o.identity = identity;
    auto r = OverlayBackend::Open(base_, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::string ReadAll(Backend& b) {
    std::string s(b.Size(), '\0');
    Status st = b.Pread(s.data(), s.size(), 0);
    EXPECT_TRUE(st.ok()) << st.message();
    return s;
  }
  std::string dir_;
  std::shared_ptr<MemBackend> base_;
};

TEST_F(OverlayTest, ReadsTheBaseUntilWritten) {
  auto o = Open();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->Size(), base_->Size());
  EXPECT_EQ(ReadAll(*o), base_->bytes());
  EXPECT_TRUE(o->Caps().writable);
  EXPECT_TRUE(o->Caps().flush);
  EXPECT_TRUE(o->Caps().fua);
}

TEST_F(OverlayTest, PartialWritesMergeWithTheBase) {
  auto o = Open();
  ASSERT_TRUE(o);
  std::string model = base_->bytes();
  // Inside one block, across a block boundary, across many blocks, the partial last block.
  struct W {
    uint64_t off, len;
  } writes[] = {{1000, 100}, {4090, 20}, {10000, 50000}, {model.size() - 700, 700}, {0, 1}};
  uint32_t seed = 10;
  for (const W& w : writes) {
    std::string data = Pattern(w.len, seed++);
    ASSERT_TRUE(o->Pwrite(data.data(), w.len, w.off, false).ok());
    model.replace(w.off, w.len, data);
    EXPECT_EQ(ReadAll(*o), model);
  }
  // Unaligned reads that straddle overlay and base.
  std::string got(9000, '\0');
  ASSERT_TRUE(o->Pread(got.data(), got.size(), 3000).ok());
  EXPECT_EQ(got, model.substr(3000, 9000));
}

TEST_F(OverlayTest, TrimAndZeroShadowTheBase) {
  auto o = Open();
  ASSERT_TRUE(o);
  std::string model = base_->bytes();
  ASSERT_TRUE(o->Zero(10000, 5000, true, false, false).ok());
  model.replace(5000, 10000, std::string(10000, '\0'));
  ASSERT_TRUE(o->Trim(8192, 200704, false).ok());
  model.replace(200704, 8192, std::string(8192, '\0'));
  ASSERT_TRUE(o->Zero(3, 1 << 19, false, true, true).ok());
  model.replace(1 << 19, 3, std::string(3, '\0'));
  EXPECT_EQ(ReadAll(*o), model);
}

TEST_F(OverlayTest, ExtentsMergeOverlayAndBase) {
  auto o = Open();
  ASSERT_TRUE(o);
  // Base: data [0,64K), hole [64K,128K), data after. Overlay: data into the
  // hole at [80K,84K), zeroes over data at [200K,208K).
  std::string data = Pattern(4096, 3);
  ASSERT_TRUE(o->Pwrite(data.data(), 4096, 80 * 1024, false).ok());
  ASSERT_TRUE(o->Zero(8192, 200 * 1024, true, false, false).ok());
  std::vector<Extent> ext;
  ASSERT_TRUE(o->Extents(o->Size(), 0, &ext).ok());
  std::vector<std::pair<uint64_t, uint32_t>> got;
  uint64_t total = 0;
  for (const auto& e : ext) {
    got.emplace_back(e.length, e.flags);
    total += e.length;
  }
  const uint32_t hz = Extent::kHole | Extent::kZero;
  std::vector<std::pair<uint64_t, uint32_t>> want = {{64 * 1024, 0},
                                                     {16 * 1024, hz},
                                                     {4096, 0},
                                                     {44 * 1024, hz},
                                                     {72 * 1024, 0},
                                                     {8192, hz},
                                                     {o->Size() - 208 * 1024, 0}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(total, o->Size());
  // A range that starts inside an extent.
  ext.clear();
  ASSERT_TRUE(o->Extents(1000, 81 * 1024, &ext).ok());
  ASSERT_EQ(ext.size(), 1u);
  EXPECT_EQ(ext[0].length, 1000u);
  EXPECT_EQ(ext[0].flags, 0u);
}

// Eight writers each own 512 bytes of every 4 KiB block and rewrite them
// over and over: without per-block read-modify-write exclusion some of the
// writes are lost (a writer's stale copy of the block overwrites another's).
TEST_F(OverlayTest, ConcurrentPartialWritesToOneBlockLoseNothing) {
  auto o = Open();
  ASSERT_TRUE(o);
  constexpr int kThreads = 8, kRounds = 200;
  constexpr uint64_t kBlocks = 16;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (uint64_t b = 0; b < kBlocks; ++b) {
          std::string data(512, static_cast<char>('A' + t + round % 2));
          ASSERT_TRUE(o->Pwrite(data.data(), 512, b * 4096 + t * 512, false).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::string got(kBlocks * 4096, '\0');
  ASSERT_TRUE(o->Pread(got.data(), got.size(), 0).ok());
  for (uint64_t b = 0; b < kBlocks; ++b)
    for (int t = 0; t < kThreads; ++t)
      EXPECT_EQ(got.substr(b * 4096 + t * 512, 512),
                std::string(512, static_cast<char>('A' + t + (kRounds - 1) % 2)))
          << "block " << b << " writer " << t;
}

TEST_F(OverlayTest, ConcurrentReadersSeeOldOrNewBytesNeverZeroes) {
  auto o = Open();
  ASSERT_TRUE(o);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0};
  std::thread reader([&] {
    std::string got(4096, '\0');
    while (!stop) {
      ASSERT_TRUE(o->Pread(got.data(), 4096, 0).ok());
      for (size_t i = 0; i < 4096; i += 512) {
        char c = got[i];
        if (c != base_->bytes()[i] && c != 'w') bad++;
      }
    }
  });
  std::string w(100, 'w');
  for (int k = 0; k < 2000; ++k)
    ASSERT_TRUE(o->Pwrite(w.data(), 100, (k * 512) % 4096, false).ok());
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0u);
}

TEST_F(OverlayTest, PersistentOverlayKeepsFlushedWritesAcrossARestart) {
  std::string path = dir_ + "/ov.img";
  std::string model = base_->bytes();
  {
    auto o = Open(path);
    ASSERT_TRUE(o);
    EXPECT_FALSE(o->resumed());
    std::string data = Pattern(5000, 7);
    ASSERT_TRUE(o->Pwrite(data.data(), data.size(), 3000, false).ok());
    model.replace(3000, data.size(), data);
    ASSERT_TRUE(o->Zero(4096, 40960, true, false, true).ok());
    model.replace(40960, 4096, std::string(4096, '\0'));
  }
  EXPECT_TRUE(fs::exists(path + ".cloudkeep-overlay"));
  auto o = Open(path);
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->resumed());
  EXPECT_EQ(ReadAll(*o), model);
}

TEST_F(OverlayTest, CrashKeepsFlushedWritesAndDropsOnlyUnflushedOnes) {
  std::string path = dir_ + "/crash.img";
  std::string flushed = Pattern(4096, 21), unflushed = Pattern(4096, 22);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    OverlayOptions opts;
    opts.path = path;
    opts.identity = "memory base";
    auto o = OverlayBackend::Open(base_, opts);
    if (!o.ok()) _exit(2);
    if (!(*o)->Pwrite(flushed.data(), 4096, 8192, false).ok()) _exit(3);
    if (!(*o)->Flush().ok()) _exit(4);
    if (!(*o)->Pwrite(unflushed.data(), 4096, 16384, false).ok()) _exit(5);
    _exit(0);  // as kill -9: no destructor, no flush
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  auto o = Open(path);
  ASSERT_TRUE(o);
  std::string got(4096, '\0');
  ASSERT_TRUE(o->Pread(got.data(), 4096, 8192).ok());
  EXPECT_EQ(got, flushed);
  ASSERT_TRUE(o->Pread(got.data(), 4096, 16384).ok());
  // The map never learnt of the unflushed block: the base shows, not zeroes.
  EXPECT_EQ(got, base_->bytes().substr(16384, 4096));
}

TEST_F(OverlayTest, RefusesFilesThatAreNotItsOverlay) {
  std::string path = dir_ + "/other.img";
  ASSERT_TRUE(WriteFileAtomic(path, "precious").ok());
  OverlayOptions o;
  o.path = path;
  o.identity = "memory base";
  auto r = OverlayBackend::Open(base_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_NE(r.status().message().find("not a cloudkeep overlay"), std::string::npos);
  EXPECT_EQ(*ReadFile(path), "precious");

  std::string mine = dir_ + "/mine.img";
  { ASSERT_TRUE(Open(mine, "snapshot snap-aaaaaaaaaaaaaaaaa")); }
  o.path = mine;
  o.identity = "snapshot snap-bbbbbbbbbbbbbbbbb";
  r = OverlayBackend::Open(base_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_NE(r.status().message().find("snap-aaaaaaaaaaaaaaaaa"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace cloudkeep::nbd
