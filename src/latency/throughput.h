// TCP throughput between this host and a `latency serve` responder, as
// iperf3 measures it: N parallel streams for a duration, either uploading
// (the default: this host sends, the responder counts what arrives) or
// downloading (--reverse: the responder sends). The rate is measured on the
// receiving side, from its first byte to the end of the stream, so bytes
// still sitting in socket buffers when the sender stops are not counted as
// delivered.
//
// Each stream opens with a control request (control.h); the responder
// caps a stream at kMaxThroughputDuration so a stray request cannot keep it
// sending.
//
// Thread safety: RunThroughput is reentrant; it runs one thread per stream.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/output.h"
#include "core/status.h"

namespace cloudkeep::latency {

inline constexpr auto kMaxThroughputDuration = std::chrono::seconds(60);
inline constexpr int kMaxStreams = 32;
// Bytes per send()/read() call. iperf3 uses 128 KiB; 512 KiB takes a quarter
// of the system calls per byte, which measured (bench/latency.sh, 2026-12-01,
// pinned, loopback) 43-45 Gbit/s on one stream against 35-42 with 128 KiB,
// and lifted four streams sharing one core from 0.8x iperf3 to parity. On a
// slow link one call can overrun --duration by 512 KiB's worth of time; the
// rate is measured at the receiver from the first to the last byte, so it
// stays right.
inline constexpr size_t kThroughputBlock = 512 * 1024;

struct ThroughputOptions {
  int streams = 1;
  Micros duration{std::chrono::seconds(10)};
  bool reverse = false;
  Micros timeout{std::chrono::seconds(5)};  // connect and handshake
  std::string token;
};
Status ValidateThroughputOptions(const ThroughputOptions& o);

struct StreamResult {
  uint64_t bytes = 0;
  double seconds = 0;
  double bits_per_second() const {
    return seconds > 0 ? static_cast<double>(bytes) * 8 / seconds : 0;
  }
  std::string error;
};

struct ThroughputResult {
  std::string target, address;
  bool reverse = false;
  std::vector<StreamResult> streams;
  uint64_t bytes = 0;
  double seconds = 0;
  double bits_per_second = 0;  // sum of the streams' rates
};

Result<ThroughputResult> RunThroughput(const std::string& target, const ThroughputOptions& o);
Json ThroughputToJson(const ThroughputResult& r);

// The responder's side of one stream, after the request has been accepted:
// sink (count and report) or source (send for `duration`).
void ServeThroughputSink(int fd, const std::string& token, const std::string& nonce);
void ServeThroughputSource(int fd, Micros duration);

}  // namespace cloudkeep::latency
