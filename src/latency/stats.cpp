#include "latency/stats.h"

#include <algorithm>
#include <cmath>

namespace cloudkeep::latency {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.size() == 1) return sorted[0];
  double h = static_cast<double>(sorted.size() - 1) * std::clamp(p, 0.0, 1.0);
  size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

Summary Summarize(std::vector<double> samples_us, uint64_t sent) {
  Summary s;
  s.received = samples_us.size();
  s.sent = std::max<uint64_t>(sent, s.received);
  if (samples_us.empty()) return s;
  std::sort(samples_us.begin(), samples_us.end());
  double sum = 0;
  for (double v : samples_us) sum += v;
  double n = static_cast<double>(samples_us.size());
  s.avg_us = sum / n;
  // Two-pass variance: the one-pass formula loses all precision when the
  // samples are large and close together (1000.001 µs, 1000.002 µs, …).
  double sq = 0;
  for (double v : samples_us) sq += (v - s.avg_us) * (v - s.avg_us);
  s.stddev_us = std::sqrt(sq / n);
  s.min_us = samples_us.front();
  s.max_us = samples_us.back();
  s.p50_us = Percentile(samples_us, 0.50);
  s.p90_us = Percentile(samples_us, 0.90);
  s.p99_us = Percentile(samples_us, 0.99);
  s.p999_us = Percentile(samples_us, 0.999);
  return s;
}

namespace {
double Round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}
}  // namespace

Json SummaryToJson(const Summary& s) {
  Json j = {{"sent", s.sent},
            {"received", s.received},
            {"lost", s.lost()},
            {"loss_ratio", std::round(s.loss_ratio() * 1e6) / 1e6}};
  if (s.received > 0) {
    j["min_us"] = Round3(s.min_us);
    j["avg_us"] = Round3(s.avg_us);
    j["max_us"] = Round3(s.max_us);
    j["stddev_us"] = Round3(s.stddev_us);
    j["p50_us"] = Round3(s.p50_us);
    j["p90_us"] = Round3(s.p90_us);
    j["p99_us"] = Round3(s.p99_us);
    j["p99_9_us"] = Round3(s.p999_us);
  }
  return j;
}

}  // namespace cloudkeep::latency
