// The peers file parser (CSV and TOML): errors as values, never a crash.
#include <cstdint>
#include <string_view>

#include "latency/peers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)cloudkeep::latency::ParsePeers(text, "peers.csv");
  (void)cloudkeep::latency::ParsePeers(text, "peers.toml");
  (void)cloudkeep::latency::ParsePeers(text, "peers");
  return 0;
}
