// Cron expressions and schedules with known answers, in fixed time zones
// (TZ is set per test: the expressions run in the process's local time).
#include "agent/cron.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "agent/schedule.h"

namespace cloudkeep::agent {
namespace {

class Zone {
 public:
  explicit Zone(const char* tz) {
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~Zone() {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
};

TimePoint At(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}
std::string Next(const CronExpr& c, const char* after) {
  return FormatRfc3339(c.Next(At(after)));
}
CronExpr Cron(const char* text) {
  auto c = CronExpr::Parse(text);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

TEST(Cron, Basics) {
  Zone z("UTC");
  EXPECT_EQ(Next(Cron("5 * * * *"), "2026-12-02T10:04:59Z"), "2026-12-02T10:05:00Z");
  EXPECT_EQ(Next(Cron("5 * * * *"), "2026-12-02T10:05:00Z"), "2026-12-02T11:05:00Z");
  EXPECT_EQ(Next(Cron("*/15 * * * *"), "2026-12-02T10:16:00Z"), "2026-12-02T10:30:00Z");
  EXPECT_EQ(Next(Cron("0 9-17/4 * * *"), "2026-12-02T13:00:00Z"), "2026-12-02T17:00:00Z");
  EXPECT_EQ(Next(Cron("0,30 3 * * *"), "2026-12-02T03:00:00Z"), "2026-12-02T03:30:00Z");
  EXPECT_EQ(Next(Cron("5/20 * * * *"), "2026-12-02T10:26:00Z"), "2026-12-02T10:45:00Z");
  // Names, any case; 7 and 0 are both Sunday. 2026-12-02 is a Wednesday.
  EXPECT_EQ(Next(Cron("0 0 * * MON-fri"), "2026-12-04T12:00:00Z"), "2026-12-07T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * * 7"), "2026-12-02T00:00:00Z"), "2026-12-06T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * * 0"), "2026-12-02T00:00:00Z"), "2026-12-06T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 1 jan,Jul *"), "2026-12-02T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(Next(Cron("@hourly"), "2026-12-02T10:00:00Z"), "2026-12-02T11:00:00Z");
  EXPECT_EQ(Next(Cron("@weekly"), "2026-12-02T10:00:00Z"), "2026-12-06T00:00:00Z");
  // Leap day: the next 29 February.
  EXPECT_EQ(Next(Cron("0 0 29 2 *"), "2026-12-02T00:00:00Z"), "2028-02-29T00:00:00Z");
}

TEST(Cron, DayOfMonthOrDayOfWeek) {
  Zone z("UTC");
  // Both restricted: the 13th OR a Friday (Vixie cron). After Wed 2 Dec: Fri 4 Dec.
  EXPECT_EQ(Next(Cron("0 0 13 * 5"), "2026-12-02T00:00:00Z"), "2026-12-04T00:00:00Z");
  // Day-of-week '*': only the 13th.
  EXPECT_EQ(Next(Cron("0 0 13 * *"), "2026-12-02T00:00:00Z"), "2026-12-13T00:00:00Z");
  // A field starting with '*' counts as unrestricted: "*/2" days AND Fridays (4 Dec is even? no).
  // Odd days (1,3,5,…) that are Fridays: Fri 2026-12-11.
  EXPECT_EQ(Next(Cron("0 0 */2 * 5"), "2026-12-02T00:00:00Z"), "2026-12-11T00:00:00Z");
}

TEST(Cron, Refused) {
  for (const char* bad : {"61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                          "* * * *", "* * * * * *", "5-1 * * * *", "*/0 * * * *", "0 0 30 2 *",
                          "0 0 * foo *", "@often", "x * * * *", "1,,2 * * * *"}) {
    auto c = CronExpr::Parse(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), Status::Code::kUsage);
      EXPECT_NE(c.status().message().find(bad), std::string::npos) << c.status().message();
    }
  }
}

TEST(Cron, SpringGapRunsOnceAfterTheGap) {
  // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
  Zone z("Europe/Berlin");
  // 02:30 does not exist that day: it runs at the end of the gap, 03:00 CEST.
  EXPECT_EQ(Next(Cron("30 2 * * *"), "2026-03-28T23:00:00Z"), "2026-03-29T01:00:00Z");
  // …and the next day at 02:30 CEST again.
  EXPECT_EQ(Next(Cron("30 2 * * *"), "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z");
  // Every quarter hour: 01:45 CET, then the gap's slots collapse into one run at 03:00 CEST,
  // then 03:15 CEST.
  CronExpr q = Cron("*/15 * * * *");
  EXPECT_EQ(Next(q, "2026-03-29T00:30:00Z"), "2026-03-29T00:45:00Z");
  EXPECT_EQ(Next(q, "2026-03-29T00:45:00Z"), "2026-03-29T01:00:00Z");
  EXPECT_EQ(Next(q, "2026-03-29T01:00:00Z"), "2026-03-29T01:15:00Z");
}

TEST(Cron, AutumnRepeatRunsOnceUnlessHourly) {
  // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:xx happens twice.
  Zone z("Europe/Berlin");
  CronExpr fixed = Cron("30 2 * * *");
  EXPECT_EQ(Next(fixed, "2026-10-24T23:00:00Z"), "2026-10-25T00:30:00Z");  // 02:30 CEST
  // Not again at 02:30 CET (01:30 UTC): the next is the following day.
  EXPECT_EQ(Next(fixed, "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
  // An hourly job runs in both 02:xx hours.
  CronExpr hourly = Cron("30 * * * *");
  EXPECT_EQ(Next(hourly, "2026-10-25T00:30:00Z"), "2026-10-25T01:30:00Z");
  EXPECT_EQ(Next(hourly, "2026-10-25T01:30:00Z"), "2026-10-25T02:30:00Z");
}

TEST(Cron, OtherZones) {
  // America/New_York, 2026-03-08: 02:00 EST → 03:00 EDT (07:00 UTC).
  Zone z("America/New_York");
  EXPECT_EQ(Next(Cron("0 2 * * *"), "2026-03-08T00:00:00Z"), "2026-03-08T07:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * * *"), "2026-03-08T07:00:00Z"), "2026-03-09T04:00:00Z");
}

TEST(Schedule, EveryIsAlignedAndJitterIsStable) {
  Schedule s = Schedule::Every(std::chrono::minutes(15));
  EXPECT_EQ(FormatRfc3339(s.Next(At("2026-12-02T10:07:00Z"))), "2026-12-02T10:15:00Z");
  EXPECT_EQ(FormatRfc3339(s.Next(At("2026-12-02T10:15:00Z"))), "2026-12-02T10:30:00Z");
  Schedule two = Schedule::Every(std::chrono::seconds(2));
  EXPECT_EQ(FormatRfc3339(two.Next(At("2026-12-02T10:00:01Z"))), "2026-12-02T10:00:02Z");
  Schedule j = Schedule::Every(std::chrono::hours(1));
  j.WithJitter(std::chrono::minutes(10));
  TimePoint slot = At("2026-12-02T10:00:00Z");
  auto a = j.JitterFor("web", slot), b = j.JitterFor("web", slot);
  EXPECT_EQ(a, b);  // a restarted agent computes the same delay
  EXPECT_GE(a.count(), 0);
  EXPECT_LT(a, std::chrono::minutes(10));
  // Different jobs spread out.
  bool differs = false;
  for (const char* n : {"a", "b", "c", "d", "e"})
    if (j.JitterFor(n, slot) != a) differs = true;
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace cloudkeep::agent
