#include "providers/local/manifest.h"

#include <gtest/gtest.h>

namespace cloudkeep::local {
namespace {

Manifest Sample() {
  Manifest m;
  m.chunk_size = 512 * 1024;
  m.snapshot.id = "snap-0123456789abcdef0";
  m.snapshot.volume_id = "/srv/disk.img";
  m.snapshot.created = *ParseRfc3339("2026-11-28T10:00:00Z");
  m.snapshot.size_bytes = 3 * m.chunk_size - 100;
  m.snapshot.tags["app"] = "db";
  m.snapshot.database["binlog_position"] = "1234";
  m.snapshot.consistency = snapshot::Consistency::kFilesystem;
  m.chunks.resize(3);
  m.chunks[0] = Sha256("a", 1);
  m.chunks[2] = Sha256("b", 1);
  return m;
}

TEST(Manifest, RoundTrip) {
  Manifest m = Sample();
  auto d = DecodeManifest(EncodeManifest(m));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->chunks, m.chunks);
  EXPECT_EQ(d->snapshot.id, m.snapshot.id);
  EXPECT_EQ(d->snapshot.tags, m.snapshot.tags);
  EXPECT_EQ(d->snapshot.database, m.snapshot.database);
  EXPECT_EQ(d->snapshot.consistency, snapshot::Consistency::kFilesystem);
  EXPECT_TRUE(IsZeroHash(d->chunks[1]));
}

TEST(Manifest, DetectsDamage) {
  std::string text = EncodeManifest(Sample());
  EXPECT_FALSE(DecodeManifest(text.substr(0, text.size() / 2)).ok());
  std::string wrong_size = text;
  auto pos = wrong_size.find("\"size_bytes\": ");
  wrong_size.replace(pos, 14, "\"size_bytes\": 9");
  EXPECT_FALSE(DecodeManifest(wrong_size).ok());
  std::string wrong_sum = text;
  pos = wrong_sum.find("\"chunk_table_sha256\": \"") + 23;
  wrong_sum[pos] = wrong_sum[pos] == '0' ? '1' : '0';
  EXPECT_FALSE(DecodeManifest(wrong_sum).ok());
  EXPECT_FALSE(DecodeManifest("{}").ok());
  EXPECT_FALSE(DecodeManifest("").ok());
}

TEST(ChunkHash, HexRoundTrip) {
  ChunkHash h = Sha256("abc", 3);
  EXPECT_EQ(HashHex(h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ChunkHash back{};
  ASSERT_TRUE(HashFromHex(HashHex(h), &back));
  EXPECT_EQ(back, h);
  EXPECT_FALSE(HashFromHex("zz", &back));
}

TEST(IsAllZero, FindsTheOneByte) {
  std::string buf(512 * 1024, '\0');
  EXPECT_TRUE(IsAllZero(buf.data(), buf.size()));
  for (size_t pos : {size_t{0}, size_t{15}, size_t{16}, buf.size() - 1}) {
    buf[pos] = 1;
    EXPECT_FALSE(IsAllZero(buf.data(), buf.size())) << pos;
    buf[pos] = 0;
  }
}

}  // namespace
}  // namespace cloudkeep::local
