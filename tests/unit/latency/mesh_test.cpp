#include "latency/mesh.h"

#include <gtest/gtest.h>

namespace cloudkeep::latency {
namespace {

TEST(MeshTest, CompleteMeshHasNoGaps) {
  MeshResult m;
  m.peers = {{"a", "x:1", {}, "z", 0}, {"b", "x:2", {}, "z", 0}};
  m.agent_errors = {"", ""};
  for (auto [f, t] : {std::pair<size_t, size_t>{0, 1}, {1, 0}}) {
    PairResult p;
    p.from = f;
    p.to = t;
    p.samples_us = {10};
    p.sent = 2;  // one lost: still measured
    p.rtt = Summarize(p.samples_us, p.sent);
    m.pairs.push_back(p);
  }
  EXPECT_FALSE(FindGaps(m).any());
  EXPECT_EQ(DescribeGaps(m), "");
  EXPECT_EQ(MeshToJson(m)["complete"], true);
}

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
  // Pair 1 -> 2 got no sample back: the mesh is incomplete.
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["pairs_unmeasured"], 1);
  EXPECT_EQ(j["agents_down"], 0);
  EXPECT_EQ(DescribeGaps(m), "1 of 6 pairs got no sample back");
  m.agent_errors = {"", "", "connection refused"};
  m.throughput = {{0, 1, 1e9, ""}, {1, 0, 0, "agent unavailable"}};
  EXPECT_EQ(DescribeGaps(m),
            "1 of 3 agents did not answer; 1 of 6 pairs got no sample back; 1 of 2 throughput "
            "pairs failed");
  EXPECT_EQ(MeshToJson(m)["throughput_failed"], 1);
  // An agent's error is one escaped line of text.
  m.agent_errors[2] = "refused: \x1b]0;t\x07\nfake line";
  EXPECT_NE(MeshToText(m).find("refused: \\x1b]0;t\\x07\\nfake line\n"), std::string::npos);
  std::string svg = MeshHeatmapSvg(m);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("a1 (az1)"), std::string::npos);
}

}  // namespace
}  // namespace cloudkeep::latency
