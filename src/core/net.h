// Addresses and small blocking-socket helpers shared by every module that
// talks TCP or UDP (latency, NBD, mirror).
//
// Addresses are written "HOST:PORT", "HOST" (default port), or
// "[V6ADDR]:PORT" (RFC 3986 section 3.2.2 brackets an IPv6 literal so its
// colons do not read as the port separator).
//
// Thread safety: pure functions; the sockets they return belong to the caller.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "core/fs.h"
#include "core/status.h"

namespace cloudkeep {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// Usage errors name `what` and the text. A missing port is `default_port`;
// port 0 ("any port") only where `allow_port_zero`: a listen address may ask
// the kernel to choose.
Result<HostPort> ParseHostPort(const std::string& text, const std::string& what,
                               uint16_t default_port, bool allow_port_zero = false);

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  std::string ToString() const;  // "10.0.0.1:7470", "[::1]:7470"
};

// Resolves host (numeric first, then getaddrinfo) to one address.
Result<SockAddr> Resolve(const HostPort& hp);

// Monotonic and realtime clocks in nanoseconds.
uint64_t MonoNs();
uint64_t RealNs();

// connect() bounded by `timeout`; returns a blocking TCP socket with TCP_NODELAY.
Result<UniqueFd> ConnectTcp(const SockAddr& addr, std::chrono::microseconds timeout);
// Reads/writes exactly n bytes or fails; honours SO_RCVTIMEO/SO_SNDTIMEO set on the socket.
Status ReadFull(int fd, void* buf, size_t n);
Status WriteFull(int fd, const void* buf, size_t n);
void SetSocketTimeouts(int fd, std::chrono::microseconds timeout);

}  // namespace cloudkeep
