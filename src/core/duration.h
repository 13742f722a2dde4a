// Durations and ages as the command line spells them.
//
// docs/design.md: "a bare number after -o is days (the original tool's -o 7);
// otherwise 250us, 5ms, 90s, 15m, 36h, 7d, 2w". Groups may be combined
// ("1h30m") and numbers may have a fraction ("1.5s"). Parsing never throws;
// a bad value gives a kUsage Status that names it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cloudkeep {

using Micros = std::chrono::microseconds;

enum class BareNumber {
  kDays,     // AGE: "-o 7" means seven days
  kSeconds,  // DUR where a bare number is customary ("--freeze-timeout 10")
  kReject,   // a unit is required
};

// `what` names the flag in the error, e.g. "--older-than".
Result<Micros> ParseDuration(std::string_view text, BareNumber bare, std::string_view what);

// "250us", "1.25ms", "90s", "15m", "36h", "7d": the largest unit that keeps
// the number readable; for human tables only.
std::string FormatDuration(Micros d);

}  // namespace cloudkeep
