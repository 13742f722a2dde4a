// Clock: the seam through which cloudkeep reads the time.
//
// Retention, snapshot ids and the watchdog ask a Clock instead of calling
// system_clock directly, so that tests can pin "now" without sleeping.
// SystemClock is stateless and safe for concurrent use.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cloudkeep {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& Default();
};

// A clock that says what a test tells it to.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(TimePoint t) : t_(t) {}
  TimePoint Now() const override { return t_; }
  void Set(TimePoint t) { t_ = t; }

 private:
  TimePoint t_;
};

// RFC 3339 in UTC: "2026-11-28T17:49:24Z"; with `millis`, ".123" before the Z.
std::string FormatRfc3339(TimePoint t, bool millis = false);
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)".
Result<TimePoint> ParseRfc3339(std::string_view text);
// Local time for human tables: "2026-11-28 18:49:24".
std::string FormatLocal(TimePoint t);

}  // namespace cloudkeep
