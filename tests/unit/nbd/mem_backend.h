// MemBackend: a read-only base for the backend tests — bytes in memory, a
// chosen range that fails with EIO, an optional delay per 64 KiB read, and a count
// of the writes it refused (there must be none: the base is never written).
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "nbd/backend.h"

namespace cloudkeep::nbd::testing {

class MemBackend : public Backend {
 public:
  explicit MemBackend(std::string bytes) : bytes_(std::move(bytes)) {}

  uint64_t Size() const override { return bytes_.size(); }
  BackendCaps Caps() const override {
    BackendCaps c;
    c.extents = true;
    c.multi_conn = true;
    return c;
  }
  std::string Description() const override { return "memory"; }
  Status Pread(void* buf, uint64_t count, uint64_t offset) override {
    reads_++;
    if (delay_us_)
      std::this_thread::sleep_for(
          std::chrono::microseconds(delay_us_.load() * ((count + 65535) / 65536)));
    if (offset < fail_end_ && fail_begin_ < offset + count)
      return Status::FromErrno("injected failure", EIO);
    std::memcpy(buf, bytes_.data() + offset, count);
    return Status::Ok();
  }
  Status Pwrite(const void*, uint64_t, uint64_t, bool) override {
    writes_++;
    return Status::FromErrno("the base is read-only", EPERM);
  }
  // 4 KiB pieces that are all zero are holes, the rest data.
  Status Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out) override {
    size_t first = out->size();
    for (uint64_t pos = offset; pos < offset + count;) {
      uint64_t n = std::min<uint64_t>(offset + count - pos, 4096 - pos % 4096);
      bool zero = bytes_.find_first_not_of('\0', pos) >= pos + n;
      uint32_t flags = zero ? Extent::kHole | Extent::kZero : 0;
      if (out->size() > first && out->back().flags == flags)
        out->back().length += n;
      else
        out->push_back(Extent{n, flags});
      pos += n;
    }
    return Status::Ok();
  }

  const std::string& bytes() const { return bytes_; }
  void FailRange(uint64_t begin, uint64_t end) {
    fail_begin_ = begin;
    fail_end_ = end;
  }
  // Each read sleeps `us` per 64 KiB it covers.
  void SetDelay(unsigned us) { delay_us_ = us; }
  uint64_t reads() const { return reads_; }
  uint64_t writes() const { return writes_; }

 private:
  std::string bytes_;
  std::atomic<uint64_t> fail_begin_{0}, fail_end_{0};
  std::atomic<unsigned> delay_us_{0};
  std::atomic<uint64_t> reads_{0}, writes_{0};
};

// Deterministic bytes: a pattern that differs at every offset and per seed.
inline std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace cloudkeep::nbd::testing
