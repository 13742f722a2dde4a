// Sealed objects: round trips, and every way a stored object can come back
// wrong (a flipped byte anywhere, truncation, another key, another name).
#include "seal/seal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cloudkeep::seal {
namespace {

Keys TestKeys(uint8_t fill) {
  SecretKey master;
  master.bytes.fill(fill);
  return DeriveKeys(master);
}

constexpr std::string_view kName =
    "chunks/ab/ab0123456789abcdef0123456789abcdef0123456789abcdef01234567";

void ExpectOneLine(const Status& s) {
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
}

TEST(Seal, RoundTripsAnySize) {
  Keys keys = TestKeys(1);
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4096}, size_t{524288}}) {
    std::string plain(size, '\0');
    for (size_t i = 0; i < size; ++i) plain[i] = static_cast<char>(i * 31 + size);
    std::string sealed = Seal(keys, plain, kName);
    EXPECT_EQ(sealed.size(), plain.size() + kSealOverhead);
    EXPECT_TRUE(LooksSealed(sealed));
    if (size >= 16) {
      EXPECT_EQ(sealed.find(plain), std::string::npos) << "plaintext visible";
    }
    auto opened = Open(keys, sealed, kName);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ(*opened, plain);
  }
}

TEST(Seal, TheHeaderIsTheDocumentedLayout) {
  std::string sealed = Seal(TestKeys(1), "hello", "snapshots/x.json");
  EXPECT_EQ(sealed.substr(0, 4), "CKSL");
  EXPECT_EQ(sealed[4], '\x01');
  EXPECT_EQ(sealed.size(), 4 + 1 + 24 + 5 + 16u);
}

TEST(Seal, EachSealHasAFreshNonce) {
  Keys keys = TestKeys(1);
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) nonces.insert(Seal(keys, "same bytes", kName).substr(5, 24));
  EXPECT_EQ(nonces.size(), 100u);
}

TEST(Seal, EveryAlteredByteIsRefused) {
  Keys keys = TestKeys(1);
  const std::string sealed = Seal(keys, "the quick brown fox jumps over the lazy dog", kName);
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      auto opened = Open(keys, bad, kName);
      ASSERT_FALSE(opened.ok()) << "byte " << i << " ^ " << int{flip} << " accepted";
      EXPECT_EQ(opened.status().code(), Status::Code::kFailure);
      EXPECT_NE(opened.status().message().find(std::string(kName)), std::string::npos);
      ExpectOneLine(opened.status());
    }
  }
}

TEST(Seal, TruncationAndExtensionAreRefused) {
  Keys keys = TestKeys(1);
  const std::string sealed = Seal(keys, "some manifest bytes", kName);
  for (size_t len = 0; len < sealed.size(); ++len) {
    auto opened = Open(keys, sealed.substr(0, len), kName);
    ASSERT_FALSE(opened.ok()) << "prefix of " << len << " bytes accepted";
    ExpectOneLine(opened.status());
    if (len < kSealOverhead) {
      EXPECT_NE(opened.status().message().find("truncated (" + std::to_string(len) + " bytes"),
                std::string::npos)
          << opened.status().message();
    }
  }
  EXPECT_FALSE(Open(keys, sealed + "x", kName).ok());
  EXPECT_FALSE(Open(keys, sealed + std::string(16, '\0'), kName).ok());
}

TEST(Seal, AnotherNameIsRefused) {
  Keys keys = TestKeys(1);
  const std::string sealed = Seal(keys, "chunk bytes", "chunks/ab/ab01");
  for (std::string_view other : {"chunks/ab/ab02", "chunks/ab/ab0", "chunks/ab/ab01 ", "",
                                 "snapshots/ab01.json", "CHUNKS/ab/ab01"}) {
    auto opened = Open(keys, sealed, other);
    ASSERT_FALSE(opened.ok()) << other;
    EXPECT_NE(opened.status().message().find("authentication failed"), std::string::npos);
  }
  EXPECT_TRUE(Open(keys, sealed, "chunks/ab/ab01").ok());
}

TEST(Seal, AnotherKeyIsRefused) {
  const std::string sealed = Seal(TestKeys(1), "chunk bytes", kName);
  auto opened = Open(TestKeys(2), sealed, kName);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("authentication failed"), std::string::npos);
}

TEST(Seal, PlainObjectsAreNotSealedObjects) {
  Keys keys = TestKeys(1);
  // A plain store's chunk file and manifest, as docs/store-format.md lays them out.
  std::string chunk("CKC1\x01\0\0\0", 8);
  chunk.append(48, 'z');
  std::string manifest = R"({"format": "cloudkeep-manifest-1", "chunks": 0, "padding": "xxxxx"})";
  for (const std::string& plain : {chunk, manifest}) {
    EXPECT_FALSE(LooksSealed(plain));
    auto opened = Open(keys, plain, kName);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.status().message().find("not a sealed object (bad magic)"), std::string::npos)
        << opened.status().message();
  }
  std::string future = Seal(keys, "x", kName);
  future[4] = 2;
  auto opened = Open(keys, future, kName);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("unsupported version 2"), std::string::npos);
}

TEST(Seal, ChunkIdsDependOnTheKey) {
  Keys a = TestKeys(1), b = TestKeys(2);
  EXPECT_EQ(ChunkId(a, "chunk"), ChunkId(a, "chunk"));
  EXPECT_NE(ChunkId(a, "chunk"), ChunkId(b, "chunk"));
  EXPECT_NE(ChunkId(a, "chunk"), ChunkId(a, "chunk."));
  // Not the data key either: the two subkeys differ.
  EXPECT_FALSE(a.data == a.chunk_id);
  EXPECT_FALSE(a.master == a.data);
}

// The header's contract: one Keys, many threads, no locking by the caller.
TEST(Seal, OneKeysFromManyThreads) {
  const Keys keys = TestKeys(3);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string name = "chunks/" + std::to_string(t) + "/" + std::to_string(i);
        const std::string plain(100 + i, static_cast<char>('a' + t));
        auto opened = Open(keys, Seal(keys, plain, name), name);
        if (!opened.ok() || *opened != plain || ChunkId(keys, plain) != ChunkId(keys, plain))
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace cloudkeep::seal
