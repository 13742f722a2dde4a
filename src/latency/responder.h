// The responder (`latency serve`): answers probes on UDP and TCP on the
// same port, and is the agent that `latency mesh` asks to run probes and
// throughput tests over the authenticated control channel (control.h).
//
// Safety on a real network: only well-formed probes are answered (wire.h),
// a reply is never larger than its request, replies are rate-limited by a
// token bucket (excess probes are dropped, not queued), TCP connections are
// capped and time out when idle, and garbage costs one parse of a
// fixed-size header. Operations that make this host send to third parties
// (mesh probe runs, throughput tests to another host) need the mesh token;
// without one they are refused.
//
// Thread safety: Run() blocks in the calling thread, starts one thread per
// UDP socket (a blocking receive loop: one system call to wake and receive,
// one to answer) and one per TCP connection; Stop() is async-signal-safe
// and may be called from any thread or a signal handler.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "latency/control.h"
#include "latency/net.h"

namespace cloudkeep::latency {

// A token bucket (RFC 2697's single-rate idea without colours): `rate`
// tokens a second, at most `burst` saved up. rate <= 0 means unlimited.
struct BucketState {
  double tokens = 0;
  uint64_t last_ns = 0;  // 0: never used, starts full
};
// Takes one token at monotonic time `now_ns` if there is one.
bool TakeToken(BucketState& s, double rate, double burst, uint64_t now_ns);

// One bucket shared by every thread.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst) {}
  bool Take(uint64_t now_ns);

 private:
  double rate_, burst_;
  BucketState state_;
  std::mutex mu_;
};

// A bucket per source: an IPv4 address, or an IPv6 /64 (what one host
// usually holds, RFC 6177), so that one busy or hostile prober cannot use
// up the reply budget of the rest of the mesh. The table is direct-mapped
// with a per-process random hash seed: a colliding source takes the slot
// over with a full bucket, which only ever errs towards answering; the
// global bucket still bounds the total. Not thread-safe: one per thread.
class SourceRateLimiter {
 public:
  SourceRateLimiter(double rate, double burst, size_t slots = 4096);
  bool Take(const sockaddr_storage& from, uint64_t now_ns);

 private:
  struct Slot {
    std::array<uint8_t, 17> key{};  // family byte + address prefix
    BucketState bucket;
  };
  double rate_, burst_;
  uint64_t seed_;
  std::vector<Slot> slots_;
};

struct ResponderOptions {
  std::vector<std::string> listen;  // "ADDR:PORT"; empty: [::]:7470, dual-stack
  std::string name, zone, token;
  double rate = 10000;  // replies a second over UDP and TCP together
  double burst = 1000;
  double rate_per_source = 2000;  // replies a second to one source (SourceRateLimiter)
  double burst_per_source = 200;
  int max_connections = 64;
  std::chrono::seconds idle_timeout{30};
};

struct ResponderCounters {
  std::atomic<uint64_t> answered{0}, malformed{0}, rate_limited{0}, control_refused{0};
};

class Responder {
 public:
  // Binds every listen address (UDP and TCP); fails if any cannot be bound.
  static Result<std::unique_ptr<Responder>> Start(ResponderOptions opts);
  ~Responder();

  // Serves until Stop(); returns Ok after a stop.
  Status Run();
  void Stop();
  // The bound addresses, "ADDR:PORT", with the real port when 0 was asked.
  std::vector<std::string> bound() const;
  const ResponderCounters& counters() const { return counters_; }

 private:
  explicit Responder(ResponderOptions opts);
  void ServeUdp(int fd);  // until Stop()
  void ServeTcp(UniqueFd fd);
  void ServeProbeStream(int fd);
  void ServeControl(int fd);

  ResponderOptions opts_;
  std::vector<UniqueFd> udp_, tcp_;
  std::vector<SockAddr> bound_;
  UniqueFd wake_;
  TokenBucket bucket_;
  ResponderCounters counters_;
  ReplayGuard replay_;
  std::atomic<int> connections_{0};
  std::mutex conn_mu_;
  std::vector<int> conn_fds_;  // open TCP connections, shut down on Stop
  std::atomic<bool> stopping_{false};
};

}  // namespace cloudkeep::latency
