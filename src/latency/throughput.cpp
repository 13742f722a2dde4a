#include "latency/throughput.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>

#include "latency/control.h"
#include "latency/net.h"
#include "latency/wire.h"

namespace cloudkeep::latency {

Status ValidateThroughputOptions(const ThroughputOptions& o) {
  if (o.streams < 1 || o.streams > kMaxStreams)
    return Status::Usage("--streams '" + std::to_string(o.streams) + "' must be 1.." +
                         std::to_string(kMaxStreams));
  if (o.duration < std::chrono::milliseconds(100) || o.duration > kMaxThroughputDuration)
    return Status::Usage("--duration '" + FormatDuration(o.duration) + "' must be 100ms..60s");
  return Status::Ok();
}

namespace {

// Counts bytes until EOF; the clock starts at the first byte.
StreamResult Drain(int fd) {
  StreamResult r;
  std::vector<char> buf(kThroughputBlock);
  uint64_t first = 0, last = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = std::string("read: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    last = MonoNs();
    if (!first) first = last;
    r.bytes += static_cast<uint64_t>(n);
  }
  r.seconds = first ? static_cast<double>(last - first) / 1e9 : 0;
  return r;
}

void Blast(int fd, Micros duration) {
  // The control exchange wants TCP_NODELAY; bulk data does not: with it,
  // every 128 KiB write ends in a short segment of its own (on loopback's
  // 64 KiB MSS, one packet in three), which cost a quarter of the rate.
  int zero = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero);
  std::vector<char> buf(kThroughputBlock, 'x');
  uint64_t end = MonoNs() + static_cast<uint64_t>(duration.count()) * 1000;
  while (MonoNs() < end) {
    ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  shutdown(fd, SHUT_WR);
}

StreamResult RunStream(const SockAddr& addr, const ThroughputOptions& o) {
  StreamResult r;
  Json req = {{"op", "throughput"},
              {"direction", o.reverse ? "download" : "upload"},
              {"duration_us", o.duration.count()}};
  UniqueFd fd;
  auto ok = ControlCall(addr, req, o.token, o.timeout, &fd);
  if (!ok.ok()) {
    r.error = ok.status().message();
    return r;
  }
  // Data moves with blocking calls; the responder ends the stream itself, so
  // only a dead peer needs the timeout, and that is duration + slack.
  SetSocketTimeouts(fd.get(), o.duration + o.timeout);
  if (o.reverse) return Drain(fd.get());
  Blast(fd.get(), o.duration);
  auto report = ReadControl(fd.get(), o.token, static_cast<int>(wire::Type::kControlReply));
  if (!report.ok()) {
    r.error = "no report from the responder: " + report.status().message();
    return r;
  }
  r.bytes = report->value("bytes", uint64_t{0});
  r.seconds = report->value("elapsed_us", 0.0) / 1e6;
  return r;
}

}  // namespace

void ServeThroughputSink(int fd, const std::string& token, const std::string& nonce) {
  StreamResult r = Drain(fd);
  Json rep = {{"nonce", nonce}, {"bytes", r.bytes}, {"elapsed_us", std::round(r.seconds * 1e6)}};
  (void)WriteControl(fd, static_cast<int>(wire::Type::kControlReply), rep, token);
}

void ServeThroughputSource(int fd, Micros duration) {
  Blast(fd, duration);
}

Result<ThroughputResult> RunThroughput(const std::string& target, const ThroughputOptions& o) {
  CK_RETURN_IF_ERROR(ValidateThroughputOptions(o));
  CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(target, "target"));
  CK_ASSIGN_OR_RETURN(SockAddr addr, Resolve(hp));
  ThroughputResult out;
  out.target = target;
  out.address = addr.ToString();
  out.reverse = o.reverse;
  out.streams.resize(static_cast<size_t>(o.streams));
  std::vector<std::thread> threads;
  for (int i = 0; i < o.streams; i++)
    threads.emplace_back([&, i] { out.streams[static_cast<size_t>(i)] = RunStream(addr, o); });
  for (auto& t : threads) t.join();
  for (const auto& s : out.streams) {
    if (!s.error.empty()) return Status::Failure("throughput to " + target + ": " + s.error);
    out.bytes += s.bytes;
    out.seconds = std::max(out.seconds, s.seconds);
    out.bits_per_second += s.bits_per_second();
  }
  return out;
}

Json ThroughputToJson(const ThroughputResult& r) {
  Json j = {{"target", r.target},
            {"address", r.address},
            {"direction", r.reverse ? "download" : "upload"},
            {"bytes", r.bytes},
            {"seconds", std::round(r.seconds * 1e6) / 1e6},
            {"bits_per_second", std::round(r.bits_per_second)},
            {"streams", Json::array()}};
  for (size_t i = 0; i < r.streams.size(); i++)
    j["streams"].push_back({{"stream", i + 1},
                            {"bytes", r.streams[i].bytes},
                            {"seconds", std::round(r.streams[i].seconds * 1e6) / 1e6},
                            {"bits_per_second", std::round(r.streams[i].bits_per_second())}});
  return j;
}

}  // namespace cloudkeep::latency
