#include "agent/cron.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <vector>

namespace cloudkeep::agent {

namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct FieldSpec {
  const char* name;
  int lo, hi;
  const char* const* names;  // names[i] is the value lo + i (months) or i (days)
  int name_count;
  int name_base;
};

Result<int> ParseValue(std::string_view tok, const FieldSpec& f, std::string_view expr) {
  if (tok.empty())
    return Status::Usage(fmt::format("cron '{}': empty value in the {} field", expr, f.name));
  if (std::isalpha(static_cast<unsigned char>(tok[0]))) {
    std::string lower;
    for (char c : tok) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (int i = 0; i < f.name_count; ++i)
      if (lower == f.names[i]) return f.name_base + i;
    return Status::Usage(fmt::format("cron '{}': '{}' is not a {} name", expr, tok, f.name));
  }
  int v = 0;
  for (char c : tok) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000)
      return Status::Usage(
          fmt::format("cron '{}': '{}' is not a number in the {} field", expr, tok, f.name));
    v = v * 10 + (c - '0');
  }
  if (v < f.lo || v > f.hi)
    return Status::Usage(
        fmt::format("cron '{}': {} {} is out of {}-{}", expr, f.name, v, f.lo, f.hi));
  return v;
}

// One field: "*", "5", "1-5", "*/15", "10-50/20", "5/15" (from 5 to the end), "mon-fri", lists.
Status ParseField(std::string_view text, const FieldSpec& f, std::string_view expr,
                  std::vector<int>* out) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    int step = 1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view st = item.substr(slash + 1);
      FieldSpec step_spec{"step", 1, f.hi - f.lo + 1, nullptr, 0, 0};
      CK_ASSIGN_OR_RETURN(step, ParseValue(st, step_spec, expr));
      item = item.substr(0, slash);
      if (item.find('-') == std::string_view::npos && item != "*") {
        CK_ASSIGN_OR_RETURN(int a, ParseValue(item, f, expr));
        for (int v = a; v <= f.hi; v += step) out->push_back(v);
        continue;
      }
    }
    int a = f.lo, b = f.hi;
    if (item != "*") {
      size_t dash = item.find('-');
      CK_ASSIGN_OR_RETURN(a, ParseValue(item.substr(0, dash), f, expr));
      b = a;
      if (dash != std::string_view::npos) {
        CK_ASSIGN_OR_RETURN(b, ParseValue(item.substr(dash + 1), f, expr));
        if (b < a)
          return Status::Usage(fmt::format("cron '{}': range {} in the {} field runs backwards",
                                           expr, item, f.name));
      }
    }
    for (int v = a; v <= b; v += step) out->push_back(v);
  }
  return Status::Ok();
}

// Minutes since the epoch of a wall-clock time, for comparing wall times
// across days without a time zone.
int64_t WallMinutes(int y, int mo, int d, int h, int mi) {
  sys_days day{year_month_day{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                              std::chrono::day{static_cast<unsigned>(d)}}};
  return static_cast<int64_t>(day.time_since_epoch().count()) * 1440 + h * 60 + mi;
}

int64_t WallOf(time_t t) {
  struct tm tm {};
  ::localtime_r(&t, &tm);
  return WallMinutes(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

// The instants at which the local wall clock reads y-mo-d h:mi (zero, one or
// two of them), and for none, the first instant after the gap.
std::vector<time_t> Resolve(int y, int mo, int d, int h, int mi, bool* in_gap) {
  std::vector<time_t> found;
  time_t tried[2];
  for (int dst = 0; dst < 2; ++dst) {
    struct tm tm {};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_isdst = dst;
    time_t r = ::mktime(&tm);
    tried[dst] = r;
    struct tm back {};
    ::localtime_r(&r, &back);
    if (back.tm_year == y - 1900 && back.tm_mon == mo - 1 && back.tm_mday == d &&
        back.tm_hour == h && back.tm_min == mi &&
        std::find(found.begin(), found.end(), r) == found.end())
      found.push_back(r);
  }
  std::sort(found.begin(), found.end());
  *in_gap = found.empty();
  if (!found.empty()) return found;
  // In a gap: the first second whose wall time is past the slot. The two
  // tries land on either side of the gap, and wall time only rises across it.
  int64_t target = WallMinutes(y, mo, d, h, mi);
  time_t lo = std::min(tried[0], tried[1]), hi = std::max(tried[0], tried[1]);
  if (WallOf(hi) < target) return {};  // not a gap this zone knows: no such time
  while (hi - lo > 1) {
    time_t mid = lo + (hi - lo) / 2;
    (WallOf(mid) >= target ? hi : lo) = mid;
  }
  return {hi};
}

}  // namespace

Result<CronExpr> CronExpr::Parse(std::string_view text) {
  CronExpr c;
  c.text_ = std::string(text);
  std::string expanded(text);
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  if (!expanded.empty() && expanded[0] == '@') {
    bool known = false;
    for (const auto& [name, value] : kMacros)
      if (expanded == name) {
        expanded = value;
        known = true;
      }
    if (!known)
      return Status::Usage(fmt::format(
          "cron '{}': unknown shorthand (one of @yearly, @monthly, @weekly, @daily, @hourly)",
          text));
  }
  std::vector<std::string> fields;
  std::string cur;
  for (char ch : expanded) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      if (!cur.empty()) fields.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) fields.push_back(cur);
  if (fields.size() != 5)
    return Status::Usage(
        fmt::format("cron '{}': {} fields, need 5 (minute hour day-of-month month day-of-week)",
                    text, fields.size()));
  const FieldSpec specs[5] = {{"minute", 0, 59, nullptr, 0, 0},
                              {"hour", 0, 23, nullptr, 0, 0},
                              {"day-of-month", 1, 31, nullptr, 0, 0},
                              {"month", 1, 12, kMonthNames, 12, 1},
                              {"day-of-week", 0, 7, kDayNames, 7, 0}};
  std::vector<int> values[5];
  for (int i = 0; i < 5; ++i) CK_RETURN_IF_ERROR(ParseField(fields[i], specs[i], text, &values[i]));
  for (int v : values[0]) c.minutes_.set(static_cast<size_t>(v));
  for (int v : values[1]) c.hours_.set(static_cast<size_t>(v));
  for (int v : values[2]) c.mdays_.set(static_cast<size_t>(v));
  for (int v : values[3]) c.months_.set(static_cast<size_t>(v));
  for (int v : values[4]) c.wdays_.set(static_cast<size_t>(v % 7));  // 7 is Sunday too
  c.hour_star_ = fields[1] == "*";
  c.mday_star_ = fields[2][0] == '*';
  c.wday_star_ = fields[4][0] == '*';
  // "0 0 30 2 *" never runs: refuse it rather than wait forever.
  if (!c.mday_star_ && c.wday_star_) {
    static const int kMaxDay[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool possible = false;
    for (int m = 1; m <= 12; ++m)
      for (int d = 1; d <= kMaxDay[m]; ++d)
        if (c.months_[static_cast<size_t>(m)] && c.mdays_[static_cast<size_t>(d)]) possible = true;
    if (!possible)
      return Status::Usage(
          fmt::format("cron '{}': no month has that day, it would never run", text));
  }
  return c;
}

bool CronExpr::DayMatches(int mday, int month, int wday) const {
  if (!months_[static_cast<size_t>(month)]) return false;
  bool md = mdays_[static_cast<size_t>(mday)], wd = wdays_[static_cast<size_t>(wday)];
  // Vixie cron: both restricted → either may match; otherwise both must.
  if (!mday_star_ && !wday_star_) return md || wd;
  return md && wd;
}

TimePoint CronExpr::Next(TimePoint after) const {
  time_t after_s = std::chrono::system_clock::to_time_t(after);
  // to_time_t truncates toward zero for times after the epoch; a slot is a whole minute.
  struct tm start {};
  ::localtime_r(&after_s, &start);
  sys_days day{year_month_day{std::chrono::year{start.tm_year + 1900},
                              std::chrono::month{static_cast<unsigned>(start.tm_mon + 1)},
                              std::chrono::day{static_cast<unsigned>(start.tm_mday)}}};
  for (int i = 0; i < 8 * 366 + 2; ++i, day += days{1}) {
    year_month_day ymd{day};
    int y = static_cast<int>(ymd.year()), mo = static_cast<int>(unsigned(ymd.month())),
        d = static_cast<int>(unsigned(ymd.day()));
    int wd = static_cast<int>(std::chrono::weekday{day}.c_encoding());
    if (!DayMatches(d, mo, wd)) continue;
    std::vector<time_t> cands;
    for (int h = 0; h < 24; ++h) {
      if (!hours_[static_cast<size_t>(h)]) continue;
      // The first day: hours well before `after` cannot be later than it
      // (three hours covers any daylight-saving shift).
      if (i == 0 && h + 3 < start.tm_hour) continue;
      for (int mi = 0; mi < 60; ++mi) {
        if (!minutes_[static_cast<size_t>(mi)]) continue;
        bool gap = false;
        std::vector<time_t> at = Resolve(y, mo, d, h, mi, &gap);
        if (at.size() == 2 && !hour_star_) at.resize(1);
        for (time_t t : at)
          if (std::chrono::system_clock::from_time_t(t) > after) cands.push_back(t);
      }
    }
    if (!cands.empty())
      return std::chrono::system_clock::from_time_t(*std::min_element(cands.begin(), cands.end()));
  }
  return TimePoint::max();
}

}  // namespace cloudkeep::agent
