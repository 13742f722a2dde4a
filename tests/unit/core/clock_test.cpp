#include "core/clock.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

TEST(Rfc3339, RoundTripsUtc) {
  auto t = ParseRfc3339("2026-11-28T17:49:24Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatRfc3339(*t), "2026-11-28T17:49:24Z");
}

TEST(Rfc3339, OffsetsAndFractions) {
  auto a = ParseRfc3339("2026-11-28T18:49:24+01:00");
  auto b = ParseRfc3339("2026-11-28T17:49:24.500Z");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(FormatRfc3339(*a), "2026-11-28T17:49:24Z");
  EXPECT_EQ(FormatRfc3339(*b, true), "2026-11-28T17:49:24.500Z");
}

TEST(Rfc3339, RejectsMissingZone) {
  EXPECT_FALSE(ParseRfc3339("2026-11-28T17:49:24").ok());
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
  EXPECT_FALSE(ParseRfc3339("2026-11-28T17:49:24Zjunk").ok());
}

}  // namespace
}  // namespace cloudkeep
