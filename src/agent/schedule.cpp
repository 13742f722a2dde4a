#include "agent/schedule.h"

#include <functional>

namespace cloudkeep::agent {

TimePoint Schedule::Next(TimePoint after) const {
  if (cron_) return cron_->Next(after);
  auto us = std::chrono::duration_cast<Micros>(after.time_since_epoch()).count();
  auto p = every_.count();
  auto q = us >= 0 ? us / p : -((-us + p - 1) / p);  // floor division
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(Micros((q + 1) * p)));
}

Micros Schedule::JitterFor(const std::string& name, TimePoint slot) const {
  if (jitter_.count() <= 0) return Micros(0);
  // FNV-1a of name and slot: stable across restarts and builds (std::hash is not).
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](uint64_t byte) {
    h ^= byte;
    h *= 1099511628211ULL;
  };
  for (unsigned char c : name) mix(c);
  auto t =
      static_cast<uint64_t>(std::chrono::duration_cast<Micros>(slot.time_since_epoch()).count());
  for (int i = 0; i < 8; ++i) mix((t >> (8 * i)) & 0xff);
  return Micros(static_cast<int64_t>(h % static_cast<uint64_t>(jitter_.count())));
}

std::string Schedule::Describe() const {
  std::string out = cron_ ? "cron '" + cron_->text() + "'" : "every " + FormatDuration(every_);
  if (jitter_.count() > 0) out += " (jitter " + FormatDuration(jitter_) + ")";
  return out;
}

}  // namespace cloudkeep::agent
