// RangeLock: mutual exclusion over byte ranges of an export.
//
// Lock(begin, end) blocks until no other holder's range overlaps
// [begin, end), then holds it until the Guard goes. Disjoint ranges proceed
// in parallel. The overlay uses it so that two partial writes to one block
// cannot both read-modify-write it; the hydrating copy so that a client
// write and the background copy of the same region never interleave.
//
// Thread safety: Lock() may be called from any number of threads. A thread
// must not hold two overlapping guards (it would wait for itself).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <utility>

namespace cloudkeep::nbd {

class RangeLock {
 public:
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& o) noexcept : lock_(o.lock_), it_(o.it_) { o.lock_ = nullptr; }
    Guard& operator=(Guard&& o) noexcept {
      if (this != &o) {
        Release();
        lock_ = o.lock_;
        it_ = o.it_;
        o.lock_ = nullptr;
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { Release(); }
    void Release() {
      if (!lock_) return;
      {
        std::lock_guard<std::mutex> l(lock_->mu_);
        lock_->held_.erase(it_);
      }
      lock_->cv_.notify_all();
      lock_ = nullptr;
    }

   private:
    friend class RangeLock;
    Guard(RangeLock* lock, std::list<std::pair<uint64_t, uint64_t>>::iterator it)
        : lock_(lock), it_(it) {}
    RangeLock* lock_ = nullptr;
    std::list<std::pair<uint64_t, uint64_t>>::iterator it_;
  };

  Guard Lock(uint64_t begin, uint64_t end) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] {
      for (const auto& [b, e] : held_)
        if (b < end && begin < e) return false;
      return true;
    });
    held_.emplace_front(begin, end);
    return Guard(this, held_.begin());
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::pair<uint64_t, uint64_t>> held_;
};

}  // namespace cloudkeep::nbd
