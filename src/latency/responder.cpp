#include "latency/responder.h"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

#include "core/log.h"
#include "latency/prober.h"
#include "latency/throughput.h"
#include "latency/wire.h"

namespace cloudkeep::latency {

bool TakeToken(BucketState& s, double rate, double burst, uint64_t now) {
  if (rate <= 0) return true;
  if (s.last_ns == 0) {
    s.tokens = burst;
    s.last_ns = now;
  }
  if (now > s.last_ns) {
    s.tokens = std::min(burst, s.tokens + static_cast<double>(now - s.last_ns) * rate / 1e9);
    s.last_ns = now;
  }
  if (s.tokens < 1) return false;
  s.tokens -= 1;
  return true;
}

bool TokenBucket::Take(uint64_t now) {
  if (rate_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return TakeToken(state_, rate_, burst_, now);
}

SourceRateLimiter::SourceRateLimiter(double rate, double burst, size_t slots)
    : rate_(rate), burst_(burst), seed_(std::random_device{}()), slots_(rate > 0 ? slots : 0) {}

bool SourceRateLimiter::Take(const sockaddr_storage& from, uint64_t now) {
  if (rate_ <= 0) return true;
  std::array<uint8_t, 17> key{};
  if (from.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(from).sin_addr;
    key[0] = 4;
    std::memcpy(&key[1], &a, 4);
  } else if (from.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(from).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(
            &a)) {  // IPv4 through a dual-stack socket: the same source as over IPv4
      key[0] = 4;
      std::memcpy(&key[1], &a.s6_addr[12], 4);
    } else {
      key[0] = 6;
      std::memcpy(&key[1], &a.s6_addr[0], 8);
    }
  }
  // FNV-1a, seeded: the slot a source lands in is not predictable from outside.
  uint64_t h = 1469598103934665603ull ^ seed_;
  for (uint8_t b : key) h = (h ^ b) * 1099511628211ull;
  Slot& slot = slots_[h % slots_.size()];
  if (slot.key != key) {
    slot.key = key;
    slot.bucket = {};
  }
  return TakeToken(slot.bucket, rate_, burst_, now);
}

Responder::Responder(ResponderOptions opts)
    : opts_(std::move(opts)), bucket_(opts_.rate, std::max(1.0, opts_.burst)) {}

Responder::~Responder() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    for (int fd : conn_fds_) shutdown(fd, SHUT_RDWR);
  }
  // Connection threads hold `this`; they end once their sockets are shut down
  // (a mesh run in progress finishes its bounded probe schedule first).
  while (connections_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

namespace {

// UDP sockets block (each has a thread of its own); the TCP listener does not.
Result<UniqueFd> BindSocket(const SockAddr& addr, int type) {
  UniqueFd fd(
      socket(addr.family(), type | SOCK_CLOEXEC | (type == SOCK_STREAM ? SOCK_NONBLOCK : 0), 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  int one = 1, zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // "[::]" serves IPv4 too (as v4-mapped addresses, RFC 4291 section 2.5.5.2).
  if (addr.family() == AF_INET6)
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(fd.get(), addr.sa(), addr.len) != 0)
    return Status::FromErrno("bind " + addr.ToString(), errno);
  if (type == SOCK_STREAM && listen(fd.get(), 128) != 0) return Status::FromErrno("listen", errno);
  return fd;
}

}  // namespace

Result<std::unique_ptr<Responder>> Responder::Start(ResponderOptions opts) {
  bool defaulted = opts.listen.empty();
  if (defaulted) opts.listen = {"[::]:" + std::to_string(kDefaultPort)};
  std::unique_ptr<Responder> r(new Responder(opts));
  for (const auto& l : r->opts_.listen) {
    CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(l, "--listen", /*allow_port_zero=*/true));
    CK_ASSIGN_OR_RETURN(SockAddr addr, Resolve(hp));
    auto udp = BindSocket(addr, SOCK_DGRAM);
    if (!udp.ok() && defaulted && addr.family() == AF_INET6) {
      // A host with IPv6 disabled: fall back to IPv4 only.
      hp.host = "0.0.0.0";
      CK_ASSIGN_OR_RETURN(addr, Resolve(hp));
      udp = BindSocket(addr, SOCK_DGRAM);
    }
    if (!udp.ok()) return udp.status();
    // Port 0 asks for any port; TCP then takes the same number as UDP.
    SockAddr actual;
    actual.len = sizeof actual.ss;
    getsockname(udp->get(), actual.sa(), &actual.len);
    CK_ASSIGN_OR_RETURN(UniqueFd tcp, BindSocket(actual, SOCK_STREAM));
    r->udp_.push_back(std::move(*udp));
    r->tcp_.push_back(std::move(tcp));
    r->bound_.push_back(actual);
  }
  r->wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->wake_.valid()) return Status::FromErrno("eventfd", errno);
  return r;
}

std::vector<std::string> Responder::bound() const {
  std::vector<std::string> out;
  for (const auto& a : bound_) out.push_back(a.ToString());
  return out;
}

void Responder::Stop() {
  stopping_.store(true);
  uint64_t one = 1;
  if (wake_.valid()) (void)!write(wake_.get(), &one, sizeof one);
}

Status Responder::Run() {
  std::vector<std::thread> udp_threads;
  for (auto& u : udp_) udp_threads.emplace_back([this, fd = u.get()] { ServeUdp(fd); });
  std::vector<pollfd> fds;
  fds.push_back({wake_.get(), POLLIN, 0});
  for (auto& t : tcp_) fds.push_back({t.get(), POLLIN, 0});
  Status result = Status::Ok();
  while (!stopping_.load()) {
    int n = poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = Status::FromErrno("poll", errno);
      stopping_.store(true);
      break;
    }
    if (fds[0].revents) break;
    for (size_t i = 0; i < tcp_.size(); i++) {
      if (!(fds[1 + i].revents & POLLIN)) continue;
      int c = accept4(tcp_[i].get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      UniqueFd conn(c);
      if (connections_.load() >= opts_.max_connections) continue;  // closed: over the cap
      connections_++;
      {
        std::lock_guard<std::mutex> lock(conn_mu_);
        conn_fds_.push_back(c);
      }
      std::thread([this, conn = std::move(conn)]() mutable {
        int raw = conn.get();
        ServeTcp(std::move(conn));
        {
          std::lock_guard<std::mutex> lock(conn_mu_);
          conn_fds_.erase(std::find(conn_fds_.begin(), conn_fds_.end(), raw));
        }
        connections_--;
      }).detach();
    }
  }
  // shutdown() wakes a thread blocked in recvmmsg on the socket, also on an
  // unconnected UDP socket (it reports ENOTCONN but marks the socket shut).
  for (auto& u : udp_) shutdown(u.get(), SHUT_RDWR);
  for (auto& t : udp_threads) t.join();
  return result;
}

void Responder::ServeUdp(int fd) {
  // A blocking recvmmsg that returns once one datagram is in (MSG_WAITFORONE)
  // takes whatever else is queued in the same call: at a steady 1,000 probes
  // a second that is one call to wake and receive and one to answer, and a
  // flood is absorbed 32 datagrams per call.
  constexpr int kBatch = 32;
  std::vector<uint8_t> storage(kBatch * (wire::kMaxProbe + 1));
  SourceRateLimiter per_source(opts_.rate_per_source, std::max(1.0, opts_.burst_per_source));
  mmsghdr in[kBatch] = {};
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  mmsghdr out[kBatch] = {};
  iovec oiov[kBatch];
  while (!stopping_.load()) {
    for (int i = 0; i < kBatch; i++) {
      // One byte more than the largest probe, so an oversized datagram shows
      // up as too long (or truncated) instead of looking well-formed.
      iov[i] = {storage.data() + static_cast<size_t>(i) * (wire::kMaxProbe + 1),
                wire::kMaxProbe + 1};
      in[i].msg_hdr.msg_iov = &iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &from[i];
      in[i].msg_hdr.msg_namelen = sizeof from[i];
      in[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, in, kBatch, MSG_WAITFORONE, nullptr);
    // After the shutdown() in Run() the call returns one empty "datagram":
    // not a probe, so not counted as a malformed one.
    if (stopping_.load()) return;
    if (n <= 0) {
      // ICMP errors for earlier replies (a prober that went away) and signals
      // surface here; anything else persistent is worth a pause, not a spin.
      if (n < 0 && errno != EINTR && errno != ECONNREFUSED && errno != EAGAIN)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    int m = 0;
    uint64_t now_ns = MonoNs();
    uint64_t real_ns = RealNs();
    for (int i = 0; i < n; i++) {
      size_t len = in[i].msg_len;
      if (in[i].msg_hdr.msg_flags & MSG_TRUNC) len = 0;
      std::span<uint8_t> msg(static_cast<uint8_t*>(iov[i].iov_base), len);
      if (len == 0 || !wire::MakeReply(msg, real_ns, opts_.name, opts_.zone)) {
        counters_.malformed++;
        continue;
      }
      if (!per_source.Take(from[i], now_ns) || !bucket_.Take(now_ns)) {
        counters_.rate_limited++;
        continue;
      }
      oiov[m] = {msg.data(), len};
      out[m].msg_hdr = {};
      out[m].msg_hdr.msg_iov = &oiov[m];
      out[m].msg_hdr.msg_iovlen = 1;
      out[m].msg_hdr.msg_name = &from[i];
      out[m].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
      m++;
    }
    if (m > 0) {
      // MSG_DONTWAIT: a full send buffer drops replies (as a router would)
      // rather than stall the receive loop.
      int sent = sendmmsg(fd, out, static_cast<unsigned>(m), MSG_DONTWAIT);
      if (sent > 0) counters_.answered += static_cast<uint64_t>(sent);
    }
  }
}

void Responder::ServeTcp(UniqueFd conn) {
  int fd = conn.get();
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SetSocketTimeouts(fd, opts_.idle_timeout);
  uint8_t head[6];
  ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_WAITALL);
  if (n != static_cast<ssize_t>(sizeof head)) return;
  auto type = wire::PeekType({head, sizeof head});
  if (!type) {
    counters_.malformed++;
    return;
  }
  if (*type == wire::Type::kProbe || *type == wire::Type::kHello)
    ServeProbeStream(fd);
  else if (*type == wire::Type::kControl)
    ServeControl(fd);
  else
    counters_.malformed++;
}

void Responder::ServeProbeStream(int fd) {
  std::vector<uint8_t> buf(wire::kMaxProbe);
  BucketState connection;  // one connection has one source
  while (!stopping_.load()) {
    if (!ReadFull(fd, buf.data(), wire::kProbeHeader).ok()) return;
    auto p = wire::DecodeProbe({buf.data(), wire::kProbeHeader}, /*stream=*/true);
    if (!p) {
      counters_.malformed++;
      return;  // the stream is out of step; nothing after this can be trusted
    }
    if (p->length > wire::kProbeHeader &&
        !ReadFull(fd, buf.data() + wire::kProbeHeader, p->length - wire::kProbeHeader).ok())
      return;
    if (!wire::MakeReply({buf.data(), p->length}, RealNs(), opts_.name, opts_.zone)) {
      counters_.malformed++;
      return;
    }
    // TCP cannot drop a reply without losing step, so over the rate the
    // connection waits: the prober sees the limit as latency, not loss.
    auto wait_for = [&](auto take) {
      while (!take()) {
        counters_.rate_limited++;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    };
    wait_for([&] {
      return TakeToken(connection, opts_.rate_per_source, std::max(1.0, opts_.burst_per_source),
                       MonoNs());
    });
    wait_for([&] { return bucket_.Take(MonoNs()); });
    if (!WriteFull(fd, buf.data(), p->length).ok()) return;
    counters_.answered++;
  }
}

namespace {

Result<ProbeOptions> ProbeOptionsFromJson(const Json& j) {
  ProbeOptions o;
  o.keep_samples = true;
  try {
    CK_ASSIGN_OR_RETURN(o.proto, ParseProto(j.value("proto", "udp")));
    o.count = j.value("count", 10);
    o.warmup = j.value("warmup", 1);
    o.size = j.value("size", size_t{64});
    o.interval = Micros(j.value("interval_us", int64_t{200000}));
    o.timeout = Micros(j.value("timeout_us", int64_t{1000000}));
    std::string clock = j.value("clock", "kernel");
    if (clock != "kernel" && clock != "user")
      return Status::Failure("clock must be kernel or user");
    o.kernel_timestamps = clock == "kernel";
  } catch (const std::exception&) {
    return Status::Failure("malformed probe options");
  }
  auto st = ValidateProbeOptions(o);
  if (!st.ok()) return Status::Failure(st.message());
  // An agent runs what the mesh asks only within what a mesh needs.
  if (o.count > 100000) return Status::Failure("count above 100000");
  return o;
}

}  // namespace

void Responder::ServeControl(int fd) {
  auto req = ReadControl(fd, opts_.token, static_cast<int>(wire::Type::kControl));
  auto answer = [&](Json rep) {
    (void)WriteControl(fd, static_cast<int>(wire::Type::kControlReply), rep, opts_.token);
  };
  if (!req.ok()) {
    counters_.control_refused++;
    log::Warn("refused a control request: {}", req.status().message());
    // Answered with this agent's key: a client with another token cannot
    // verify it and says so, which is the message it needs.
    answer({{"error", req.status().message()}});
    return;
  }
  std::string nonce = req->value("nonce", "");
  auto refuse = [&](const std::string& why) {
    counters_.control_refused++;
    log::Warn("refused a control request: {}", why);
    answer({{"nonce", nonce}, {"error", why}});
  };
  Status fresh = replay_.Check(*req, static_cast<int64_t>(std::time(nullptr)));
  if (!fresh.ok()) return refuse(fresh.message());
  std::string op = req->value("op", "");
  if (op == "hello") {
    answer({{"nonce", nonce},
            {"name", opts_.name},
            {"zone", opts_.zone},
            {"version", wire::kVersion}});
    return;
  }
  if (op == "throughput") {
    std::string dir = req->value("direction", "");
    int64_t us = (*req).value("duration_us", int64_t{0});
    if ((dir != "upload" && dir != "download") || us <= 0 || Micros(us) > kMaxThroughputDuration)
      return refuse("bad throughput request");
    answer({{"nonce", nonce}, {"ok", true}});
    SetSocketTimeouts(fd, Micros(us) + opts_.idle_timeout);
    if (dir == "upload")
      ServeThroughputSink(fd, opts_.token, nonce);
    else
      ServeThroughputSource(fd, Micros(us));
    return;
  }
  // The operations below make this host send to others: mesh members only.
  if (opts_.token.empty())
    return refuse("this agent has no mesh token (--token-file or CLOUDKEEP_MESH_TOKEN)");
  if (op == "run") {
    auto po = ProbeOptionsFromJson(*req);
    if (!po.ok()) return refuse(po.status().message());
    std::vector<std::string> targets;
    if (!req->contains("targets") || !(*req)["targets"].is_array() ||
        (*req)["targets"].size() > 1024)
      return refuse("run needs a list of at most 1024 targets");
    for (const auto& t : (*req)["targets"]) {
      if (!t.is_string()) return refuse("targets must be strings");
      targets.push_back(t.get<std::string>());
    }
    // The run may take longer than the idle timeout; the mesh waits for it.
    auto results = ProbeTargets(targets, *po);
    Json rep = {
        {"nonce", nonce}, {"name", opts_.name}, {"zone", opts_.zone}, {"results", Json::array()}};
    for (const auto& r : results) rep["results"].push_back(TargetResultToJson(r));
    answer(rep);
    return;
  }
  if (op == "throughput_run") {
    ThroughputOptions to;
    to.token = opts_.token;
    to.streams = req->value("streams", 1);
    to.duration = Micros(req->value("duration_us", int64_t{2000000}));
    to.reverse = req->value("reverse", false);
    if (!ValidateThroughputOptions(to).ok()) return refuse("bad throughput_run options");
    auto r = RunThroughput(req->value("target", ""), to);
    if (!r.ok()) return answer({{"nonce", nonce}, {"error", r.status().message()}});
    Json rep = ThroughputToJson(*r);
    rep["nonce"] = nonce;
    answer(rep);
    return;
  }
  refuse("unknown operation '" + op.substr(0, 40) + "'");
}

}  // namespace cloudkeep::latency
