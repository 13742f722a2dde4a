// Durations come straight from the command line and config files.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/duration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto bare : {cloudkeep::BareNumber::kDays, cloudkeep::BareNumber::kSeconds,
                    cloudkeep::BareNumber::kReject}) {
    auto d = cloudkeep::ParseDuration(text, bare, "--fuzz");
    if (d.ok() && d->count() < 0) __builtin_trap();
  }
  return 0;
}
