#include "core/duration.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDuration, UnitsOfTheContract) {
  EXPECT_EQ(*ParseDuration("250us", BareNumber::kReject, "x"), microseconds(250));
  EXPECT_EQ(*ParseDuration("5ms", BareNumber::kReject, "x"), milliseconds(5));
  EXPECT_EQ(*ParseDuration("90s", BareNumber::kReject, "x"), seconds(90));
  EXPECT_EQ(*ParseDuration("15m", BareNumber::kReject, "x"), minutes(15));
  EXPECT_EQ(*ParseDuration("36h", BareNumber::kReject, "x"), hours(36));
  EXPECT_EQ(*ParseDuration("7d", BareNumber::kReject, "x"), hours(7 * 24));
  EXPECT_EQ(*ParseDuration("2w", BareNumber::kReject, "x"), hours(14 * 24));
}

TEST(ParseDuration, BareNumberIsDaysForAges) {
  EXPECT_EQ(*ParseDuration("7", BareNumber::kDays, "-o"), hours(7 * 24));
  EXPECT_EQ(*ParseDuration("10", BareNumber::kSeconds, "--t"), seconds(10));
  auto r = ParseDuration("7", BareNumber::kReject, "--interval");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
}

TEST(ParseDuration, CombinedAndFractional) {
  EXPECT_EQ(*ParseDuration("1h30m", BareNumber::kReject, "x"), minutes(90));
  EXPECT_EQ(*ParseDuration("1.5s", BareNumber::kReject, "x"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("0.25ms", BareNumber::kReject, "x"), microseconds(250));
}

TEST(ParseDuration, BadValuesAreNamed) {
  for (const char* bad :
       {"", "x", "7x", "-5s", "5 s", "1h30", ".", "1..2s", "ms", "99999999999999999w"}) {
    auto r = ParseDuration(bad, BareNumber::kDays, "--older-than");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kUsage) << bad;
    EXPECT_NE(r.status().message().find("--older-than"), std::string::npos);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos);
  }
}

TEST(FormatDuration, PicksReadableUnits) {
  EXPECT_EQ(FormatDuration(microseconds(250)), "250us");
  EXPECT_EQ(FormatDuration(milliseconds(5)), "5ms");
  EXPECT_EQ(FormatDuration(seconds(90)), "90s");
  EXPECT_EQ(FormatDuration(hours(7 * 24)), "7d");
}

}  // namespace
}  // namespace cloudkeep
