#include "core/deadline.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using T = Deadline::Clock::time_point;

const T kStart = T(seconds(1000));

TEST(Deadline, NeverLeavesEveryWaitItsOwnTimeout) {
  Deadline d = Deadline::Never();
  EXPECT_TRUE(d.never());
  EXPECT_FALSE(d.expired(kStart + seconds(1'000'000)));
  EXPECT_EQ(d.left(kStart), Micros::max());
  EXPECT_EQ(d.ClampMillis(10'000, kStart), 10'000);
  EXPECT_EQ(d.Until(milliseconds(250), kStart), kStart + milliseconds(250));
  EXPECT_EQ(d.budget(), Micros(0));
}

TEST(Deadline, ClampsEachWaitToWhatIsLeft) {
  Deadline d = Deadline::After(seconds(3), kStart);
  EXPECT_FALSE(d.never());
  EXPECT_EQ(d.budget(), seconds(3));
  // Early on a wait keeps its own timeout.
  EXPECT_EQ(d.ClampMillis(1000, kStart), 1000);
  EXPECT_EQ(d.Until(milliseconds(1000), kStart), kStart + seconds(1));
  // Near the end it gets only what is left.
  EXPECT_EQ(d.ClampMillis(1000, kStart + milliseconds(2700)), 300);
  EXPECT_EQ(d.Until(milliseconds(1000), kStart + milliseconds(2700)), kStart + seconds(3));
  EXPECT_EQ(d.left(kStart + milliseconds(2700)), milliseconds(300));
  EXPECT_FALSE(d.expired(kStart + milliseconds(2999)));
}

TEST(Deadline, RoundsTheLastWaitUpSoItEndsPastTheDeadline) {
  Deadline d = Deadline::After(seconds(1), kStart);
  // 0.4 ms left: a 0 ms wait would return before the deadline and the
  // caller would find time left and wait again.
  EXPECT_EQ(d.ClampMillis(1000, kStart + microseconds(999'600)), 1);
}

TEST(Deadline, PassedMeansNoWaitAtAll) {
  Deadline d = Deadline::After(seconds(3), kStart);
  EXPECT_TRUE(d.expired(kStart + seconds(3)));
  EXPECT_TRUE(d.expired(kStart + seconds(4)));
  EXPECT_EQ(d.left(kStart + seconds(4)), Micros(0));
  EXPECT_EQ(d.ClampMillis(1000, kStart + seconds(4)), 0);
  EXPECT_EQ(d.Until(milliseconds(1000), kStart + seconds(4)), kStart + seconds(3));
  // A negative timeout is no wait, not a wait past the deadline.
  EXPECT_EQ(d.ClampMillis(-5, kStart), 0);
}

TEST(Deadline, ZeroOrNegativeBudgetHasPassedAlready) {
  EXPECT_TRUE(Deadline::After(Micros(0), kStart).expired(kStart));
  EXPECT_TRUE(Deadline::After(seconds(-1), kStart).expired(kStart));
  // On the real clock too.
  EXPECT_TRUE(Deadline::After(Micros(0)).expired());
  EXPECT_FALSE(Deadline::After(std::chrono::hours(1)).expired());
}

TEST(Deadline, AHugeBudgetSaturatesInsteadOfWrappingIntoThePast) {
  Deadline d = Deadline::After(Micros(60'000'000'000'000'000), kStart);  // ~1900 years
  EXPECT_FALSE(d.expired(kStart + std::chrono::hours(24 * 365)));
  EXPECT_EQ(d.ClampMillis(10'000, kStart), 10'000);
}

TEST(Deadline, CopiesShareTheEndNotTheStart) {
  Deadline d = Deadline::After(seconds(3), kStart);
  Deadline copy = d;  // handed down to a step later: the same instant
  EXPECT_EQ(copy.left(kStart + seconds(1)), seconds(2));
  EXPECT_EQ(copy.budget(), seconds(3));
}

}  // namespace
}  // namespace cloudkeep
