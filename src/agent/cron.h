// Five-field cron expressions as operators know them from Vixie cron and
// cronie: lists, ranges, steps, month and weekday names, 0 or 7 for Sunday,
// the @hourly/@daily/… shorthands, and the day-of-month/day-of-week OR rule
// (when both fields are restricted, a day matching either runs).
//
// Times are wall-clock times in the process's local time zone (the agent sets
// TZ once at start from its config; see agent/timezone.h for why).
// Daylight-saving transitions follow cronie: a slot whose wall-clock time does
// not exist (the spring gap) runs at the first instant after the gap, once even
// when several slots fall into it; a wall-clock time that happens twice (the
// autumn repeat) runs once, at its first occurrence — unless the hour field is
// `*`, when it runs in both hours, as an hourly job would.
#pragma once

#include <bitset>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace cloudkeep::agent {

class CronExpr {
 public:
  // kUsage naming the expression and the bad field ("'61 * * * *': minute 61 is out of 0-59").
  static Result<CronExpr> Parse(std::string_view text);

  // The first slot strictly after `after`. A valid expression always has one
  // (February 30th is refused at parse time), searched up to 8 years ahead.
  TimePoint Next(TimePoint after) const;

  const std::string& text() const { return text_; }

 private:
  bool DayMatches(int mday, int month, int wday) const;
  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> mdays_;   // 1-31
  std::bitset<13> months_;  // 1-12
  std::bitset<7> wdays_;    // 0 = Sunday
  bool mday_star_ = false;  // the field began with '*' (Vixie's test for the OR rule)
  bool wday_star_ = false;
  bool hour_star_ = false;  // '*' hour: a repeated wall-clock hour runs twice
};

}  // namespace cloudkeep::agent
