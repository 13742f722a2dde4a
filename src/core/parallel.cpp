#include "core/parallel.h"

#include <algorithm>
#include <vector>

namespace cloudkeep {

void CancelToken::Cancel(Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.load(std::memory_order_relaxed)) return;
  reason_ = why.ok() ? Status::Failure("cancelled") : std::move(why);
  cancelled_.store(true, std::memory_order_release);
}

Status CancelToken::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

int WorkerCount(int configured) {
  if (configured > 0) return configured;
  return static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
}

Status ParallelFor(size_t n, const ParallelOptions& options,
                   const std::function<Status(size_t)>& fn, size_t* failed_index) {
  if (failed_index) *failed_index = n;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  size_t first_index = n;  // lowest failing index so far; guarded by mu
  Status first;

  auto work = [&] {
    for (;;) {
      if (failed.load(std::memory_order_acquire)) return;
      if (options.cancel && options.cancel->cancelled()) return;
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      Status s = fn(i);
      if (s.ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      // Items are claimed in order, so every index below i has started and
      // will finish: keeping the lowest failure gives the sequential answer.
      if (i < first_index) {
        first_index = i;
        first = std::move(s);
      }
      failed.store(true, std::memory_order_release);
      return;
    }
  };

  size_t workers = static_cast<size_t>(std::max(1, options.workers));
  workers = std::min(workers, n);
  std::vector<std::thread> threads;
  for (size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  if (n > 0) work();  // the caller is the first worker
  for (auto& t : threads) t.join();

  if (!first.ok()) {
    if (failed_index) *failed_index = first_index;
    return first;
  }
  // Cancelled before every item ran: say so, never a silent partial result.
  if (options.cancel && options.cancel->cancelled() && next.load() < n)
    return options.cancel->reason();
  return Status::Ok();
}

}  // namespace cloudkeep
