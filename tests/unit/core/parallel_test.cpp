// ParallelFor and ParallelForOrdered against their contract (core/parallel.h):
// every item once, the sequential loop's error, cancellation, bounded
// concurrency and bounded memory. No assertion depends on timing: where
// threads race, the test asserts what the contract guarantees for every
// interleaving, and repeats to give a broken implementation many chances.
#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cloudkeep {
namespace {

Status FailAt(size_t i) {
  return Status::Failure("item " + std::to_string(i));
}

TEST(ParallelFor, ZeroItemsRunsNothing) {
  std::atomic<int> calls{0};
  size_t failed = 99;
  Status s = ParallelFor(
      0, {4},
      [&](size_t) {
        ++calls;
        return Status::Ok();
      },
      &failed);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(failed, 0u);  // n: nothing failed
}

TEST(ParallelFor, EveryItemIsVisitedExactlyOnce) {
  for (int workers : {1, 2, 3, 8}) {
    constexpr size_t kN = 5000;
    std::vector<std::atomic<int>> seen(kN);
    Status s = ParallelFor(kN, {workers}, [&](size_t i) {
      seen[i].fetch_add(1);
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok());
    for (size_t i = 0; i < kN; ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i;
  }
}

TEST(ParallelFor, OneWorkerRunsInlineInOrder) {
  std::vector<size_t> order;
  const auto caller = std::this_thread::get_id();
  bool same_thread = true;
  ASSERT_TRUE(ParallelFor(100, {1}, [&](size_t i) {
                same_thread = same_thread && std::this_thread::get_id() == caller;
                order.push_back(i);
                return Status::Ok();
              }).ok());
  EXPECT_TRUE(same_thread);
  ASSERT_EQ(order.size(), 100u);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], i);
}

TEST(ParallelFor, MoreWorkersThanItemsStartsOnlyAsManyThreads) {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<int> seen(3, 0);
  ASSERT_TRUE(ParallelFor(3, {64}, [&](size_t i) {
                std::lock_guard<std::mutex> lock(mu);
                threads.insert(std::this_thread::get_id());
                ++seen[i];
                return Status::Ok();
              }).ok());
  EXPECT_LE(threads.size(), 3u);
  EXPECT_EQ(seen, (std::vector<int>{1, 1, 1}));
}

TEST(ParallelFor, ConcurrencyIsBounded) {
  for (int workers : {1, 2, 4}) {
    std::atomic<int> running{0}, peak{0};
    ASSERT_TRUE(ParallelFor(2000, {workers}, [&](size_t) {
                  int now = ++running;
                  int p = peak.load();
                  while (now > p && !peak.compare_exchange_weak(p, now)) {
                  }
                  --running;
                  return Status::Ok();
                }).ok());
    EXPECT_LE(peak.load(), workers);
  }
}

TEST(ParallelFor, OneWorkerStopsAtTheFirstError) {
  std::vector<size_t> visited;
  size_t failed = 0;
  Status s = ParallelFor(
      100, {1},
      [&](size_t i) {
        visited.push_back(i);
        return i == 37 || i == 60 ? FailAt(i) : Status::Ok();
      },
      &failed);
  EXPECT_EQ(s.message(), "item 37");
  EXPECT_EQ(failed, 37u);
  ASSERT_EQ(visited.size(), 38u);
  EXPECT_EQ(visited.back(), 37u);
}

TEST(ParallelFor, TheSequentialLoopsErrorWinsWhateverTheInterleaving) {
  // 37 and every later multiple of 37 fail; whichever thread fails first in
  // time, the answer must be item 37's, and every smaller item must have run.
  for (int round = 0; round < 200; ++round) {
    std::vector<std::atomic<int>> seen(500);
    size_t failed = 0;
    Status s = ParallelFor(
        500, {4},
        [&](size_t i) {
          seen[i].fetch_add(1);
          return i >= 37 && i % 37 == 0 ? FailAt(i) : Status::Ok();
        },
        &failed);
    ASSERT_EQ(s.message(), "item 37") << "round " << round;
    ASSERT_EQ(s.code(), Status::Code::kFailure);
    ASSERT_EQ(failed, 37u);
    for (size_t i = 0; i < 500; ++i) {
      ASSERT_LE(seen[i].load(), 1) << "item " << i;
      if (i <= 37) {
        ASSERT_EQ(seen[i].load(), 1) << "item " << i << " before the failure";
      }
    }
  }
}

TEST(ParallelFor, CancelFromAnItemStopsTheRestAndReturnsTheReason) {
  CancelToken cancel;
  std::vector<size_t> visited;
  Status s = ParallelFor(100, {1, &cancel}, [&](size_t i) {
    visited.push_back(i);
    if (i == 10) cancel.Cancel(Status::Usage("stopped by the user"));
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), Status::Code::kUsage);
  EXPECT_EQ(s.message(), "stopped by the user");
  EXPECT_EQ(visited.size(), 11u);
}

TEST(ParallelFor, CancelledBeforeTheStartRunsNothing) {
  CancelToken cancel;
  cancel.Cancel(Status::Failure("shutting down"));
  cancel.Cancel(Status::Failure("second reason is ignored"));
  std::atomic<int> calls{0};
  Status s = ParallelFor(50, {4, &cancel}, [&](size_t) {
    ++calls;
    return Status::Ok();
  });
  EXPECT_EQ(s.message(), "shutting down");
  EXPECT_EQ(calls.load(), 0);
}

TEST(ParallelFor, CancelAfterTheLastItemIsSuccess) {
  CancelToken cancel;
  Status s = ParallelFor(5, {1, &cancel}, [&](size_t i) {
    if (i == 4) cancel.Cancel(Status::Failure("too late"));
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok());
}

TEST(ParallelFor, AnItemsErrorBeatsCancellation) {
  CancelToken cancel;
  Status s = ParallelFor(20, {1, &cancel}, [&](size_t i) {
    if (i == 3) {
      cancel.Cancel(Status::Failure("cancelled"));
      return FailAt(i);
    }
    return Status::Ok();
  });
  EXPECT_EQ(s.message(), "item 3");
}

TEST(WorkerCount, ConfiguredOrTheMachinesCores) {
  EXPECT_EQ(WorkerCount(3), 3);
  EXPECT_GE(WorkerCount(0), 2);
  EXPECT_GE(WorkerCount(-1), 2);
}

// ParallelForOrdered: a single consumer in index order behind the workers.
struct OrderedRun {
  std::vector<size_t> consumed;
  std::atomic<size_t> consumed_count{0};
  std::atomic<bool> window_exceeded{false};
};

TEST(ParallelForOrdered, ConsumesInOrderWithBoundedWindow) {
  for (int workers : {1, 2, 4}) {
    for (size_t window : {1u, 3u, 16u}) {
      OrderedRun run;
      Status s = ParallelForOrdered<std::string>(
          300, {workers}, window,
          [&](size_t i) -> Result<std::string> {
            // Item i may be produced only while fewer than `window` items wait.
            if (i >= run.consumed_count.load() + window) run.window_exceeded = true;
            return std::to_string(i);
          },
          [&](size_t i, std::string v) {
            if (v != std::to_string(i))
              return Status::Failure("item " + v + " at " + std::to_string(i));
            run.consumed.push_back(i);
            ++run.consumed_count;
            return Status::Ok();
          });
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_FALSE(run.window_exceeded) << workers << " workers, window " << window;
      ASSERT_EQ(run.consumed.size(), 300u);
      for (size_t i = 0; i < 300; ++i) ASSERT_EQ(run.consumed[i], i);
    }
  }
}

TEST(ParallelForOrdered, ZeroItems) {
  int calls = 0;
  Status s = ParallelForOrdered<int>(
      0, {4}, 4,
      [&](size_t) -> Result<int> {
        ++calls;
        return 0;
      },
      [&](size_t, int) {
        ++calls;
        return Status::Ok();
      });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 0);
}

TEST(ParallelForOrdered, AProducerErrorStopsTheConsumerJustBeforeIt) {
  for (int round = 0; round < 100; ++round) {
    OrderedRun run;
    Status s = ParallelForOrdered<size_t>(
        200, {3}, 4,
        [&](size_t i) -> Result<size_t> {
          if (i == 50 || i == 51 || i == 120) return FailAt(i);
          return i;
        },
        [&](size_t i, size_t) {
          run.consumed.push_back(i);
          return Status::Ok();
        });
    ASSERT_EQ(s.message(), "item 50");
    ASSERT_EQ(run.consumed.size(), 50u)
        << "everything before the failure is consumed, nothing after";
  }
}

TEST(ParallelForOrdered, AConsumerErrorStopsTheProducers) {
  for (int round = 0; round < 100; ++round) {
    std::atomic<size_t> produced{0};
    Status s = ParallelForOrdered<size_t>(
        1000, {3}, 2,
        [&](size_t i) -> Result<size_t> {
          ++produced;
          return i;
        },
        [&](size_t i, size_t) { return i == 20 ? FailAt(i) : Status::Ok(); });
    ASSERT_EQ(s.message(), "item 20");
    // The window holds at most 2 items past the consumer, and each of the 3
    // workers may have claimed one more that it then skips.
    ASSERT_LE(produced.load(), 21u + 2u + 3u);
  }
}

TEST(ParallelForOrdered, TheSmallerIndexWinsBetweenProducerAndConsumer) {
  for (int round = 0; round < 100; ++round) {
    std::vector<size_t> consumed;
    Status s = ParallelForOrdered<size_t>(
        100, {2}, 8,
        [&](size_t i) -> Result<size_t> { return i == 30 ? FailAt(i) : Result<size_t>(i); },
        [&](size_t i, size_t) {
          consumed.push_back(i);
          return i == 20 ? Status::Failure("write " + std::to_string(i)) : Status::Ok();
        });
    ASSERT_EQ(s.message(), "write 20");
    ASSERT_EQ(consumed.size(), 21u);

    s = ParallelForOrdered<size_t>(
        100, {2}, 8,
        [&](size_t i) -> Result<size_t> { return i == 10 ? FailAt(i) : Result<size_t>(i); },
        [&](size_t i, size_t) {
          return i == 20 ? Status::Failure("write " + std::to_string(i)) : Status::Ok();
        });
    ASSERT_EQ(s.message(), "item 10");
  }
}

}  // namespace
}  // namespace cloudkeep
