// store_layout: every builder round-trips through its parser, and every
// parser refuses the names that are not its own (foreign files, partial
// writes, chunks filed under the wrong fan-out directory).
#include "providers/local/store_layout.h"

#include <gtest/gtest.h>

namespace cloudkeep::local::layout {
namespace {

ChunkHash HashOf(const std::string& s) {
  return Sha256(s.data(), s.size());
}

TEST(StoreLayout, ChunkKeyRoundTrips) {
  for (const char* data : {"a", "b", "chunk", ""}) {
    ChunkHash h = HashOf(data);
    std::string key = ChunkKey(h);
    EXPECT_EQ(key, "chunks/" + HashHex(h).substr(0, 2) + "/" + HashHex(h));
    auto back = ParseChunkKey(key);
    ASSERT_TRUE(back.has_value()) << key;
    EXPECT_EQ(*back, h);
    EXPECT_EQ(ChunkFanoutDir(h) + "/" + HashHex(h), key);
  }
}

TEST(StoreLayout, ChunkKeyRefusesForeignNames) {
  std::string hex = HashHex(HashOf("x"));
  std::string other = hex[0] == 'f' ? "00" : "ff";
  EXPECT_FALSE(ParseChunkKey("chunks/" + other + "/" + hex));  // wrong fan-out directory
  EXPECT_FALSE(ParseChunkKey("chunks/" + hex.substr(0, 2) + "/" + hex.substr(1)));  // 63 digits
  std::string upper = hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != hex) {
    EXPECT_FALSE(ParseChunkKey("chunks/" + upper.substr(0, 2) + "/" + upper));
  }
  EXPECT_FALSE(ParseChunkKey("chunks/" + hex.substr(0, 2) + "/" + hex + ".tmp-12"));
  EXPECT_FALSE(ParseChunkKey("tmp/" + hex.substr(0, 2) + "/" + hex));
  EXPECT_FALSE(ParseChunkKey("chunks/" + hex));
  EXPECT_FALSE(ParseChunkKey("chunks/"));
  EXPECT_FALSE(ParseChunkKey(""));
}

TEST(StoreLayout, ManifestKeyRoundTrips) {
  for (const char* id : {"snap-0123456789abcdef0", "snap-fffffffffffffffff"}) {
    EXPECT_EQ(ManifestKey(id), std::string("snapshots/") + id + ".json");
    EXPECT_EQ(ManifestName(id), std::string(id) + ".json");
    auto back = ParseManifestKey(ManifestKey(id));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, id);
  }
}

TEST(StoreLayout, ManifestKeyRefusesPartialWritesAndForeignFiles) {
  EXPECT_FALSE(ParseManifestKey("snapshots/snap-0123456789abcdef0.json.tmp-4242"));
  EXPECT_TRUE(IsPartialWrite("snapshots/snap-0123456789abcdef0.json.tmp-4242"));
  EXPECT_FALSE(ParseManifestKey("snapshots/snap-0123456789abcdef0.txt"));
  EXPECT_FALSE(ParseManifestKey("snapshots/.json"));
  EXPECT_FALSE(ParseManifestKey("snapshots/.hidden.json"));
  EXPECT_FALSE(ParseManifestKey("snapshots/sub/snap-0123456789abcdef0.json"));
  EXPECT_FALSE(ParseManifestKey("snap-0123456789abcdef0.json"));
  EXPECT_FALSE(ParseManifestKey("tmp/snap-0123456789abcdef0.json"));
  EXPECT_FALSE(ParseManifestKey("snapshots/"));
}

TEST(StoreLayout, StagedChunksAndRunMarkersLiveUnderTmp) {
  ChunkHash h = HashOf("staged");
  std::string key = StagedChunkKey(h);
  EXPECT_EQ(key, "tmp/chunk-" + HashHex(h));
  ASSERT_TRUE(ParseStagedChunkKey(key).has_value());
  EXPECT_EQ(*ParseStagedChunkKey(key), h);
  EXPECT_FALSE(ParseStagedChunkKey("tmp/chunk-" + HashHex(h).substr(2)));
  EXPECT_FALSE(ParseStagedChunkKey("chunks/chunk-" + HashHex(h)));
  EXPECT_FALSE(ParseStagedChunkKey(ChunkKey(h)));
  EXPECT_FALSE(ParseChunkKey(key));

  EXPECT_EQ(RunMarkerKey("create", 1234), "tmp/run-create-1234");
  EXPECT_TRUE(IsRunMarkerKey(RunMarkerKey("delete", 7)));
  EXPECT_TRUE(IsRunMarkerKey(RunMarkerKey("create", 7) + ".tmp-7"));  // died while writing it
  EXPECT_FALSE(IsRunMarkerKey("tmp/run-"));
  EXPECT_FALSE(IsRunMarkerKey(key));
  EXPECT_FALSE(IsRunMarkerKey("snapshots/run-create-1"));
}

TEST(StoreLayout, PartialWritesNeedAPid) {
  EXPECT_TRUE(IsPartialWrite("config.tmp-1"));
  EXPECT_FALSE(IsPartialWrite("config.tmp-"));
  EXPECT_FALSE(IsPartialWrite("config.tmp-1x"));
  EXPECT_FALSE(IsPartialWrite(".tmp-1"));
  EXPECT_FALSE(IsPartialWrite("snapshots/a.json"));
}

TEST(StoreLayout, StoreEntriesAreTheStoresOwnNamesOnly) {
  for (const char* n :
       {"config", "lock", "chunks", "snapshots", "tmp", "config.tmp-99", "lost+found"})
    EXPECT_TRUE(IsStoreEntry(n)) << n;
  for (const char* n : {"config.bak", "configuration", "notes.txt", "chunks2", ".git", ""})
    EXPECT_FALSE(IsStoreEntry(n)) << n;
  for (const auto& d : Directories()) EXPECT_TRUE(IsStoreEntry(d)) << d;
}

TEST(StoreLayout, PathsAreKeysUnderTheRoot) {
  ChunkHash h = HashOf("p");
  EXPECT_EQ(KeyPath("/srv/store", ChunkKey(h)), "/srv/store/" + ChunkKey(h));
  EXPECT_EQ(KeyPath("/srv/store", ConfigKey()), "/srv/store/config");
  EXPECT_EQ(KeyPath("/srv/store", LockKey()), "/srv/store/lock");
  for (const auto& d : Directories()) EXPECT_EQ(d.find('/'), std::string::npos);
}

TEST(StoreLayout, NamesOutsideTheStoreSitBesideTheirFile) {
  EXPECT_EQ(ClonePath("/var/vm/disk.img", "snap-0123456789abcdef0"),
            "/var/vm/.disk.img.cloudkeep-snap-0123456789abcdef0.clone");
  EXPECT_EQ(RestoreTempPath("/var/vm/disk.img", 77), "/var/vm/.disk.img.cloudkeep-restore-77");
}

}  // namespace
}  // namespace cloudkeep::local::layout
