#include "core/clock.h"

#include <fmt/format.h>
#include <time.h>

#include <cstdio>

namespace cloudkeep {

const SystemClock& SystemClock::Default() {
  static const SystemClock clock;
  return clock;
}

std::string FormatRfc3339(TimePoint t, bool millis) {
  using namespace std::chrono;
  auto secs = time_point_cast<seconds>(t);
  if (secs > t) secs -= seconds(1);
  time_t tt = system_clock::to_time_t(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (millis) out += fmt::format(".{:03}", duration_cast<milliseconds>(t - secs).count());
  return out + "Z";
}

Result<TimePoint> ParseRfc3339(std::string_view text) {
  using namespace std::chrono;
  std::string s(text);
  int y, mo, d, h, mi, sec;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &consumed) !=
          6 ||
      consumed != 19) {
    return Status::Usage(
        fmt::format("invalid time '{}': expected RFC 3339 like 2026-01-31T12:00:00Z", text));
  }
  size_t i = 19;
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = 100000;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      frac_us += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  int offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) {
      return Status::Usage(fmt::format("invalid time '{}': bad zone offset", text));
    }
    offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return Status::Usage(fmt::format("invalid time '{}': missing zone (Z or ±HH:MM)", text));
  }
  if (i != s.size())
    return Status::Usage(fmt::format("invalid time '{}': trailing characters", text));
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t tt = timegm(&tm);
  return system_clock::from_time_t(tt) - minutes(offset_min) + microseconds(frac_us);
}

std::string FormatLocal(TimePoint t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace cloudkeep
