#include "core/deadline.h"

#include <algorithm>

namespace cloudkeep {

Micros Deadline::left(Clock::time_point now) const {
  if (never_) return Micros::max();
  if (now >= end_) return Micros(0);
  return std::chrono::ceil<Micros>(end_ - now);
}

int Deadline::ClampMillis(int timeout_ms, Clock::time_point now) const {
  if (timeout_ms < 0) timeout_ms = 0;
  if (never_) return timeout_ms;
  if (now >= end_) return 0;
  auto left_ms = std::chrono::ceil<std::chrono::milliseconds>(end_ - now).count();
  return static_cast<int>(std::min<int64_t>(timeout_ms, left_ms));
}

}  // namespace cloudkeep
