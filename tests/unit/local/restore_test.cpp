// LocalProvider::Restore end to end on real files: the image comes back byte
// for byte (data, all-zero chunks, holes, a short last chunk) whatever the
// number of workers, and a damaged chunk fails the restore without leaving
// a target or a temporary file behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "providers/local/local_provider.h"

namespace cloudkeep::local {
namespace {

namespace fs = std::filesystem;

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-restore-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    image_ = dir_ + "/vol.img";
    // 3 chunks of 64 KiB + 1000 bytes: text, zeros (written, not a hole),
    // random, a hole, and a short tail.
    const size_t cs = 64 * 1024;
    content_.assign(4 * cs + 1000, '\0');
    for (size_t i = 0; i < cs; ++i) content_[i] = "snapshot "[i % 9];
    uint32_t x = 7;
    for (size_t i = 2 * cs; i < 3 * cs; ++i)
      content_[i] = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
    for (size_t i = 4 * cs; i < content_.size(); ++i) content_[i] = 't';
    std::ofstream(image_, std::ios::binary).write(content_.data(), 3 * cs);
    // Leave [3 cs, 4 cs) a hole and write the tail after it.
    std::ofstream(image_, std::ios::binary | std::ios::in)
        .seekp(static_cast<std::streamoff>(4 * cs))
        .write(content_.data() + 4 * cs, 1000);
    ::setenv("CLOUDKEEP_CHUNK_SIZE", "65536", 1);
  }
  void TearDown() override {
    ::unsetenv("CLOUDKEEP_CHUNK_SIZE");
    fs::remove_all(dir_);
  }

  std::string Snapshot(LocalProvider& p) {
    snapshot::CreateRequest req;
    snapshot::Volume v;
    v.id = image_;
    v.device = image_;
    v.kind = "file";
    v.size_bytes = content_.size();
    req.volumes.push_back(v);
    EXPECT_TRUE(p.Prepare(req).ok());
    auto cap = p.Capture(req);
    EXPECT_TRUE(cap.ok()) << cap.status().message();
    auto snaps = p.Finalize(std::move(cap).value(), req.metadata);
    EXPECT_TRUE(snaps.ok()) << snaps.status().message();
    return snaps->at(0).id;
  }

  LocalProviderOptions Options(int threads) {
    LocalProviderOptions o;
    o.store_root = dir_ + "/store";
    o.threads = threads;
    o.no_reflink = true;
    return o;
  }

  std::string dir_, image_, content_;
};

TEST_F(RestoreTest, RestoresEveryByteWithAnyNumberOfWorkers) {
  std::string id;
  {
    LocalProvider p(Options(2));
    id = Snapshot(p);
  }
  for (int threads : {1, 2, 5}) {
    LocalProvider p(Options(threads));
    std::string target = dir_ + "/out-" + std::to_string(threads) + ".img";
    Status s = p.Restore(id, target, {});
    ASSERT_TRUE(s.ok()) << s.message();
    auto back = ReadFile(target);
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == content_) << threads << " threads";
    EXPECT_FALSE(fs::exists(dir_ + "/.out-" + std::to_string(threads) + ".img.cloudkeep-restore-" +
                            std::to_string(::getpid())));
  }
}

TEST_F(RestoreTest, ADamagedChunkFailsTheRestoreAndLeavesNothing) {
  LocalProvider p(Options(2));
  std::string id = Snapshot(p);
  // Damage the random chunk (the third): flip a byte of its stored payload.
  std::string rand_chunk = content_.substr(2 * 65536, 65536);
  ChunkHash h = Sha256(rand_chunk.data(), rand_chunk.size());
  std::string path = dir_ + "/store/chunks/" + HashHex(h).substr(0, 2) + "/" + HashHex(h);
  ASSERT_TRUE(fs::exists(path));
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    f.put('\x5a');
  }
  std::string target = dir_ + "/out.img";
  Status s = p.Restore(id, target, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("hash mismatch"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset 131072"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(target));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".cloudkeep-restore-"), std::string::npos)
        << e.path();
}

}  // namespace
}  // namespace cloudkeep::local
