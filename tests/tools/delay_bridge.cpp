// delay_bridge: a user-space wire with a fixed one-way delay between two
// network interfaces, for the tests and benchmarks that need latency between
// network namespaces (tests/integration/test_latency_netns.sh,
// tests/integration/test_mirror_slowlink.sh, bench/mirror.sh). Test tool,
// not part of the product, not installed.
//
// Why it exists: the usual way, `tc qdisc add dev X root netem delay 1ms`,
// needs sch_netem, and the kernel on the machines these tests run on is built
// without it. So a "wire" namespace holds one end of each host's veth pair,
// and this program forwards every Ethernet frame from one end to the other
// after the delay. It replaces a Python forwarder that topped out at about
// 25 MB/s of TCP, which made the link, not the code under test, the limit.
//
//   delay_bridge IFACE_A IFACE_B DELAY_SECONDS [--rate MBIT] [--drop-port N]...
//
// Run as root in the namespace holding both interfaces. Every frame that
// arrives on one interface leaves the other DELAY_SECONDS later (0.00025 =
// 0.25 ms), in order. --rate emulates a link of MBIT Mbit/s as well: frames
// are serialised one after the other at that rate, the queue in front of the
// link holds 20 ms (at least 64 KiB) and drops at its tail beyond that.
// --drop-port N silently drops every TCP segment to or from port N (IPv4 and
// IPv6 without extension headers), in both directions, as a cloud provider's
// port-25 block does: SYNs vanish, no RST, no ICMP (test_mail_egress.sh).
// Frames above the egress interface's MTU are dropped, as a real link would;
// so the hosts' veth ends want `gso_max_size 1500`, or TCP's 64 KiB GSO
// frames never get through. Prints one line "forwarding ..." on stderr once
// both interfaces are bound, runs until SIGTERM or SIGINT, then prints its
// counters and exits 0.
//
// Design: one thread per direction, each owning a FIFO ring of (due time,
// frame). A fixed delay keeps arrival order, so the head is always the next
// frame due and no heap is needed. The thread receives with recvmmsg straight
// into the ring's slots, sends with sendmmsg straight from them, and sleeps
// with clock_nanosleep(TIMER_ABSTIME) until the head is due. Frames that
// arrive while it sleeps wait in the socket buffer, and their due time is
// computed from the kernel's receive timestamp (SO_TIMESTAMPNS), so sleeping
// does not stretch their delay.
//
// veth leaves TCP and UDP checksums to "hardware" (CHECKSUM_PARTIAL): such
// frames come with TP_STATUS_CSUMNOTREADY in PACKET_AUXDATA and only the
// pseudo-header sum in the checksum field. A frame re-sent through a packet
// socket would keep that, so the receiver would drop it; the checksum is
// computed here (IPv4 and IPv6, TCP and UDP). A VLAN tag that the kernel
// moved to metadata (TP_STATUS_VLAN_VALID) is put back into the frame.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kBatch = 64;         // frames per recvmmsg / sendmmsg
constexpr size_t kHeadroom = 4;    // room to put a VLAN tag back in front
constexpr int kRcvBuf = 32 << 20;  // socket receive buffer: frames that arrive while asleep
constexpr int kSndBuf = 4 << 20;   //
constexpr int kIdlePollMs = 200;   // an idle thread rechecks the stop flag this often
constexpr int64_t kMaxTsAge = 100'000'000;  // a kernel timestamp older than 100 ms is not trusted

std::atomic<bool> g_stop{false};
std::atomic<bool> g_fatal{false};

void OnWake(int) {}  // SIGUSR1 only interrupts a blocking call

int64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// One's complement sum (RFC 1071) of n bytes in native byte order, added to
// acc; n is even except for the last call. Byte order does not matter as long
// as the result is stored back in native order.
uint64_t SumBytes(const uint8_t* p, size_t n, uint64_t acc) {
  while (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint8_t b[2] = {*p, 0};
    uint16_t w;
    memcpy(&w, b, 2);
    acc += w;
  }
  return acc;
}

uint16_t Fold(uint64_t acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

// Computes the TCP or UDP checksum of a frame the kernel left for the
// hardware to finish. Returns false when the frame is not IPv4/IPv6 TCP/UDP
// or is malformed (then it is forwarded unchanged, as the kernel gave it).
bool FixChecksum(uint8_t* f, size_t len) {
  if (len < 14) return false;
  size_t off = 12;
  uint16_t type = Be16(f + off);
  while ((type == ETH_P_8021Q || type == ETH_P_8021AD) && off + 6 <= len) {
    off += 4;
    type = Be16(f + off);
  }
  const size_t l3 = off + 2;
  uint8_t pseudo[40];
  size_t pseudo_len;
  size_t l4, end;
  uint8_t proto;
  if (type == ETH_P_IP) {
    if (len < l3 + 20) return false;
    const size_t ihl = (f[l3] & 15) * 4u;
    end = l3 + Be16(f + l3 + 2);
    l4 = l3 + ihl;
    proto = f[l3 + 9];
    if (ihl < 20 || end > len || l4 > end) return false;
    memcpy(pseudo, f + l3 + 12, 8);  // source and destination address
    pseudo[8] = 0;
    pseudo[9] = proto;
    pseudo[10] = static_cast<uint8_t>((end - l4) >> 8);
    pseudo[11] = static_cast<uint8_t>(end - l4);
    pseudo_len = 12;
  } else if (type == ETH_P_IPV6) {
    if (len < l3 + 40) return false;
    end = l3 + 40 + Be16(f + l3 + 4);
    l4 = l3 + 40;
    proto = f[l3 + 6];
    if (end > len) return false;
    // Hop-by-hop, routing and destination options headers precede TCP/UDP.
    while (proto == 0 || proto == 43 || proto == 60) {
      if (l4 + 8 > end) return false;
      proto = f[l4];
      l4 += (f[l4 + 1] + 1u) * 8;
    }
    if (l4 > end) return false;
    const uint32_t upper = htonl(static_cast<uint32_t>(end - l4));
    memcpy(pseudo, f + l3 + 8, 32);  // source and destination address
    memcpy(pseudo + 32, &upper, 4);
    pseudo[36] = pseudo[37] = pseudo[38] = 0;
    pseudo[39] = proto;
    pseudo_len = 40;
  } else {
    return false;
  }
  size_t field;
  if (proto == IPPROTO_TCP) {
    field = l4 + 16;
  } else if (proto == IPPROTO_UDP) {
    field = l4 + 6;
  } else {
    return false;
  }
  if (field + 2 > end) return false;
  f[field] = f[field + 1] = 0;
  uint16_t c = Fold(SumBytes(f + l4, end - l4, SumBytes(pseudo, pseudo_len, 0)));
  if (c == 0 && proto == IPPROTO_UDP) c = 0xffff;  // 0 means "no checksum" in UDP
  memcpy(f + field, &c, 2);
  return true;
}

struct Options {
  std::string iface[2];
  int64_t delay_ns = 0;
  double rate_bps = 0;               // 0: no bandwidth limit
  std::vector<uint16_t> drop_ports;  // TCP ports whose segments vanish
};

// True when the frame is a TCP segment to or from one of `ports`.
bool TcpPortDropped(const uint8_t* f, size_t len, const std::vector<uint16_t>& ports) {
  if (ports.empty() || len < 14) return false;
  size_t off = 12;
  uint16_t type = Be16(f + off);
  while ((type == ETH_P_8021Q || type == ETH_P_8021AD) && off + 6 <= len) {
    off += 4;
    type = Be16(f + off);
  }
  const size_t l3 = off + 2;
  size_t l4;
  if (type == ETH_P_IP) {
    if (len < l3 + 20 || f[l3 + 9] != IPPROTO_TCP) return false;
    l4 = l3 + (f[l3] & 15) * 4u;
  } else if (type == ETH_P_IPV6) {
    if (len < l3 + 40 || f[l3 + 6] != IPPROTO_TCP) return false;
    l4 = l3 + 40;
  } else {
    return false;
  }
  if (l4 + 4 > len) return false;
  const uint16_t src = Be16(f + l4), dst = Be16(f + l4 + 2);
  for (uint16_t p : ports)
    if (p == src || p == dst) return true;
  return false;
}

struct Counters {
  uint64_t forwarded = 0;
  uint64_t checksummed = 0;
  uint64_t over_mtu = 0;
  uint64_t rate_drops = 0;
  uint64_t port_drops = 0;  // --drop-port
  uint64_t send_errors = 0;
  uint64_t untimed = 0;     // no usable kernel receive timestamp: timed on reading
  int64_t late_sum_ns = 0;  // how long after its due time each frame was sent
  int64_t late_max_ns = 0;
};

// One direction: frames received on in_fd leave on out_fd after the delay.
class Direction {
 public:
  Direction(std::string name, int in_fd, int out_fd, int out_mtu, const Options& opt)
      : name_(std::move(name)), in_fd_(in_fd), out_fd_(out_fd), opt_(opt) {
    max_frame_ = static_cast<size_t>(out_mtu) + ETH_HLEN;
    // Slots hold the largest frame the egress accepts (+ a VLAN tag) and one
    // byte more, so that a larger one is seen as truncated and dropped.
    slot_size_ = (kHeadroom + max_frame_ + 4 + 1 + 63) & ~size_t{63};
    // Enough slots for the delay at about 1.5 M frames/s (beyond 10 Gbit/s
    // of full frames), within 4 Ki..64 Ki; pages are touched only when used.
    const double want = 1.5e6 * static_cast<double>(opt.delay_ns) / 1e9;
    size_t cap = 4096;
    while (cap < want && cap < 65536) cap *= 2;
    cap_ = cap;
    buf_.reset(new uint8_t[cap_ * slot_size_]);
    frames_.resize(cap_);
    if (opt.rate_bps > 0) {
      const double ns_per_byte = 8e9 / opt.rate_bps;
      ns_per_byte_ = ns_per_byte;
      rate_buffer_ns_ = std::max<int64_t>(20'000'000, std::llround(65536 * ns_per_byte));
    }
  }

  void Run() {
    while (!g_stop.load(std::memory_order_relaxed)) {
      SendDue(NowNs(CLOCK_MONOTONIC));
      if (!Receive()) break;
      if (count_ == 0) {
        pollfd p{in_fd_, POLLIN, 0};
        poll(&p, 1, kIdlePollMs);  // EINTR: the loop checks g_stop
        continue;
      }
      const int64_t due = frames_[head_].due;
      if (due > NowNs(CLOCK_MONOTONIC)) {
        timespec t{static_cast<time_t>(due / 1'000'000'000),
                   static_cast<long>(due % 1'000'000'000)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr);
      }
    }
  }

  void Report() const {
    tpacket_stats st{};
    socklen_t sl = sizeof st;
    std::string kernel;
    if (getsockopt(in_fd_, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) {
      kernel = ", " + std::to_string(st.tp_drops) + " dropped by the kernel (receive buffer full)";
    }
    fprintf(stderr,
            "delay_bridge: %s: %llu frames forwarded (%llu checksums completed), %llu above the "
            "MTU dropped, %llu dropped by the rate limit's queue, %llu send errors, %llu without a "
            "kernel timestamp; sent %.1f us after due on average, %.1f us at most%s\n",
            name_.c_str(), static_cast<unsigned long long>(c_.forwarded),
            static_cast<unsigned long long>(c_.checksummed),
            static_cast<unsigned long long>(c_.over_mtu),
            static_cast<unsigned long long>(c_.rate_drops),
            static_cast<unsigned long long>(c_.send_errors),
            static_cast<unsigned long long>(c_.untimed),
            c_.forwarded ? static_cast<double>(c_.late_sum_ns) / 1e3 / c_.forwarded : 0.0,
            static_cast<double>(c_.late_max_ns) / 1e3, kernel.c_str());
    if (!opt_.drop_ports.empty()) {
      fprintf(stderr, "delay_bridge: %s: %llu TCP segments dropped by --drop-port\n", name_.c_str(),
              static_cast<unsigned long long>(c_.port_drops));
    }
  }

 private:
  struct Frame {
    int64_t due;
    uint32_t offset;  // into the slot: kHeadroom, or 0 once a VLAN tag is back
    uint32_t len;
  };

  uint8_t* Slot(size_t i) { return buf_.get() + i * slot_size_; }

  // Reads what is waiting, without blocking, into the free slots. Returns
  // false on an error that ends the bridge (the interface is gone).
  bool Receive() {
    for (int round = 0; round < 4 && count_ < cap_; round++) {
      const size_t tail = (head_ + count_) % cap_;
      const int n =
          static_cast<int>(std::min<size_t>({size_t{kBatch}, cap_ - count_, cap_ - tail}));
      for (int i = 0; i < n; i++) {
        iov_[i] = {Slot(tail + i) + kHeadroom, slot_size_ - kHeadroom};
        msgs_[i].msg_hdr = {};
        msgs_[i].msg_hdr.msg_name = &addr_[i];
        msgs_[i].msg_hdr.msg_namelen = sizeof addr_[i];
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
        msgs_[i].msg_hdr.msg_control = ctrl_[i].buf;
        msgs_[i].msg_hdr.msg_controllen = sizeof ctrl_[i].buf;
      }
      const int got = recvmmsg(in_fd_, msgs_, n, MSG_DONTWAIT, nullptr);
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ENETDOWN) return true;
        perror(("delay_bridge: " + name_ + ": recvmmsg").c_str());
        return false;
      }
      const int64_t mono = NowNs(CLOCK_MONOTONIC);
      const int64_t real = NowNs(CLOCK_REALTIME);
      for (int i = 0; i < got; i++) Accept(i, tail + i, mono, real);
      if (got < n) return true;
    }
    return true;
  }

  // Queues frame i of the last recvmmsg, received into slot `slot`, at the
  // tail of the ring, or drops it.
  void Accept(int i, size_t slot, int64_t mono, int64_t real) {
    const msghdr& h = msgs_[i].msg_hdr;
    if (addr_[i].sll_pkttype == PACKET_OUTGOING) return;  // our own sends
    const size_t tail = (head_ + count_) % cap_;
    uint8_t* f = Slot(tail) + kHeadroom;
    size_t len = msgs_[i].msg_len;
    // A frame of this batch was dropped before this one: close the gap.
    if (slot != tail) memcpy(f, Slot(slot) + kHeadroom, std::min(len, slot_size_ - kHeadroom));
    const tpacket_auxdata* aux = nullptr;
    int64_t arrival = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
        aux = reinterpret_cast<const tpacket_auxdata*>(CMSG_DATA(c));
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        const int64_t age = real - (int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
        if (age >= 0 && age < kMaxTsAge) arrival = mono - age;
      }
    }
    if (arrival < 0) {
      arrival = mono;
      c_.untimed++;
    }
    const bool vlan = aux && (aux->tp_status & TP_STATUS_VLAN_VALID);
    size_t limit = max_frame_;
    if (vlan || (len >= 14 && (Be16(f + 12) == ETH_P_8021Q || Be16(f + 12) == ETH_P_8021AD))) {
      limit += 4;
    }
    if ((h.msg_flags & MSG_TRUNC) || len + (vlan ? 4 : 0) > limit) {
      c_.over_mtu++;
      return;
    }
    if (TcpPortDropped(f, len, opt_.drop_ports)) {
      c_.port_drops++;
      return;
    }
    if (aux && (aux->tp_status & TP_STATUS_CSUMNOTREADY) && FixChecksum(f, len)) c_.checksummed++;
    uint32_t offset = kHeadroom;
    if (vlan && len >= 12) {
      // Put the tag back between the MAC addresses and the EtherType.
      uint8_t* s = Slot(tail);
      memmove(s, f, 12);
      const uint16_t tpid =
          htons((aux->tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux->tp_vlan_tpid : ETH_P_8021Q);
      const uint16_t tci = htons(aux->tp_vlan_tci);
      memcpy(s + 12, &tpid, 2);
      memcpy(s + 14, &tci, 2);
      offset = 0;
      len += 4;
    }
    int64_t due = arrival + opt_.delay_ns;
    if (ns_per_byte_ > 0) {
      const int64_t start = std::max(arrival, link_free_);
      if (start - arrival > rate_buffer_ns_) {
        c_.rate_drops++;
        return;
      }
      link_free_ = start + std::llround(static_cast<double>(len) * ns_per_byte_);
      due = link_free_ + opt_.delay_ns;
    }
    due = std::max(due, last_due_);  // FIFO, even if a timestamp was off
    last_due_ = due;
    frames_[tail] = {due, offset, static_cast<uint32_t>(len)};
    count_++;
  }

  // Sends every queued frame that is due at `now`, in batches.
  void SendDue(int64_t now) {
    while (count_ > 0 && frames_[head_].due <= now) {
      int n = 0;
      while (n < kBatch && static_cast<size_t>(n) < count_) {
        const size_t s = (head_ + n) % cap_;
        if (frames_[s].due > now) break;
        iov_[n] = {Slot(s) + frames_[s].offset, frames_[s].len};
        msgs_[n].msg_hdr = {};
        msgs_[n].msg_hdr.msg_iov = &iov_[n];
        msgs_[n].msg_hdr.msg_iovlen = 1;
        n++;
      }
      int sent = sendmmsg(out_fd_, msgs_, n, 0);
      if (sent <= 0) {
        if (errno == EINTR) continue;
        // ENETDOWN while a host's link is down, EMSGSIZE if the MTU shrank:
        // that frame is lost, as on a real link.
        c_.send_errors++;
        sent = 1;
      } else {
        c_.forwarded += sent;
        const int64_t after = NowNs(CLOCK_MONOTONIC);
        for (int i = 0; i < sent; i++) {
          const int64_t late = after - frames_[(head_ + i) % cap_].due;
          c_.late_sum_ns += late;
          c_.late_max_ns = std::max(c_.late_max_ns, late);
        }
      }
      head_ = (head_ + sent) % cap_;
      count_ -= sent;
    }
  }

  std::string name_;
  int in_fd_, out_fd_;
  const Options& opt_;
  size_t max_frame_, slot_size_, cap_;
  std::unique_ptr<uint8_t[]> buf_;
  std::vector<Frame> frames_;
  size_t head_ = 0, count_ = 0;
  int64_t last_due_ = 0;
  double ns_per_byte_ = 0;
  int64_t rate_buffer_ns_ = 0, link_free_ = 0;
  Counters c_;
  mmsghdr msgs_[kBatch];
  iovec iov_[kBatch];
  sockaddr_ll addr_[kBatch];
  struct {
    alignas(
        cmsghdr) char buf[CMSG_SPACE(sizeof(tpacket_auxdata)) + CMSG_SPACE(sizeof(timespec)) + 64];
  } ctrl_[kBatch];
};

[[noreturn]] void Usage(const char* why) {
  if (why) fprintf(stderr, "delay_bridge: %s\n", why);
  fprintf(stderr,
          "usage: delay_bridge IFACE_A IFACE_B DELAY_SECONDS [--rate MBIT] [--drop-port N]...\n"
          "  forwards every Ethernet frame between the two interfaces after DELAY_SECONDS\n"
          "  (e.g. 0.001); --rate also limits each direction to MBIT Mbit/s; --drop-port\n"
          "  silently drops TCP to or from port N (repeatable)\n");
  exit(2);
}

bool ParseNumber(const char* s, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// A raw packet socket bound to one interface. Created with protocol 0 so
// that it receives nothing until bind() names the interface (an ETH_P_ALL
// socket would see every interface's frames in between).
int OpenInterface(const std::string& name, int* mtu) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) {
    fprintf(stderr, "delay_bridge: %s: no such interface\n", name.c_str());
    exit(1);
  }
  const int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    perror("delay_bridge: socket(AF_PACKET) (needs root)");
    exit(1);
  }
  const int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);  // Linux >= 4.20
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kRcvBuf, sizeof kRcvBuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof kRcvBuf);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSndBuf, sizeof kSndBuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSndBuf, sizeof kSndBuf);
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(index);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    perror(("delay_bridge: bind " + name).c_str());
    exit(1);
  }
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name.c_str());
  if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) {
    perror(("delay_bridge: SIOCGIFMTU " + name).c_str());
    exit(1);
  }
  *mtu = ifr.ifr_mtu;
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<const char*> pos;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") Usage(nullptr);
    if (a == "--rate") {
      if (++i >= argc || !ParseNumber(argv[i], &opt.rate_bps) || opt.rate_bps <= 0) {
        Usage("--rate wants a positive number of Mbit/s");
      }
      opt.rate_bps *= 1e6;
    } else if (a == "--drop-port") {
      double port = 0;
      if (++i >= argc || !ParseNumber(argv[i], &port) || port < 1 || port > 65535 ||
          port != static_cast<double>(static_cast<uint16_t>(port))) {
        Usage("--drop-port wants a TCP port, 1 to 65535");
      }
      opt.drop_ports.push_back(static_cast<uint16_t>(port));
    } else if (a.rfind("--", 0) == 0) {
      Usage(("unknown option " + a).c_str());
    } else {
      pos.push_back(argv[i]);
    }
  }
  if (pos.size() != 3) Usage("want IFACE_A IFACE_B DELAY_SECONDS");
  double delay;
  if (!ParseNumber(pos[2], &delay) || delay < 0 || delay > 60) {
    Usage(("bad DELAY_SECONDS '" + std::string(pos[2]) + "' (want seconds, 0 to 60)").c_str());
  }
  opt.iface[0] = pos[0];
  opt.iface[1] = pos[1];
  if (opt.iface[0] == opt.iface[1]) Usage("IFACE_A and IFACE_B are the same");
  opt.delay_ns = std::llround(delay * 1e9);

  int mtu[2];
  const int fd[2] = {OpenInterface(opt.iface[0], &mtu[0]), OpenInterface(opt.iface[1], &mtu[1])};

  // Wake-ups on time to the microsecond, not the default 50 us timer slack
  // (inherited by the threads started below).
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  // SIGTERM and SIGINT go to this thread's sigwait; the workers are woken
  // from their blocking calls with SIGUSR1.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  struct sigaction sa {};
  sa.sa_handler = OnWake;  // no SA_RESTART: blocking calls return EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);

  Direction dir[2] = {
      Direction(opt.iface[0] + " -> " + opt.iface[1], fd[0], fd[1], mtu[1], opt),
      Direction(opt.iface[1] + " -> " + opt.iface[0], fd[1], fd[0], mtu[0], opt),
  };
  std::thread workers[2];
  for (int i = 0; i < 2; i++) {
    workers[i] = std::thread([&dir, i] {
      dir[i].Run();
      if (!g_stop.exchange(true)) {
        g_fatal = true;
        kill(getpid(), SIGTERM);  // ends the sigwait below
      }
    });
  }
  fprintf(
      stderr, "delay_bridge: forwarding %s <-> %s, one-way delay %.6g ms%s\n", opt.iface[0].c_str(),
      opt.iface[1].c_str(), static_cast<double>(opt.delay_ns) / 1e6,
      opt.rate_bps > 0 ? (", rate " + std::to_string(opt.rate_bps / 1e6) + " Mbit/s").c_str() : "");

  int sig = 0;
  sigwait(&stop_set, &sig);
  g_stop = true;
  for (auto& w : workers) pthread_kill(w.native_handle(), SIGUSR1);
  for (auto& w : workers) w.join();
  for (const auto& d : dir) d.Report();
  close(fd[0]);
  close(fd[1]);
  return g_fatal ? 1 : 0;
}
