#include "latency/stats.h"

#include <gtest/gtest.h>

namespace cloudkeep::latency {
namespace {

TEST(StatsTest, KnownSampleOneToTen) {
  // 1..10 µs: numpy.percentile(range(1, 11), [50, 90, 99, 99.9]) = 5.5, 9.1, 9.91, 9.991;
  // numpy.std (population) = 2.8722813232690143.
  std::vector<double> s = {10, 3, 1, 7, 5, 2, 9, 4, 6, 8};
  Summary r = Summarize(s, 12);
  EXPECT_EQ(r.sent, 12u);
  EXPECT_EQ(r.received, 10u);
  EXPECT_EQ(r.lost(), 2u);
  EXPECT_DOUBLE_EQ(r.loss_ratio(), 2.0 / 12.0);
  EXPECT_DOUBLE_EQ(r.min_us, 1);
  EXPECT_DOUBLE_EQ(r.max_us, 10);
  EXPECT_DOUBLE_EQ(r.avg_us, 5.5);
  EXPECT_NEAR(r.stddev_us, 2.8722813232690143, 1e-12);
  EXPECT_NEAR(r.p50_us, 5.5, 1e-12);
  EXPECT_NEAR(r.p90_us, 9.1, 1e-12);
  EXPECT_NEAR(r.p99_us, 9.91, 1e-12);
  EXPECT_NEAR(r.p999_us, 9.991, 1e-12);
}

TEST(StatsTest, OriginalMeasurementShape) {
  // Ten cross-zone pings, the first (the 350 ms outlier) already dropped as warmup.
  std::vector<double> s = {1210, 1190, 1250, 1180, 1300, 1220, 1205, 1195, 1240};
  Summary r = Summarize(s, 10);
  EXPECT_EQ(r.lost(), 1u);
  EXPECT_DOUBLE_EQ(r.min_us, 1180);
  EXPECT_DOUBLE_EQ(r.max_us, 1300);
  EXPECT_NEAR(r.avg_us, 1221.1111111111111, 1e-9);
  EXPECT_NEAR(r.p50_us, 1210, 1e-9);  // odd count: the middle sample
  EXPECT_NEAR(r.p90_us, 1260, 1e-9);  // numpy: 1250 + 0.2 * (1300 - 1250)
}

TEST(StatsTest, SingleSampleAndNone) {
  Summary one = Summarize({42.5}, 1);
  EXPECT_DOUBLE_EQ(one.p50_us, 42.5);
  EXPECT_DOUBLE_EQ(one.p999_us, 42.5);
  EXPECT_DOUBLE_EQ(one.stddev_us, 0);
  Summary none = Summarize({}, 5);
  EXPECT_EQ(none.lost(), 5u);
  EXPECT_DOUBLE_EQ(none.loss_ratio(), 1.0);
  Json j = SummaryToJson(none);
  EXPECT_FALSE(j.contains("p50_us"));
  EXPECT_EQ(j["lost"], 5);
}

TEST(StatsTest, StddevKeepsPrecisionForLargeCloseSamples) {
  Summary r = Summarize({1e9 + 1, 1e9 + 2, 1e9 + 3}, 3);
  EXPECT_NEAR(r.stddev_us, 0.816496580927726, 1e-6);
}

TEST(StatsTest, JsonFieldsEndInUs) {
  Json j = SummaryToJson(Summarize({1, 2, 3}, 3));
  for (const char* k :
       {"min_us", "avg_us", "max_us", "stddev_us", "p50_us", "p90_us", "p99_us", "p99_9_us"})
    EXPECT_TRUE(j.contains(k)) << k;
}

}  // namespace
}  // namespace cloudkeep::latency
