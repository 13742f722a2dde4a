// RetentionPolicy against restic's documented `forget` behaviour.
#include "snapshot/retention.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <set>

namespace cloudkeep::snapshot {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override { SetTz("UTC"); }
  void TearDown() override { SetTz("UTC"); }
  static void SetTz(const char* tz) {
    setenv("TZ", tz, 1);
    tzset();
  }
  static TimePoint T(const char* rfc3339) { return *ParseRfc3339(rfc3339); }
  static Snapshot Snap(TimePoint t, std::string id = "") {
    static int n = 0;
    Snapshot s;
    s.created = t;
    s.id = id.empty() ? "snap-" + std::to_string(100000000000000000LL + n++) : id;
    s.volume_id = "vol";
    return s;
  }
  static std::set<std::string> Kept(const std::vector<RetentionDecision>& ds) {
    std::set<std::string> out;
    for (const auto& d : ds)
      if (d.keep) out.insert(FormatRfc3339(d.snapshot.created));
    return out;
  }
  static size_t KeptCount(const std::vector<RetentionDecision>& ds) {
    size_t n = 0;
    for (const auto& d : ds) n += d.keep;
    return n;
  }
};

TEST_F(RetentionTest, EmptyPolicyKeepsEverything) {
  std::vector<Snapshot> s = {Snap(T("2026-01-01T00:00:00Z")), Snap(T("2026-01-02T00:00:00Z"))};
  auto d = ApplyRetention(s, {}, T("2026-02-01T00:00:00Z"));
  EXPECT_EQ(KeptCount(d), 2u);
}

TEST_F(RetentionTest, DecisionsComeNewestFirst) {
  std::vector<Snapshot> s = {Snap(T("2026-01-01T00:00:00Z")), Snap(T("2026-01-03T00:00:00Z")),
                             Snap(T("2026-01-02T00:00:00Z"))};
  RetentionPolicy p;
  p.keep_last = 1;
  auto d = ApplyRetention(s, p, T("2026-02-01T00:00:00Z"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(FormatRfc3339(d[0].snapshot.created), "2026-01-03T00:00:00Z");
  EXPECT_TRUE(d[0].keep);
  EXPECT_EQ(d[0].reasons, std::vector<std::string>{"last snapshot"});
  EXPECT_FALSE(d[1].keep);
  EXPECT_FALSE(d[2].keep);
}

// restic docs: daily backups for 100 years with --keep-daily 7 --keep-weekly 5
// --keep-monthly 12 --keep-yearly 75 keep 7 dailies, 4 more weeklies (the
// dailies include one), 11 or 12 monthlies and 75 yearlies. Here: 3 years.
TEST_F(RetentionTest, ResticDocumentedDailyWeeklyMonthly) {
  std::vector<Snapshot> s;
  TimePoint start = T("2024-01-01T03:00:00Z");
  for (int day = 0; day < 3 * 365; ++day) s.push_back(Snap(start + hours(24 * day)));
  RetentionPolicy p;
  p.keep_daily = 7;
  p.keep_weekly = 5;
  p.keep_monthly = 12;
  auto d = ApplyRetention(s, p, s.back().created + hours(1));
  // The newest 7 days are kept as dailies.
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(d[i].keep) << i;
  EXPECT_EQ(d[7].keep, false);  // 8th newest: neither a new ISO week nor month end (2026-12-24 … )
  size_t kept = KeptCount(d);
  // 7 dailies + 4 more weeklies + 11 or 12 more monthlies (some may coincide).
  EXPECT_GE(kept, 7u + 4u + 10u);
  EXPECT_LE(kept, 7u + 4u + 12u);
  for (const auto& dec : d) {
    if (!dec.keep) {
      EXPECT_EQ(dec.reasons, std::vector<std::string>{"no rule keeps it"});
    }
  }
}

TEST_F(RetentionTest, NewestOfEachDayIsKept) {
  std::vector<Snapshot> s = {Snap(T("2026-03-01T08:00:00Z")), Snap(T("2026-03-01T20:00:00Z")),
                             Snap(T("2026-03-02T08:00:00Z")), Snap(T("2026-03-02T20:00:00Z")),
                             Snap(T("2026-03-03T08:00:00Z"))};
  RetentionPolicy p;
  p.keep_daily = 2;
  auto d = ApplyRetention(s, p, T("2026-03-04T00:00:00Z"));
  EXPECT_EQ(Kept(d), (std::set<std::string>{"2026-03-03T08:00:00Z", "2026-03-02T20:00:00Z"}));
}

TEST_F(RetentionTest, EmptyPeriodsDoNotCount) {
  // Days 1, 5 and 10 have snapshots; --keep-daily 2 keeps days 10 and 5,
  // although days 6..9 (empty) are more recent than day 5.
  std::vector<Snapshot> s = {Snap(T("2026-05-01T12:00:00Z")), Snap(T("2026-05-05T12:00:00Z")),
                             Snap(T("2026-05-10T12:00:00Z"))};
  RetentionPolicy p;
  p.keep_daily = 2;
  auto d = ApplyRetention(s, p, T("2026-06-01T00:00:00Z"));
  EXPECT_EQ(Kept(d), (std::set<std::string>{"2026-05-10T12:00:00Z", "2026-05-05T12:00:00Z"}));
}

TEST_F(RetentionTest, RulesAreOredAndReasonsRecorded) {
  std::vector<Snapshot> s = {Snap(T("2026-01-31T12:00:00Z")), Snap(T("2026-02-27T12:00:00Z")),
                             Snap(T("2026-02-28T12:00:00Z"))};
  RetentionPolicy p;
  p.keep_last = 1;
  p.keep_monthly = 2;
  auto d = ApplyRetention(s, p, T("2026-03-01T00:00:00Z"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].reasons, (std::vector<std::string>{"last snapshot", "monthly snapshot"}));
  EXPECT_FALSE(d[1].keep);
  EXPECT_EQ(d[2].reasons, std::vector<std::string>{"monthly snapshot"});
}

TEST_F(RetentionTest, EqualTimestampsShareOnePeriod) {
  TimePoint t = T("2026-04-01T10:00:00Z");
  std::vector<Snapshot> s = {Snap(t, "snap-00000000000000001"), Snap(t, "snap-00000000000000002")};
  RetentionPolicy daily;
  daily.keep_daily = 5;
  auto d = ApplyRetention(s, daily, t);
  EXPECT_EQ(KeptCount(d), 1u);
  EXPECT_EQ(d[0].snapshot.id, "snap-00000000000000002");  // ties broken by id, deterministically
  EXPECT_TRUE(d[0].keep);
  RetentionPolicy last;
  last.keep_last = 2;
  EXPECT_EQ(KeptCount(ApplyRetention(s, last, t)), 2u);  // keep-last counts snapshots, not times
}

TEST_F(RetentionTest, IsoWeeksCrossYearBoundaries) {
  // 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in ISO week 2020-W53;
  // 2021-01-04 (Mon) starts 2021-W01.
  std::vector<Snapshot> s = {Snap(T("2020-12-31T12:00:00Z")), Snap(T("2021-01-03T12:00:00Z")),
                             Snap(T("2021-01-04T12:00:00Z"))};
  RetentionPolicy p;
  p.keep_weekly = 3;
  auto d = ApplyRetention(s, p, T("2021-02-01T00:00:00Z"));
  EXPECT_EQ(Kept(d), (std::set<std::string>{"2021-01-04T12:00:00Z", "2021-01-03T12:00:00Z"}));
}

TEST_F(RetentionTest, UnlimitedCount) {
  std::vector<Snapshot> s;
  for (int i = 0; i < 40; ++i) s.push_back(Snap(T("2026-01-01T00:00:00Z") + hours(24 * i)));
  RetentionPolicy p;
  p.keep_daily = -1;
  EXPECT_EQ(KeptCount(ApplyRetention(s, p, T("2027-01-01T00:00:00Z"))), 40u);
}

TEST_F(RetentionTest, KeepWithinCountsFromTheNewestSnapshotNotNow) {
  // Backups stopped a year ago: --keep-within 2d still keeps the last two days of them.
  std::vector<Snapshot> s = {Snap(T("2025-01-01T00:00:00Z")), Snap(T("2025-01-09T00:00:00Z")),
                             Snap(T("2025-01-10T00:00:00Z"))};
  RetentionPolicy p;
  p.keep_within = hours(48);
  auto d = ApplyRetention(s, p, T("2026-01-10T00:00:00Z"));
  EXPECT_EQ(Kept(d), (std::set<std::string>{"2025-01-10T00:00:00Z", "2025-01-09T00:00:00Z"}));
}

TEST_F(RetentionTest, OlderThanAloneRemovesOnlyOldOnes) {
  // The original tool: -o 7 deletes every snapshot older than seven days.
  TimePoint now = T("2026-06-30T00:00:00Z");
  std::vector<Snapshot> s;
  for (int i = 0; i < 20; ++i) s.push_back(Snap(now - hours(24 * i) - minutes(1)));
  RetentionPolicy p;
  p.older_than = hours(24 * 7);
  auto d = ApplyRetention(s, p, now);
  EXPECT_EQ(KeptCount(d), 7u);
  for (const auto& dec : d) {
    EXPECT_EQ(dec.keep, dec.snapshot.created >= now - hours(24 * 7));
  }
}

TEST_F(RetentionTest, OlderThanWithKeepRulesProtectsRecentOnes) {
  TimePoint now = T("2026-06-30T00:00:00Z");
  std::vector<Snapshot> s;
  for (int i = 0; i < 20; ++i) s.push_back(Snap(now - hours(24 * i) - minutes(1)));
  RetentionPolicy p;
  p.older_than = hours(24 * 7);
  p.keep_last = 2;
  // keep-last 2 would remove days 3..7, but they are not older than 7 days.
  EXPECT_EQ(KeptCount(ApplyRetention(s, p, now)), 7u);
}

TEST_F(RetentionTest, MaxCountCapsTheOldestKept) {
  std::vector<Snapshot> s;
  for (int i = 0; i < 10; ++i) s.push_back(Snap(T("2026-01-01T00:00:00Z") + hours(24 * i)));
  RetentionPolicy p;
  p.keep_daily = 8;
  p.max_count = 5;
  auto d = ApplyRetention(s, p, T("2026-02-01T00:00:00Z"));
  EXPECT_EQ(KeptCount(d), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(d[i].keep);
  EXPECT_EQ(d[5].reasons, std::vector<std::string>{"over --max-count 5"});
  RetentionPolicy only;
  only.max_count = 3;
  EXPECT_EQ(KeptCount(ApplyRetention(s, only, T("2026-02-01T00:00:00Z"))), 3u);
}

TEST_F(RetentionTest, DaysAreLocalCalendarDaysAcrossDaylightSaving) {
  SetTz("Europe/Berlin");
  // 2026-03-28 23:30 CET = 22:30Z and 2026-03-29 00:30 CET = 23:30Z: one UTC
  // date, two local dates. Clocks go forward at 01:00Z on 2026-03-29.
  std::vector<Snapshot> s = {Snap(T("2026-03-28T22:30:00Z")), Snap(T("2026-03-28T23:30:00Z")),
                             Snap(T("2026-03-29T22:30:00Z"))};  // 2026-03-30 00:30 CEST
  RetentionPolicy p;
  p.keep_daily = 3;
  EXPECT_EQ(KeptCount(ApplyRetention(s, p, T("2026-04-01T00:00:00Z"))), 3u);

  // Hourly: 02:00-03:00 local does not exist that night; 01:30 CET and 03:30
  // CEST are one real hour apart but two different hours.
  std::vector<Snapshot> h = {Snap(T("2026-03-29T00:30:00Z")), Snap(T("2026-03-29T01:30:00Z"))};
  RetentionPolicy ph;
  ph.keep_hourly = 2;
  EXPECT_EQ(KeptCount(ApplyRetention(h, ph, T("2026-04-01T00:00:00Z"))), 2u);

  // --keep-within 1d is one calendar day (23 hours on this day), as restic's AddDate.
  std::vector<Snapshot> w = {Snap(T("2026-03-28T10:30:00Z")),   // 11:30 CET
                             Snap(T("2026-03-29T10:00:00Z"))};  // 12:00 CEST, the newest
  RetentionPolicy pw;
  pw.keep_within = hours(24);
  auto d = ApplyRetention(w, pw, T("2026-04-01T00:00:00Z"));
  EXPECT_EQ(Kept(d), (std::set<std::string>{"2026-03-29T10:00:00Z"}));
}

}  // namespace
}  // namespace cloudkeep::snapshot
