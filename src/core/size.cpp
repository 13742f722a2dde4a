#include "core/size.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <string>

namespace cloudkeep {

Result<uint64_t> ParseByteSize(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::Usage(fmt::format("invalid {} '{}': {} (examples: 4096, 512K, 256M, 1.5G, 2GiB)",
                                     what, text, why));
  };
  size_t i = 0;
  bool dot = false;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
    if (text[i] == '.') dot = true;
    ++i;
  }
  if (i == 0 || text.substr(0, i) == ".") return bad("expected a number");
  double value = std::strtod(std::string(text.substr(0, i)).c_str(), nullptr);
  std::string unit;
  for (char c : text.substr(i))
    unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else {
    static constexpr std::string_view kPrefixes = "KMGTP";
    size_t p = kPrefixes.find(unit[0]);
    std::string rest = unit.substr(1);
    if (p == std::string_view::npos || !(rest.empty() || rest == "B" || rest == "IB"))
      return bad("unknown unit");
    scale = std::pow(1024.0, static_cast<double>(p + 1));
  }
  double bytes = value * scale;
  if (bytes >= 18446744073709551615.0) return bad("too large");
  if (dot && std::floor(bytes) != bytes) return bad("not a whole number of bytes");
  return static_cast<uint64_t>(bytes);
}

}  // namespace cloudkeep
