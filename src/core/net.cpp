#include "core/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

namespace cloudkeep {

Result<HostPort> ParseHostPort(const std::string& text, const std::string& what,
                               uint16_t default_port, bool allow_port_zero) {
  HostPort hp;
  hp.port = default_port;
  std::string port;
  if (text.empty()) return Status::Usage(what + " is empty");
  if (text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos)
      return Status::Usage(what + " '" + text + "' has an unclosed '['");
    hp.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':')
        return Status::Usage(what + " '" + text + "': expected ':' after ']'");
      port = text.substr(close + 2);
      if (port.empty()) return Status::Usage(what + " '" + text + "' has an empty port");
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string::npos && text.find(':') == colon) {
      hp.host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return Status::Usage(what + " '" + text + "' has an empty port");
    } else {
      hp.host = text;  // a bare name, or a bare IPv6 literal with several colons
    }
  }
  if (hp.host.empty()) return Status::Usage(what + " '" + text + "' has no host");
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || (v == 0 && !allow_port_zero) ||
        v > 65535)
      return Status::Usage(what + " '" + text + "' has a bad port '" + port + "'");
    hp.port = static_cast<uint16_t>(v);
  }
  return hp;
}

std::string SockAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
    inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin6_port));
  }
  inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  // Built by appending: `"[" + std::string(buf)` prepends through
  // basic_string::_M_replace, which GCC 12 at -O3 cannot bound and reports as
  // a memcpy of 2^63 bytes (-Wstringop-overflow, -Wrestrict; GCC PR 105329).
  std::string out = "[";
  out += buf;
  out += "]:";
  out += std::to_string(ntohs(a->sin6_port));
  return out;
}

Result<SockAddr> Resolve(const HostPort& hp) {
  SockAddr out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
  if (inet_pton(AF_INET, hp.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(hp.port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  if (inet_pton(AF_INET6, hp.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(hp.port);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    return Status::Failure("cannot resolve '" + hp.host + "': " + gai_strerror(rc));
  std::memcpy(&out.ss, res->ai_addr, res->ai_addrlen);
  out.len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  if (out.family() == AF_INET)
    v4->sin_port = htons(hp.port);
  else
    v6->sin6_port = htons(hp.port);
  return out;
}

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t RealNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void SetSocketTimeouts(int fd, std::chrono::microseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<UniqueFd> ConnectTcp(const SockAddr& addr, std::chrono::microseconds timeout) {
  UniqueFd fd(socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd.get(), addr.sa(), addr.len) != 0) {
    if (errno != EINPROGRESS) return Status::FromErrno("connect to " + addr.ToString(), errno);
    pollfd pfd{fd.get(), POLLOUT, 0};
    int n = poll(&pfd, 1, static_cast<int>(std::max<int64_t>(1, timeout.count() / 1000)));
    if (n == 0) return Status::Failure("connect to " + addr.ToString() + ": timed out");
    if (n < 0) return Status::FromErrno("poll", errno);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::FromErrno("connect to " + addr.ToString(), err);
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  SetSocketTimeouts(fd.get(), timeout);
  return fd;
}

Status ReadFull(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r == 0) return Status::Failure("connection closed by peer");
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return Status::Failure("timed out waiting for the peer");
      return Status::FromErrno("read", errno);
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return Status::Failure("timed out writing to the peer");
      return Status::FromErrno("write", errno);
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace cloudkeep
