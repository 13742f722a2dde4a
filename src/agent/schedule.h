// When a job runs: a cron expression or a fixed period, plus jitter.
//
// A slot is the nominal time a run belongs to (what history records and what
// keeps a slot from running twice); jitter only delays the start of a slot,
// by an amount derived from the job's name and the slot so that a restarted
// agent computes the same delay (no random state to persist).
#pragma once

#include <optional>
#include <string>

#include "agent/cron.h"
#include "core/clock.h"
#include "core/duration.h"

namespace cloudkeep::agent {

class Schedule {
 public:
  static Schedule Cron(CronExpr expr) {
    Schedule s;
    s.cron_ = std::move(expr);
    return s;
  }
  // Slots at whole multiples of `period` since the Unix epoch, so that they
  // do not move when the agent restarts.
  static Schedule Every(Micros period) {
    Schedule s;
    s.every_ = period;
    return s;
  }
  Schedule& WithJitter(Micros jitter) {
    jitter_ = jitter;
    return *this;
  }

  TimePoint Next(TimePoint after) const;
  // The start delay of `slot` for the job `name`, in [0, jitter).
  Micros JitterFor(const std::string& name, TimePoint slot) const;
  TimePoint DueAt(const std::string& name, TimePoint slot) const {
    return slot + JitterFor(name, slot);
  }
  // "cron '5 * * * *'" or "every 15m".
  std::string Describe() const;

 private:
  Schedule() = default;
  std::optional<CronExpr> cron_;
  Micros every_{0};
  Micros jitter_{0};
};

}  // namespace cloudkeep::agent
