#include "latency/mesh.h"

#include <gtest/gtest.h>

namespace cloudkeep::latency {
namespace {

TEST(MeshTest, ZoneTablesPoolSamples) {
  MeshResult m;
  m.peers = {{"a1", "x:1", {}, "az1", 0}, {"a2", "x:2", {}, "az1", 0}, {"b1", "x:3", {}, "az2", 0}};
  auto pair = [](size_t f, size_t t, std::vector<double> s, uint64_t sent) {
    PairResult p;
    p.from = f;
    p.to = t;
    p.samples_us = s;
    p.sent = sent;
    p.rtt = Summarize(s, sent);
    return p;
  };
  m.pairs = {pair(0, 1, {50, 60}, 2),     pair(1, 0, {70}, 2), pair(0, 2, {1000, 1100}, 2),
             pair(2, 0, {1200, 1300}, 2), pair(1, 2, {}, 2),   pair(2, 1, {900}, 2)};
  ComputeZoneTables(&m);
  ASSERT_EQ(m.single_zone.size(), 1u);
  EXPECT_EQ(m.single_zone[0].zone_a, "az1");
  EXPECT_EQ(m.single_zone[0].pairs, 2u);
  EXPECT_EQ(m.single_zone[0].rtt.received, 3u);
  EXPECT_EQ(m.single_zone[0].rtt.lost(), 1u);
  EXPECT_DOUBLE_EQ(m.single_zone[0].rtt.avg_us, 60);
  ASSERT_EQ(m.cross_zone.size(), 1u);
  EXPECT_EQ(m.cross_zone[0].zone_a, "az1");
  EXPECT_EQ(m.cross_zone[0].zone_b, "az2");
  EXPECT_EQ(m.cross_zone[0].pairs, 4u);
  EXPECT_EQ(m.cross_zone[0].rtt.sent, 8u);
  EXPECT_EQ(m.cross_zone[0].rtt.received, 5u);
  EXPECT_DOUBLE_EQ(m.cross_zone[0].rtt.min_us, 900);

  Json j = MeshToJson(m);
  EXPECT_EQ(j["single_zone"][0]["zone"], "az1");
  EXPECT_EQ(j["cross_zone"][0]["zone_b"], "az2");
  EXPECT_EQ(j["pairs"].size(), 6u);
  std::string text = MeshToText(m);
  EXPECT_NE(text.find("Within one zone"), std::string::npos);
  EXPECT_NE(text.find("Across zones"), std::string::npos);
  EXPECT_NE(text.find("lost"), std::string::npos);
  std::string svg = MeshHeatmapSvg(m);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("a1 (az1)"), std::string::npos);
}

}  // namespace
}  // namespace cloudkeep::latency
