#include "snapshot/retention.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <functional>

namespace cloudkeep::snapshot {

namespace {

struct tm LocalTm(TimePoint t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  return tm;
}

// ISO 8601 week-numbering year and week (Go's time.ISOWeek).
int IsoYearWeek(const struct tm& tm) {
  // Thursday of the same ISO week decides the year.
  int wday = (tm.tm_wday + 6) % 7;  // Monday = 0
  int yday_thu = tm.tm_yday - wday + 3;
  int year = tm.tm_year + 1900;
  auto days_in_year = [](int y) {
    return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365;
  };
  if (yday_thu < 0) {
    --year;
    yday_thu += days_in_year(year);
  } else if (yday_thu >= days_in_year(year)) {
    yday_thu -= days_in_year(year);
    ++year;
  }
  int week = yday_thu / 7 + 1;
  return year * 100 + week;
}

std::string CountText(int n) {
  return n < 0 ? "all" : std::to_string(n);
}

// Latest minus `d`; whole days are calendar days in local time, as restic's
// AddDate does, so "7d" across a daylight-saving change is still 7 dates.
TimePoint SubtractAge(TimePoint latest, Micros d) {
  constexpr int64_t kDay = 86400LL * 1000000;
  if (d.count() > 0 && d.count() % kDay == 0) {
    struct tm tm = LocalTm(latest);
    tm.tm_mday -= static_cast<int>(d.count() / kDay);
    tm.tm_isdst = -1;
    time_t tt = mktime(&tm);
    auto sub = latest - std::chrono::time_point_cast<std::chrono::seconds>(latest);
    return std::chrono::system_clock::from_time_t(tt) + sub;
  }
  return latest - d;
}

}  // namespace

bool RetentionPolicy::empty() const {
  return keep_last == 0 && keep_hourly == 0 && keep_daily == 0 && keep_weekly == 0 &&
         keep_monthly == 0 && keep_yearly == 0 && !keep_within && !older_than && !max_count;
}

std::string RetentionPolicy::Describe() const {
  std::vector<std::string> parts;
  if (keep_last) parts.push_back(fmt::format("keep {} last", CountText(keep_last)));
  if (keep_hourly) parts.push_back(fmt::format("{} hourly", CountText(keep_hourly)));
  if (keep_daily) parts.push_back(fmt::format("{} daily", CountText(keep_daily)));
  if (keep_weekly) parts.push_back(fmt::format("{} weekly", CountText(keep_weekly)));
  if (keep_monthly) parts.push_back(fmt::format("{} monthly", CountText(keep_monthly)));
  if (keep_yearly) parts.push_back(fmt::format("{} yearly", CountText(keep_yearly)));
  if (keep_within) parts.push_back("all within " + FormatDuration(*keep_within) + " of the newest");
  if (older_than) parts.push_back("remove only older than " + FormatDuration(*older_than));
  if (max_count) parts.push_back(fmt::format("at most {}", *max_count));
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out.empty() ? "no policy" : out;
}

std::vector<RetentionDecision> ApplyRetention(std::vector<Snapshot> snapshots,
                                              const RetentionPolicy& policy, TimePoint now) {
  // Newest first; ties broken by id so the outcome never depends on input order.
  std::sort(snapshots.begin(), snapshots.end(), [](const Snapshot& a, const Snapshot& b) {
    if (a.created != b.created) return a.created > b.created;
    return a.id > b.id;
  });
  std::vector<RetentionDecision> out;
  out.reserve(snapshots.size());
  if (policy.empty()) {
    for (auto& s : snapshots) out.push_back({std::move(s), true, {"no policy"}});
    return out;
  }

  using Bucketer = std::function<int64_t(const struct tm&, int64_t nr)>;
  struct Bucket {
    int count;
    Bucketer bucketer;
    int64_t last;
    const char* reason;
  };
  std::vector<Bucket> buckets = {
      {policy.keep_last, [](const struct tm&, int64_t nr) { return nr; }, -1, "last snapshot"},
      {policy.keep_hourly,
       [](const struct tm& t, int64_t) {
         return (t.tm_year + 1900LL) * 1000000 + (t.tm_mon + 1) * 10000 + t.tm_mday * 100 +
                t.tm_hour;
       },
       -1, "hourly snapshot"},
      {policy.keep_daily,
       [](const struct tm& t, int64_t) {
         return (t.tm_year + 1900LL) * 10000 + (t.tm_mon + 1) * 100 + t.tm_mday;
       },
       -1, "daily snapshot"},
      {policy.keep_weekly, [](const struct tm& t, int64_t) { return int64_t{IsoYearWeek(t)}; }, -1,
       "weekly snapshot"},
      {policy.keep_monthly,
       [](const struct tm& t, int64_t) { return (t.tm_year + 1900LL) * 100 + t.tm_mon + 1; }, -1,
       "monthly snapshot"},
      {policy.keep_yearly, [](const struct tm& t, int64_t) { return t.tm_year + 1900LL; }, -1,
       "yearly snapshot"},
  };
  const bool has_keep_rules = policy.keep_last || policy.keep_hourly || policy.keep_daily ||
                              policy.keep_weekly || policy.keep_monthly || policy.keep_yearly ||
                              policy.keep_within;

  TimePoint latest = snapshots.empty() ? TimePoint{} : snapshots.front().created;
  std::optional<TimePoint> within_cutoff;
  if (policy.keep_within) within_cutoff = SubtractAge(latest, *policy.keep_within);
  std::optional<TimePoint> age_cutoff;
  if (policy.older_than) age_cutoff = SubtractAge(now, *policy.older_than);

  int64_t nr = 0;
  for (auto& snap : snapshots) {
    RetentionDecision d{std::move(snap), false, {}};
    if (within_cutoff && d.snapshot.created > *within_cutoff) {
      d.keep = true;
      d.reasons.push_back("within " + FormatDuration(*policy.keep_within));
    }
    struct tm tm = LocalTm(d.snapshot.created);
    for (auto& b : buckets) {
      if (b.count == 0) continue;
      int64_t val = b.bucketer(tm, nr);
      if (val != b.last) {
        d.keep = true;
        b.last = val;
        if (b.count > 0) --b.count;
        d.reasons.push_back(b.reason);
      }
    }
    if (age_cutoff && d.snapshot.created >= *age_cutoff) {
      d.keep = true;
      d.reasons.push_back("newer than " + FormatDuration(*policy.older_than));
    }
    if (!d.keep && !has_keep_rules && !age_cutoff) {
      d.keep = true;  // only --max-count given: it alone decides below
    }
    if (!d.keep) {
      d.reasons.push_back(age_cutoff ? "older than " + FormatDuration(*policy.older_than) +
                                           ", no rule keeps it"
                                     : "no rule keeps it");
    }
    out.push_back(std::move(d));
    ++nr;
  }

  if (policy.max_count) {
    int kept = 0;
    for (auto& d : out) {
      if (!d.keep) continue;
      if (++kept > *policy.max_count) {
        d.keep = false;
        d.reasons = {fmt::format("over --max-count {}", *policy.max_count)};
      }
    }
  }
  return out;
}

}  // namespace cloudkeep::snapshot
