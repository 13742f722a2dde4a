// ParallelFor: run fn(0) … fn(n-1) on a bounded number of threads, with
// errors as values, and ParallelForOrdered: the same, feeding one consumer
// that sees the results in index order (a single writer behind a pool of
// producers, with a bounded window so memory stays flat).
//
// The concept, in the order a sequential loop would have it:
//   for (i = 0; i < n; ++i) if (Status s = fn(i); !s.ok()) return s;
// ParallelFor keeps that loop's answer while running up to `workers` items
// at a time:
// - indices are claimed from one counter in increasing order, so an item is
//   started only after every smaller index has been started;
// - each index is visited at most once, and exactly once when all succeed;
// - the first failure stops the rest: no item is started after it, the
//   items already running finish, and the returned Status is the failure
//   with the lowest index — the one the sequential loop would have returned
//   (every smaller index was started and ran to its end);
// - a CancelToken stops it from outside the same way (no new item starts)
//   and its reason is returned, unless an item failed first.
//
// Thread contract: fn is called concurrently from up to `workers` threads —
// the caller's thread is one of them, so workers == 1 runs inline and starts
// no thread — and must be safe to call for different indices at once. No
// thread outlives the call: fn may capture locals by reference. fn returns a
// Status and must not throw (an exception escaping a worker terminates the
// program, as for any std::thread). Workers are capped at n.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/status.h"

namespace cloudkeep {

// Stops a ParallelFor from outside (or from one of its items). Thread-safe.
class CancelToken {
 public:
  // The first reason given is kept; later calls are no-ops.
  void Cancel(Status why);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  Status reason() const;

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  Status reason_;
};

struct ParallelOptions {
  int workers = 1;                      // values below 1 mean 1
  const CancelToken* cancel = nullptr;  // optional
};

// The worker count for a `--threads`-style setting: `configured` when
// positive, else the machine's cores (at least 2).
int WorkerCount(int configured);

// `failed_index`, when given, receives the index whose Status is returned
// (n when none failed or the token's reason is returned).
Status ParallelFor(size_t n, const ParallelOptions& options,
                   const std::function<Status(size_t)>& fn, size_t* failed_index = nullptr);

// produce(i) -> Result<T> runs on the ParallelFor workers; consume(i, T&&)
// -> Status runs on one thread of its own, for i = 0, 1, … in order. At most
// `window` results (at least 1) wait between the two, so memory is bounded
// by window × sizeof(result) whatever n is. The returned Status is the
// failure the sequential loop `produce(i); consume(i)` would have hit first
// among the items that ran (a failure stops producers and consumer alike).
template <typename T, typename Produce, typename Consume>
Status ParallelForOrdered(size_t n, const ParallelOptions& options, size_t window,
                          Produce&& produce, Consume&& consume) {
  if (window < 1) window = 1;
  std::mutex mu;
  std::condition_variable changed;
  // All guarded by mu.
  std::map<size_t, T> ready;  // produced, not yet consumed
  size_t next_consume = 0;
  size_t stop_index = n;  // lowest index that failed (produce or consume)
  bool producers_done = false;
  Status consume_error;

  std::thread consumer([&] {
    for (size_t i = 0; i < n; ++i) {
      T item;
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return ready.count(i) || i >= stop_index || producers_done; });
        auto it = ready.find(i);
        // Items below a failure are still consumed: the sequential loop would have.
        if (i >= stop_index || it == ready.end()) return;
        item = std::move(it->second);
        ready.erase(it);
      }
      Status s = consume(i, std::move(item));
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) {
        consume_error = std::move(s);
        stop_index = std::min(stop_index, i);
        changed.notify_all();
        return;
      }
      next_consume = i + 1;
      changed.notify_all();
    }
  });

  size_t produce_error_index = n;
  Status produced = ParallelFor(
      n, options,
      [&](size_t i) -> Status {
        {
          // Room: item i may be held only while i - next_consume < window.
          std::unique_lock<std::mutex> lock(mu);
          changed.wait(lock, [&] { return i >= stop_index || i < next_consume + window; });
          if (i >= stop_index) return Status::Ok();  // a smaller index failed and is reported
        }
        Result<T> r = produce(i);
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) {
          stop_index = std::min(stop_index, i);
          changed.notify_all();
          return r.status();
        }
        ready.emplace(i, std::move(r).value());
        changed.notify_all();
        return Status::Ok();
      },
      &produce_error_index);
  {
    std::lock_guard<std::mutex> lock(mu);
    producers_done = true;
    changed.notify_all();
  }
  consumer.join();
  // Both failed: the sequential loop meets the smaller index first (at the
  // same index only the producer can have failed: consume(i) needs produce(i)).
  if (!produced.ok() && (consume_error.ok() || produce_error_index <= stop_index)) return produced;
  return consume_error;
}

}  // namespace cloudkeep
