#include "latency/prober.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "latency/net.h"
#include "latency/wire.h"

namespace cloudkeep::latency {

Result<Proto> ParseProto(const std::string& text) {
  if (text == "udp") return Proto::kUdp;
  if (text == "tcp") return Proto::kTcp;
  if (text == "icmp") return Proto::kIcmp;
  return Status::Usage("--proto '" + text + "' is not one of udp, tcp, icmp");
}

const char* ProtoName(Proto p) {
  switch (p) {
    case Proto::kUdp:
      return "udp";
    case Proto::kTcp:
      return "tcp";
    case Proto::kIcmp:
      return "icmp";
  }
  return "?";
}

Status ValidateProbeOptions(const ProbeOptions& o) {
  if (o.count < 1 || o.count > 10000000)
    return Status::Usage("--count '" + std::to_string(o.count) + "' must be 1..10000000");
  if (o.warmup < 0 || o.warmup > 1000)
    return Status::Usage("--warmup '" + std::to_string(o.warmup) + "' must be 0..1000");
  if (o.interval.count() < 0 || o.interval > std::chrono::hours(1))
    return Status::Usage("--interval '" + FormatDuration(o.interval) + "' must be 0..1h");
  if (o.timeout.count() < 1000 || o.timeout > std::chrono::minutes(1))
    return Status::Usage("--timeout '" + FormatDuration(o.timeout) + "' must be 1ms..1m");
  size_t min = o.proto == Proto::kIcmp ? 16 : wire::kProbeHeader;
  if (o.size < min || o.size > wire::kMaxProbe)
    return Status::Usage("--size '" + std::to_string(o.size) + "' must be " + std::to_string(min) +
                         ".." + std::to_string(wire::kMaxProbe));
  return Status::Ok();
}

namespace {

uint32_t RandomSession() {
  std::random_device rd;
  return rd();
}

void SleepUntilMono(uint64_t t) {
  uint64_t now = MonoNs();
  if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
}

uint64_t TsNs(const timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// What a datagram protocol (our UDP format or ICMP echo) must provide to the
// common send/receive loop.
struct Codec {
  // Builds request number `seq` into buf; returns its length.
  std::function<size_t(uint32_t seq, uint8_t* buf)> build;
  // The seq a received datagram answers, if it is an answer to us.
  std::function<std::optional<uint32_t>(const uint8_t* buf, size_t len)> match;
  uint32_t seq_mask = 0xffffffff;  // ICMP echo carries 16 bits of it
};

// One datagram socket with kernel timestamps; collects samples.
//
// Between taking the send time and the receive time the prober makes
// exactly two system calls, send() and a blocking recvmsg() bounded by
// SO_RCVTIMEO, as sockperf's ping-pong does: no poll() in between, and the
// timestamp error queue is read only after the reply is in. (An error-queue
// entry makes poll() return at once, which cost an extra wake-up per probe.)
class DgramSession {
 public:
  DgramSession(int fd, bool timestamps, Micros timeout) : fd_(fd), timeout_(timeout) {
    if (timestamps) {
      int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE |
                  SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
      kernel_ = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0;
    }
    SetReceiveTimeout(timeout_);
  }
  bool kernel() const { return kernel_; }

  // Sends one request; returns false if the send itself failed.
  bool Send(const uint8_t* buf, size_t len, uint64_t* user_tx) {
    *user_tx = MonoNs();
    ssize_t n = send(fd_, buf, len, 0);
    if (n < 0) return false;
    send_index_++;
    return true;
  }
  uint32_t last_send_id() const { return send_index_ - 1; }

  // Waits until `deadline` (monotonic) for the answer to `seq`. On success
  // fills the user-space receive time and the kernel receive time (0 if none).
  bool Await(const Codec& codec, uint32_t seq, uint64_t deadline, uint64_t* user_rx,
             uint64_t* kernel_rx) {
    uint8_t buf[wire::kMaxProbe + 128];
    alignas(cmsghdr) char control[512];
    for (;;) {
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(fd_, &msg, 0);
      uint64_t t = MonoNs();
      bool ours = false;
      if (n >= 0) {
        auto got = codec.match(buf, static_cast<size_t>(n));
        // Otherwise a late answer to an earlier probe, or not ours.
        ours = got && (*got & codec.seq_mask) == (seq & codec.seq_mask);
      }
      // n < 0: the timeout (EAGAIN), a signal, or ECONNREFUSED from an ICMP
      // port unreachable (that one is a loss: keep waiting until the deadline).
      if (ours) {
        *user_rx = t;
        *kernel_rx = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
            scm_timestamping ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *kernel_rx = TsNs(ts.ts[0]);
          }
        }
        if (shortened_) SetReceiveTimeout(timeout_);
        return true;
      }
      if (t >= deadline) {
        if (shortened_) SetReceiveTimeout(timeout_);
        return false;
      }
      // Wait only for what is left of this probe's timeout.
      SetReceiveTimeout(Micros(std::max<uint64_t>(1, (deadline - t) / 1000)));
      shortened_ = true;
    }
  }

  // The kernel send time of send number `id`, 0 if the kernel did not report it.
  uint64_t KernelTx(uint32_t id) {
    if (!kernel_) return 0;  // nothing is queued: no system call for it
    DrainErrQueue(id);
    auto it = tx_.find(id);
    if (it == tx_.end()) return 0;
    uint64_t v = it->second;
    tx_.erase(tx_.begin(), std::next(it));
    return v;
  }

 private:
  // Reads timestamps off the error queue until send `want`'s is in, or the queue is empty.
  void DrainErrQueue(uint32_t want) {
    while (!tx_.contains(want)) {
      alignas(cmsghdr) char control[512];
      uint8_t data[64];
      iovec iov{data, sizeof data};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      if (recvmsg(fd_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
      uint64_t ts = 0;
      std::optional<uint32_t> id;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
          scm_timestamping t;
          std::memcpy(&t, CMSG_DATA(c), sizeof t);
          ts = TsNs(t.ts[0]);
        } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                   (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
          sock_extended_err ee;
          std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
          if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING)
            id = ee.ee_data;  // OPT_ID: the send's number
        }
      }
      if (ts && id) tx_[*id] = ts;
      if (tx_.size() > 4096) tx_.erase(tx_.begin());
    }
  }

  void SetReceiveTimeout(Micros t) {
    timeval tv{static_cast<time_t>(t.count() / 1000000),
               static_cast<suseconds_t>(t.count() % 1000000)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    shortened_ = false;
  }

  int fd_;
  Micros timeout_;
  bool shortened_ = false;
  bool kernel_ = false;
  uint32_t send_index_ = 0;
  std::map<uint32_t, uint64_t> tx_;
};

struct Collected {
  std::vector<double> kernel_us, user_us;
  uint64_t sent = 0;
  bool all_kernel = true;
};

void RunDgram(DgramSession& s, const Codec& codec, const ProbeOptions& o, uint32_t first_seq,
              Collected* out) {
  uint8_t buf[wire::kMaxProbe];
  uint64_t interval = static_cast<uint64_t>(o.interval.count()) * 1000;
  uint64_t timeout = static_cast<uint64_t>(o.timeout.count()) * 1000;
  uint64_t next = MonoNs();
  for (int i = 0; i < o.warmup + o.count; i++) {
    SleepUntilMono(next);
    uint32_t seq = first_seq + static_cast<uint32_t>(i);
    size_t len = codec.build(seq, buf);
    uint64_t utx = 0, urx = 0, krx = 0;
    bool measured = i >= o.warmup;
    if (measured) out->sent++;
    next = MonoNs() + interval;
    if (!s.Send(buf, len, &utx)) {
      SleepUntilMono(utx + std::min(timeout, interval));  // unreachable network: do not spin
      continue;
    }
    uint32_t id = s.last_send_id();
    if (!s.Await(codec, seq, utx + timeout, &urx, &krx)) continue;
    uint64_t ktx = s.KernelTx(id);
    if (!measured) continue;
    out->user_us.push_back(static_cast<double>(urx - utx) / 1000.0);
    if (ktx && krx && krx >= ktx)
      out->kernel_us.push_back(static_cast<double>(krx - ktx) / 1000.0);
    else
      out->all_kernel = false;
  }
}

void Finish(const Collected& c, const ProbeOptions& o, TargetResult* r) {
  bool kernel = c.all_kernel && !c.user_us.empty() && c.kernel_us.size() == c.user_us.size();
  const auto& primary = kernel ? c.kernel_us : c.user_us;
  r->timestamps = kernel ? "kernel" : "user";
  r->rtt = Summarize(primary, c.sent);
  if (kernel) r->user_rtt = Summarize(c.user_us, c.sent);
  if (o.keep_samples) r->samples_us = primary;
  if (c.user_us.empty()) r->timestamps = "none";
}

Result<UniqueFd> DgramSocket(const SockAddr& addr, int type, int proto) {
  UniqueFd fd(socket(addr.family(), type | SOCK_CLOEXEC, proto));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  if (connect(fd.get(), addr.sa(), addr.len) != 0)
    return Status::FromErrno("connect to " + addr.ToString(), errno);
  return fd;
}

void ProbeUdp(const SockAddr& addr, const ProbeOptions& o, TargetResult* r) {
  auto fd = DgramSocket(addr, SOCK_DGRAM, 0);
  if (!fd.ok()) {
    r->error = fd.status().message();
    return;
  }
  DgramSession s(fd->get(), o.kernel_timestamps, o.timeout);
  uint32_t session = RandomSession();
  // The hello learns the responder's name and zone; it is also the first
  // packet, so it warms ARP and the route like the warmup does.
  {
    uint8_t buf[160];
    wire::Probe p;
    p.type = wire::Type::kHello;
    p.length = sizeof buf;
    p.session = session;
    p.seq = 0;
    wire::EncodeProbe(p, buf);
    uint64_t utx, urx, krx;
    std::optional<wire::Identity> id;
    Codec hello{nullptr, [&](const uint8_t* b, size_t n) -> std::optional<uint32_t> {
                  auto got = wire::DecodeProbe({b, n});
                  if (!got || got->type != wire::Type::kHelloReply || got->session != session)
                    return std::nullopt;
                  id = wire::DecodeHelloReply({b, n});
                  return got->seq;
                }};
    if (s.Send(buf, sizeof buf, &utx) &&
        s.Await(hello, 0, utx + static_cast<uint64_t>(o.timeout.count()) * 1000, &urx, &krx) &&
        id) {
      r->name = id->name;
      r->zone = id->zone;
    }
    s.KernelTx(s.last_send_id());
  }
  Codec codec{[&](uint32_t seq, uint8_t* buf) {
                wire::Probe p;
                p.length = static_cast<uint16_t>(o.size);
                p.seq = seq;
                p.session = session;
                p.client_ns = MonoNs();
                wire::EncodeProbe(p, {buf, o.size});
                return o.size;
              },
              [&](const uint8_t* b, size_t n) -> std::optional<uint32_t> {
                auto got = wire::DecodeProbe({b, n});
                if (!got || got->type != wire::Type::kReply || got->session != session)
                  return std::nullopt;
                return got->seq;
              }};
  Collected c;
  RunDgram(s, codec, o, 1, &c);
  Finish(c, o, r);
}

uint16_t InetChecksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void ProbeIcmp(const SockAddr& addr, const ProbeOptions& o, TargetResult* r) {
  bool v6 = addr.family() == AF_INET6;
  int proto = v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  // Ping sockets (Linux 3.0+) need no privilege when the group is in
  // net.ipv4.ping_group_range; the kernel then owns the echo identifier.
  bool raw = false;
  auto fd = DgramSocket(addr, SOCK_DGRAM, proto);
  if (!fd.ok()) {
    fd = DgramSocket(addr, SOCK_RAW, proto);
    raw = true;
  }
  if (!fd.ok()) {
    r->error = "icmp needs net.ipv4.ping_group_range to include this group, or root: " +
               fd.status().message();
    return;
  }
  uint16_t ident = static_cast<uint16_t>(RandomSession());
  uint8_t req = v6 ? uint8_t{ICMP6_ECHO_REQUEST} : uint8_t{ICMP_ECHO};
  uint8_t rep = v6 ? uint8_t{ICMP6_ECHO_REPLY} : uint8_t{ICMP_ECHOREPLY};
  DgramSession s(fd->get(), o.kernel_timestamps, o.timeout);
  Codec codec{[&](uint32_t seq, uint8_t* buf) {
                size_t n = o.size;
                std::memset(buf, 0, n);
                buf[0] = req;
                buf[4] = static_cast<uint8_t>(ident >> 8);
                buf[5] = static_cast<uint8_t>(ident);
                buf[6] = static_cast<uint8_t>(seq >> 8);
                buf[7] = static_cast<uint8_t>(seq);
                // RFC 792: checksum over the ICMP message. ICMPv6 (RFC 4443
                // section 2.3) includes a pseudo-header the kernel fills in.
                if (!v6) {
                  uint16_t ck = InetChecksum(buf, n);
                  buf[2] = static_cast<uint8_t>(ck >> 8);
                  buf[3] = static_cast<uint8_t>(ck);
                }
                return n;
              },
              [&](const uint8_t* b, size_t n) -> std::optional<uint32_t> {
                if (raw && !v6) {  // a raw IPv4 socket delivers the IP header too
                  if (n < 20) return std::nullopt;
                  size_t ihl = static_cast<size_t>(b[0] & 0x0f) * 4;
                  if (ihl < 20 || n < ihl) return std::nullopt;
                  b += ihl;
                  n -= ihl;
                }
                if (n < 8 || b[0] != rep) return std::nullopt;
                if (raw && static_cast<uint16_t>(b[4] << 8 | b[5]) != ident) return std::nullopt;
                return static_cast<uint32_t>(b[6] << 8 | b[7]);
              }};
  // Sequence numbers are 16 bits on the wire; longer runs wrap, and matching
  // stays correct because only the current probe is awaited.
  codec.seq_mask = 0xffff;
  Collected got;
  RunDgram(s, codec, o, 1, &got);
  Finish(got, o, r);
}

void ProbeTcp(const SockAddr& addr, const ProbeOptions& o, TargetResult* r) {
  Collected c;
  c.all_kernel = false;
  uint64_t t0 = MonoNs();
  auto fd = ConnectTcp(addr, o.timeout);
  if (!fd.ok()) {
    r->error = fd.status().message();
    c.sent = static_cast<uint64_t>(o.count);
    Finish(c, o, r);
    return;
  }
  r->connect_us = static_cast<double>(MonoNs() - t0) / 1000.0;
  uint32_t session = RandomSession();
  std::vector<uint8_t> buf(std::max<size_t>(o.size, 160));
  bool alive = true;
  {
    wire::Probe p;
    p.type = wire::Type::kHello;
    p.length = 160;
    p.session = session;
    wire::EncodeProbe(p, {buf.data(), 160});
    if (WriteFull(fd->get(), buf.data(), 160).ok() && ReadFull(fd->get(), buf.data(), 160).ok()) {
      if (auto id = wire::DecodeHelloReply({buf.data(), 160})) {
        r->name = id->name;
        r->zone = id->zone;
      }
    } else {
      alive = false;
    }
  }
  uint64_t interval = static_cast<uint64_t>(o.interval.count()) * 1000;
  uint64_t next = MonoNs();
  for (int i = 0; i < o.warmup + o.count; i++) {
    bool measured = i >= o.warmup;
    if (measured) c.sent++;
    if (!alive) continue;  // a timed-out stream is out of step: the rest count as lost
    SleepUntilMono(next);
    next = MonoNs() + interval;
    wire::Probe p;
    p.length = static_cast<uint16_t>(o.size);
    p.seq = static_cast<uint32_t>(i + 1);
    p.session = session;
    wire::EncodeProbe(p, {buf.data(), o.size});
    uint64_t tx = MonoNs();
    if (!WriteFull(fd->get(), buf.data(), o.size).ok() ||
        !ReadFull(fd->get(), buf.data(), o.size).ok()) {
      alive = false;
      continue;
    }
    uint64_t rx = MonoNs();
    auto got = wire::DecodeProbe({buf.data(), o.size});
    if (!got || got->type != wire::Type::kReply || got->seq != p.seq) {
      alive = false;
      continue;
    }
    if (measured) c.user_us.push_back(static_cast<double>(rx - tx) / 1000.0);
  }
  Finish(c, o, r);
}

}  // namespace

TargetResult ProbeTarget(const std::string& target, const ProbeOptions& o) {
  TargetResult r;
  r.target = target;
  r.timestamps = "none";
  r.rtt.sent = static_cast<uint64_t>(o.count);
  auto hp = ParseHostPort(target, "target");
  if (!hp.ok()) {
    r.error = hp.status().message();
    return r;
  }
  auto addr = Resolve(*hp);
  if (!addr.ok()) {
    r.error = addr.status().message();
    return r;
  }
  r.address = addr->ToString();
  switch (o.proto) {
    case Proto::kUdp:
      ProbeUdp(*addr, o, &r);
      break;
    case Proto::kTcp:
      ProbeTcp(*addr, o, &r);
      break;
    case Proto::kIcmp:
      ProbeIcmp(*addr, o, &r);
      break;
  }
  if (r.rtt.sent == 0) r.rtt.sent = static_cast<uint64_t>(o.count);
  return r;
}

std::vector<TargetResult> ProbeTargets(const std::vector<std::string>& targets,
                                       const ProbeOptions& o) {
  std::vector<TargetResult> out(targets.size());
  if (targets.size() == 1) {
    out[0] = ProbeTarget(targets[0], o);
    return out;
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < targets.size(); i++)
    threads.emplace_back([&, i] { out[i] = ProbeTarget(targets[i], o); });
  for (auto& t : threads) t.join();
  return out;
}

Json TargetResultToJson(const TargetResult& r) {
  Json j = {{"target", r.target},
            {"address", r.address},
            {"name", r.name},
            {"zone", r.zone},
            {"timestamps", r.timestamps}};
  j.update(SummaryToJson(r.rtt));
  if (r.user_rtt) j["user_space"] = SummaryToJson(*r.user_rtt);
  if (r.connect_us) j["connect_us"] = std::round(*r.connect_us * 1000) / 1000;
  if (!r.samples_us.empty()) j["samples_us"] = r.samples_us;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

TargetResult TargetResultFromJson(const Json& j) {
  TargetResult r;
  r.target = j.value("target", "");
  r.address = j.value("address", "");
  r.name = j.value("name", "");
  r.zone = j.value("zone", "");
  r.timestamps = j.value("timestamps", "");
  r.error = j.value("error", "");
  uint64_t sent = j.value("sent", uint64_t{0});
  if (j.contains("samples_us") && j["samples_us"].is_array())
    for (const auto& v : j["samples_us"])
      if (v.is_number()) r.samples_us.push_back(v.get<double>());
  r.rtt = Summarize(r.samples_us, sent);
  return r;
}

}  // namespace cloudkeep::latency
