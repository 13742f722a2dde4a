#include "aws/backoff.h"

#include <cstdint>

namespace cloudkeep::aws {

int BackoffMs(int attempt, int base_ms, int cap_ms, std::mt19937_64& rng) {
  int64_t ceiling = base_ms;
  for (int i = 0; i < attempt && ceiling < cap_ms; ++i) ceiling *= 2;
  if (ceiling > cap_ms) ceiling = cap_ms;
  return static_cast<int>(std::uniform_int_distribution<int64_t>(0, ceiling)(rng));
}

std::mt19937_64& BackoffRng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace cloudkeep::aws
