// Retry delays for AWS calls (EC2 and S3): capped exponential backoff with
// full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog).
// Pure functions of their arguments; each thread keeps its own generator.
#pragma once

#include <random>

namespace cloudkeep::aws {

// Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)] milliseconds.
int BackoffMs(int attempt, int base_ms, int cap_ms, std::mt19937_64& rng);
// This thread's generator, seeded from std::random_device.
std::mt19937_64& BackoffRng();

}  // namespace cloudkeep::aws
