#include "core/duration.h"

#include <fmt/format.h>

#include <cmath>

namespace cloudkeep {

namespace {

// Micro-seconds per unit suffix; longest suffixes first so "ms" wins over "m".
struct Unit {
  std::string_view suffix;
  double micros;
};
constexpr Unit kUnits[] = {
    {"us", 1.0}, {"µs", 1.0},   {"ms", 1e3},    {"s", 1e6},
    {"m", 60e6}, {"h", 3600e6}, {"d", 86400e6}, {"w", 7 * 86400e6},
};

}  // namespace

Result<Micros> ParseDuration(std::string_view text, BareNumber bare, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::Usage(fmt::format(
        "invalid {} '{}': {} (examples: 250us, 5ms, 90s, 15m, 36h, 7d, 2w)", what, text, why));
  };
  if (text.empty()) return bad("empty");
  double total = 0;
  size_t i = 0;
  bool any_unit = false;
  int groups = 0;
  while (i < text.size()) {
    size_t start = i;
    bool dot = false;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
      if (text[i] == '.') dot = true;
      ++i;
    }
    if (i == start) return bad("expected a number");
    std::string num(text.substr(start, i - start));
    if (num == ".") return bad("expected a number");
    double value = std::strtod(num.c_str(), nullptr);
    ++groups;
    if (i == text.size()) {
      if (groups > 1) return bad("missing unit after the last number");
      switch (bare) {
        case BareNumber::kDays:
          total += value * 86400e6;
          break;
        case BareNumber::kSeconds:
          total += value * 1e6;
          break;
        case BareNumber::kReject:
          return bad("missing unit");
      }
      break;
    }
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(i, u.suffix.size()) == u.suffix) {
        // "m" must not swallow the "m" of "ms"; kUnits lists "ms" first.
        unit = &u;
        break;
      }
    }
    if (!unit) return bad("unknown unit");
    any_unit = true;
    i += unit->suffix.size();
    total += value * unit->micros;
  }
  (void)any_unit;
  if (!std::isfinite(total) || total > 1e17) return bad("too large");
  return Micros(static_cast<int64_t>(std::llround(total)));
}

std::string FormatDuration(Micros d) {
  const double us = static_cast<double>(d.count());
  const double a = std::fabs(us);
  if (a < 1e3) return fmt::format("{}us", d.count());
  if (a < 1e6) return fmt::format("{:.3g}ms", us / 1e3);
  if (a < 120e6) return fmt::format("{:.3g}s", us / 1e6);
  if (a < 2 * 3600e6) return fmt::format("{:.3g}m", us / 60e6);
  if (a < 2 * 86400e6) return fmt::format("{:.3g}h", us / 3600e6);
  return fmt::format("{:.3g}d", us / 86400e6);
}

}  // namespace cloudkeep
