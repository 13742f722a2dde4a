#include "snapshot/model.h"

#include <gtest/gtest.h>

namespace cloudkeep::snapshot {
namespace {

TEST(SnapshotId, EbsShapes) {
  EXPECT_TRUE(IsSnapshotId("snap-0123456789abcdef0"));
  EXPECT_TRUE(IsSnapshotId("snap-0123abcd"));
  EXPECT_FALSE(IsSnapshotId("snap-0123456789ABCDEF0"));
  EXPECT_FALSE(IsSnapshotId("snap-0123456789abcdef"));
  EXPECT_FALSE(IsSnapshotId("vol-0123456789abcdef0"));
  EXPECT_FALSE(IsSnapshotId("snap-0123456789abcdefg"));
}

TEST(Tag, ParsesKeyValue) {
  auto t = ParseTag("app=db=primary");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->key, "app");
  EXPECT_EQ(t->value, "db=primary");
  EXPECT_TRUE(ParseTag("empty=").ok());
  EXPECT_EQ(ParseTag("novalue").status().code(), Status::Code::kUsage);
  EXPECT_EQ(ParseTag("=x").status().code(), Status::Code::kUsage);
}

TEST(SnapshotJson, UnitsInFieldNamesAndRfc3339Times) {
  Snapshot s;
  s.id = "snap-0123456789abcdef0";
  s.volume_id = "/srv/a.img";
  s.created = *ParseRfc3339("2026-01-02T03:04:05Z");
  s.size_bytes = 42;
  s.consistency = Consistency::kApplication;
  s.database["binlog_file"] = "mysql-bin.000003";
  Json j = SnapshotToJson(s);
  EXPECT_EQ(j["created"], "2026-01-02T03:04:05.000Z");
  EXPECT_EQ(j["size_bytes"], 42);
  EXPECT_EQ(j["consistency"], "application");
  EXPECT_EQ(j["database"]["binlog_file"], "mysql-bin.000003");
}

}  // namespace
}  // namespace cloudkeep::snapshot
