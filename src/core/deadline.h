// Deadline: the instant by which a whole operation must be over.
//
// Per-step timeouts bound each wait, but a peer that answers every step just
// inside its timeout can stretch many steps over many timeouts. A Deadline is
// one value handed down to every step: each wait is its own timeout clamped
// to the time left (ClampMillis, Until), and a step that finds the deadline passed does
// not start (expired). It reads the monotonic clock (steady_clock), never
// the wall clock, so that a clock step (NTP, a VM resumed) neither fires nor
// extends it. The overloads taking `now` are for tests.
//
// Thread safety: an immutable value; copies are independent and cheap.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/duration.h"

namespace cloudkeep {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // No deadline: every wait is only its own timeout.
  static Deadline Never() { return Deadline(); }
  // `budget` from now; a budget of 0 or less has passed already.
  static Deadline After(Micros budget) { return After(budget, Clock::now()); }
  static Deadline After(Micros budget, Clock::time_point now) {
    // Saturated: a budget of centuries ("--deadline 100000w") must not
    // overflow the clock's nanoseconds and wrap into the past.
    const auto room = std::chrono::duration_cast<Micros>(Clock::time_point::max() - now);
    return Deadline(budget < room ? now + budget : Clock::time_point::max(), budget);
  }

  bool never() const { return never_; }
  // The whole budget it was made with ("the deadline of 2m"); 0 for Never().
  Micros budget() const { return budget_; }

  bool expired() const { return expired(Clock::now()); }
  bool expired(Clock::time_point now) const { return !never_ && now >= end_; }

  // What is left, never negative; Micros::max() for Never().
  Micros left() const { return left(Clock::now()); }
  Micros left(Clock::time_point now) const;

  // One wait of `timeout_ms` clamped to what is left, in whole milliseconds
  // rounded up (a wait that ends early would leave the deadline not quite
  // passed and the caller waiting again). 0 once expired: poll(…, 0) and
  // friends then return at once.
  int ClampMillis(int timeout_ms) const { return ClampMillis(timeout_ms, Clock::now()); }
  int ClampMillis(int timeout_ms, Clock::time_point now) const;

  // The end of a wait of `timeout` that starts now: whichever comes first.
  Clock::time_point Until(std::chrono::milliseconds timeout) const {
    return Until(timeout, Clock::now());
  }
  Clock::time_point Until(std::chrono::milliseconds timeout, Clock::time_point now) const {
    auto end = now + timeout;
    return never_ || end < end_ ? end : end_;
  }

 private:
  Deadline() = default;
  Deadline(Clock::time_point end, Micros budget) : never_(false), end_(end), budget_(budget) {}

  bool never_ = true;
  Clock::time_point end_{};
  Micros budget_{0};
};

}  // namespace cloudkeep
