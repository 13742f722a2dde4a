// The authenticated control channel between `latency mesh` and the agents
// (`latency serve`), and the start of a throughput stream.
//
// A request is one kControl frame on a fresh TCP connection; the answer is
// one kControlReply frame, both MACed with the shared mesh token
// (wire.h). Every request carries a random nonce and the sender's time:
// the agent refuses a request more than five minutes old or a nonce it has
// already seen in that window (replay), and the client refuses an answer
// that does not echo its nonce.
//
// Thread safety: ControlCall is reentrant. ReplayGuard is internally locked.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "core/output.h"
#include "core/status.h"
#include "latency/net.h"

namespace cloudkeep::latency {

inline constexpr int64_t kMaxClockSkewSeconds = 300;

// Adds "nonce" and "time" to `request`, sends it, waits up to `timeout` for
// the answer and verifies it. An answer holding "error" becomes a Failure
// with that message. `fd_out`, when given, receives the still-open
// connection (a throughput stream continues on it).
Result<Json> ControlCall(const SockAddr& addr, Json request, const std::string& token,
                         std::chrono::microseconds timeout, UniqueFd* fd_out = nullptr);

// Reads and verifies one whole control frame of `type` (a wire::Type) from fd.
Result<Json> ReadControl(int fd, const std::string& token, int type);
Status WriteControl(int fd, int type, const Json& payload, const std::string& token);

// Refuses stale and repeated requests.
class ReplayGuard {
 public:
  // Ok, or a Failure naming why the request is refused.
  Status Check(const Json& request, int64_t now_unix);

 private:
  std::mutex mu_;
  std::deque<std::pair<int64_t, std::string>> order_;
  std::set<std::string> seen_;
};

}  // namespace cloudkeep::latency
