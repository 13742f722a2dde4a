// Summary statistics of round-trip samples, as `latency probe` and `latency
// mesh` report them: sent, lost, min, avg, max, stddev and the percentiles
// p50, p90, p99 and p99.9.
//
// Definitions (docs/latency-wire-format.md repeats them for users):
// - stddev is the population standard deviation (divide by n), which is
//   what ping's "mdev" and sockperf report, so the numbers compare.
// - Percentiles interpolate linearly between the two closest ranks
//   (Hyndman & Fan type 7, numpy's and R's default): for sorted x[0..n-1],
//   h = (n-1)·p, p-th value = x[floor h] + (h - floor h)·(x[floor h + 1] - x[floor h]).
//   With few samples (the original's ten pings) this does not jump to the
//   maximum at p99 as nearest-rank would, yet p0 and p100 stay min and max.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "core/output.h"

namespace cloudkeep::latency {

struct Summary {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost() const { return sent - received; }
  double loss_ratio() const {
    return sent ? static_cast<double>(lost()) / static_cast<double>(sent) : 0.0;
  }
  // The fields below are meaningful only when received > 0.
  double min_us = 0, avg_us = 0, max_us = 0, stddev_us = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0;
};

// p in [0, 1]; `sorted` must be ascending and non-empty.
double Percentile(const std::vector<double>& sorted, double p);

// Samples in microseconds, in any order; `sent` counts lost probes too.
Summary Summarize(std::vector<double> samples_us, uint64_t sent);

// {"sent":…, "lost":…, "loss_ratio":…, "min_us":…, …}; the times are absent when nothing came back.
Json SummaryToJson(const Summary& s);

}  // namespace cloudkeep::latency
