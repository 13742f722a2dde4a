#include "mirror/node.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "core/net.h"
#include "mirror/fencing.h"
#include "mirror/link.h"
#include "mirror/metadata.h"
#include "mirror/wire.h"
#include "nbd/backend.h"
#include "nbd/file_backend.h"
#include "nbd/server.h"

namespace cloudkeep::mirror {

using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kResyncBlock = 1024 * 1024;
constexpr uint64_t kTargetSyncEvery = 64 * 1024 * 1024;

std::vector<uint8_t> Digests(const uint8_t* data, uint64_t len, uint64_t block) {
  std::vector<uint8_t> out;
  for (uint64_t o = 0; o < len; o += block) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(data + o, std::min(block, len - o), d);
    out.insert(out.end(), d, d + sizeof d);
  }
  return out;
}

// Byte ranges in flight: a writer waits until no overlapping range is held.
class Ranges {
 public:
  class Guard {
   public:
    Guard(Ranges* r, std::list<std::pair<uint64_t, uint64_t>>::iterator it) : r_(r), it_(it) {}
    Guard(Guard&& o) noexcept : r_(o.r_), it_(o.it_) { o.r_ = nullptr; }
    Guard(const Guard&) = delete;
    ~Guard() { Release(); }
    void Release() {
      if (!r_) return;
      {
        std::lock_guard lk(r_->mu_);
        r_->held_.erase(it_);
      }
      r_->cv_.notify_all();
      r_ = nullptr;
    }

   private:
    Ranges* r_;
    std::list<std::pair<uint64_t, uint64_t>>::iterator it_;
  };
  Guard Lock(uint64_t off, uint64_t len) {
    std::unique_lock lk(mu_);
    uint64_t end = off + len;
    cv_.wait(lk, [&] {
      for (auto& [b, e] : held_)
        if (b < end && off < e) return false;
      return true;
    });
    held_.emplace_back(off, end);
    return Guard(this, std::prev(held_.end()));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::pair<uint64_t, uint64_t>> held_;
};

struct Pending {
  wire::Type type = wire::Type::kWrite;
  uint64_t offset = 0, length = 0;
  Clock::time_point sent;
  bool done = false;
  bool ok = false;
  std::vector<uint8_t> reply;
  std::set<uint64_t> bits;  // a flush: regions written since the previous flush
  // Signalled (under pend_mu) when done: each waiter has its own, so an
  // acknowledgement wakes one writer, not every writer in flight.
  std::condition_variable cv;
};

// Frames that change the peer's copy: marked out of sync if not acknowledged.
bool ChangesData(wire::Type t) {
  return t == wire::Type::kWrite || t == wire::Type::kZero;
}
// What a frame adds to protocol A's queue: the payload it carries.
uint64_t QueuedBytes(const Pending& p) {
  return p.type == wire::Type::kWrite ? p.length : 0;
}

enum class ResyncRole { kNone, kSource, kTarget };

}  // namespace

struct Node::Impl : public FencingHost {
  NodeOptions opt;
  const ResourceConfig& cfg() const { return opt.cfg; }
  NodeConfig self, peer;
  std::string tag;                         // "web/a" in log lines
  std::unique_ptr<nbd::FileBackend> disk;  // the locked backing device
  uint64_t size = 0;
  std::unique_ptr<Metadata> meta;
  std::unique_ptr<LinkAuth> auth;
  std::atomic<bool> stopping{false};

  std::mutex mu;  // state below
  std::condition_variable stop_cv;
  bool primary = false;
  std::string conn = "Connecting";
  std::string last_error;
  std::shared_ptr<Link> link;
  std::string peer_role = "Unknown", peer_disk = "DUnknown";
  ResyncRole resync = ResyncRole::kNone;
  uint64_t resync_total = 0;
  std::atomic<uint64_t> resync_done{0};
  Clock::time_point resync_start;
  bool split_brain = false;
  Json split_brain_info;
  Json last_resync;          // the last finished resync: bytes, seconds, direction
  std::string discard_peer;  // resolve --discard PEER given on this node
  std::unique_ptr<nbd::Server> server;
  // The newest fencing token accepted (also in the superblock, so that a
  // restarted standby still refuses a deposed primary).
  std::atomic<uint64_t> max_token_seen{0};
  std::mutex token_mu;  // serializes raising it
  uint64_t connects = 0;
  std::unique_ptr<Fencer> fencer;  // fencing = "etcd"; null otherwise
  bool fenced() const { return fencer != nullptr; }

  std::mutex order_mu;  // stream order; seq
  uint64_t next_seq = 1;
  std::set<uint64_t> unflushed_bits;

  std::mutex pend_mu;
  std::condition_variable pend_cv;
  std::map<uint64_t, std::shared_ptr<Pending>> pending;
  uint64_t pending_bytes = 0;
  uint64_t resync_inflight = 0;

  Ranges ranges;

  std::mutex lat_mu;
  std::deque<std::pair<uint64_t, uint32_t>> latencies;  // (mono ns, us)

  std::mutex ctl_mu;
  std::vector<std::thread> ctl_threads;
  std::thread conn_thread, ctl_thread;
  UniqueFd listen_fd, ctl_fd;
  std::string ctl_path;

  // ---- helpers ----
  std::string DiskStateLocked() const {
    if (resync == ResyncRole::kSource) return "SyncSource";
    if (resync == ResyncRole::kTarget) return "SyncTarget";
    Superblock sb = meta->sb();
    if (sb.gen.current == 0 || (sb.flags & kFlagInconsistent)) return "Inconsistent";
    if (sb.flags & kFlagOutdated) return "Outdated";
    return "UpToDate";
  }
  void SetConn(const std::string& state, const std::string& why) {
    std::string old;
    {
      std::lock_guard lk(mu);
      old = conn;
      if (old == state && last_error == why) return;
      conn = state;
      if (!why.empty()) last_error = why;
    }
    // Stamped on the monotonic clock, as the fencing log is: the failover
    // benchmark (bench/failover.sh) measures detection from these lines.
    if (old != state)
      log::Info("mirror {}: connection {} -> {}{}{} (t={:.3f})", tag, old, state,
                why.empty() ? "" : ": ", why,
                std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
                    .count());
  }
  std::shared_ptr<Link> CurrentLink() {
    std::lock_guard lk(mu);
    return link;
  }
  bool SleepInterruptible(Micros d) {
    std::unique_lock lk(mu);
    return !stop_cv.wait_for(lk, d, [&] { return stopping.load(); });
  }

  GenInfo LocalInfo() {
    Superblock sb = meta->sb();
    GenInfo g;
    g.node = self.name;
    g.gen = sb.gen;
    g.inconsistent = sb.flags & kFlagInconsistent;
    g.crashed_primary = sb.flags & kFlagCrashedPrimary;
    {
      std::lock_guard lk(mu);
      g.primary = primary;
    }
    g.discard = sb.flags & kFlagDiscard;
    g.dirty_bits = meta->DirtyBits();
    return g;
  }

  Json HelloJson() {
    GenInfo g = LocalInfo();
    Json j;
    j["resource"] = cfg().name;
    j["node"] = self.name;
    j["peer"] = peer.name;
    j["size_bytes"] = size;
    j["granularity_bytes"] = meta->granularity();
    j["current"] = g.gen.current;
    j["bitmap"] = g.gen.bitmap;
    j["history"] = std::vector<uint64_t>(g.gen.history.begin(), g.gen.history.end());
    j["inconsistent"] = g.inconsistent;
    j["crashed_primary"] = g.crashed_primary;
    j["primary"] = g.primary;
    std::vector<std::string> discard;
    if (g.discard) discard.push_back(self.name);
    {
      std::lock_guard lk(mu);
      if (discard_peer == peer.name) discard.push_back(peer.name);
    }
    j["discard"] = discard;
    j["dirty_bits"] = g.dirty_bits;
    j["fencing_token"] = fencer && fencer->leader() ? fencer->token() : max_token_seen.load();
    j["protocol"] = cfg().protocol == Protocol::kSync ? "sync" : "async";
    return j;
  }

  Json StateJson() {
    std::lock_guard lk(mu);
    return Json{{"role", primary ? "Primary" : "Secondary"}, {"disk_state", DiskStateLocked()}};
  }
  void SendState(const std::shared_ptr<Link>& l) {
    if (l) (void)l->SendJson(wire::Type::kState, StateJson(), cfg().peer_timeout);
  }

  // ---- connection ----
  void ConnectLoop() {
    bool active = self.name < peer.name;
    std::string last_fail;
    while (!stopping) {
      if (active) {
        auto l = Link::Connect(*auth, peer.address, cfg().peer_timeout);
        if (!l.ok()) {
          std::string msg = l.status().message();
          if (msg != last_fail) {
            bool auth_fail = msg.find("TLS handshake") != std::string::npos;
            if (auth_fail)
              log::Warn("mirror {}: peer {} refused or could not authenticate: {}", tag, peer.name,
                        msg);
            else
              log::Debug("mirror {}: connect to {}: {}", tag, peer.address, msg);
            last_fail = msg;
          }
          SleepInterruptible(cfg().connect_interval);
          continue;
        }
        last_fail.clear();
        RunConnection(std::shared_ptr<Link>(std::move(*l)));
      } else {
        pollfd p{listen_fd.get(), POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        UniqueFd fd(accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
        if (!fd.valid()) continue;
        SockAddr sa;
        std::memcpy(&sa.ss, &ss, len);
        sa.len = len;
        std::string from = sa.ToString();
        auto l = Link::Accept(*auth, std::move(fd), from, cfg().peer_timeout);
        if (!l.ok()) {
          log::Warn("mirror {}: refused a peer from {}: {}", tag, from, l.status().message());
          continue;
        }
        RunConnection(std::shared_ptr<Link>(std::move(*l)));
      }
      if (!stopping) SleepInterruptible(cfg().connect_interval);
    }
  }

  void Refuse(const std::shared_ptr<Link>& l, const std::string& state, const std::string& reason) {
    (void)l->SendJson(wire::Type::kRefuse, Json{{"reason", reason}}, Micros(1'000'000));
    l->Shutdown();
    SetConn(state, reason);
  }

  void RunConnection(std::shared_ptr<Link> l) {
    Micros t = cfg().peer_timeout;
    if (!l->SendJson(wire::Type::kHello, HelloJson(), t).ok()) return;
    wire::Header h;
    std::vector<uint8_t> payload;
    Status s = l->Recv(&h, &payload, t);
    if (!s.ok()) {
      SetConn("Connecting", "handshake: " + s.message());
      return;
    }
    Json ph = Json::parse(payload.begin(), payload.end(), nullptr, false);
    if (h.type == wire::Type::kRefuse) {
      SetConn("Refused", "peer refused: " + ph.value("reason", std::string("?")));
      return;
    }
    if (h.type != wire::Type::kHello || ph.is_discarded() || !ph.is_object()) {
      Refuse(l, "Refused", "expected HELLO, got " + std::string(wire::TypeName(h.type)));
      return;
    }
    if (ph.value("resource", "") != cfg().name) {
      Refuse(l, "Refused",
             "peer serves resource '" + ph.value("resource", "") + "', not " + cfg().name);
      return;
    }
    if (ph.value("node", "") != peer.name) {
      Refuse(l, "Refused",
             "peer says it is node '" + ph.value("node", "") + "', expected " + peer.name);
      return;
    }
    if (ph.value("size_bytes", uint64_t{0}) != size) {
      Refuse(l, "Refused",
             "device sizes differ: " + std::to_string(size) + " bytes here, " +
                 std::to_string(ph.value("size_bytes", uint64_t{0})) + " on " + peer.name);
      return;
    }
    if (ph.value("granularity_bytes", uint64_t{0}) != meta->granularity()) {
      Refuse(l, "Refused", "bitmap granularity differs from " + peer.name + "'s");
      return;
    }
    GenInfo local = LocalInfo(), remote;
    remote.node = peer.name;
    remote.gen.current = ph.value("current", uint64_t{0});
    remote.gen.bitmap = ph.value("bitmap", uint64_t{0});
    auto hist = ph.value("history", std::vector<uint64_t>{});
    for (size_t i = 0; i < kHistorySize && i < hist.size(); i++) remote.gen.history[i] = hist[i];
    remote.inconsistent = ph.value("inconsistent", false);
    remote.crashed_primary = ph.value("crashed_primary", false);
    remote.primary = ph.value("primary", false);
    remote.dirty_bits = ph.value("dirty_bits", uint64_t{0});
    auto discard = ph.value("discard", std::vector<std::string>{});
    std::string my_discard_peer;
    {
      std::lock_guard lk(mu);
      my_discard_peer = discard_peer;
    }
    local.discard = local.discard || std::count(discard.begin(), discard.end(), self.name);
    remote.discard =
        std::count(discard.begin(), discard.end(), peer.name) || my_discard_peer == peer.name;
    if (fenced() && remote.primary && ph.value("fencing_token", uint64_t{0}) < max_token_seen) {
      Refuse(l, "Refused",
             "peer " + peer.name + " is a deposed primary (token " +
                 std::to_string(ph.value("fencing_token", uint64_t{0})) + ", newer token " +
                 std::to_string(max_token_seen.load()) + " seen)");
      return;
    }
    if (local.primary && remote.primary) {
      Decision d = Decide(local, remote);
      if (d.what != SyncDecision::kSplitBrain) {
        Refuse(l, "Refused", "both nodes are primary");
        return;
      }
    }
    Decision d = Decide(local, remote);
    if (d.what == SyncDecision::kSplitBrain || d.what == SyncDecision::kUnrelated) {
      uint64_t gran = meta->granularity();
      {
        std::lock_guard lk(mu);
        split_brain = true;
        split_brain_info = Json{{"reason", d.reason},
                                {"local_out_of_sync_bytes", meta->DirtyBytes()},
                                {"peer_out_of_sync_bytes", remote.dirty_bits * gran},
                                {"divergence_bytes", meta->DirtyBytes() + remote.dirty_bits * gran},
                                {"unrelated", d.what == SyncDecision::kUnrelated}};
      }
      l->Shutdown();
      SetConn("SplitBrain",
              d.reason + "; run 'cloudkeep mirror resolve " + cfg().name + " --discard NODE'");
      return;
    }
    if (d.what == SyncDecision::kBothInconsistent) {
      l->Shutdown();
      SetConn("Refused",
              "neither copy is up to date: run 'mirror init --uptodate' on the node whose data is "
              "good");
      return;
    }
    if (IsTarget(d.what) && local.primary) {
      Refuse(l, "Refused",
             "this node is primary but " + peer.name + " has newer data (" + d.reason + ")");
      return;
    }
    // Bitmaps: each side sends its own; a bitmap-based resync takes the union.
    Bitmap mine = meta->BitmapCopy();
    auto bytes = mine.Serialize();
    wire::Header bh;
    bh.type = wire::Type::kBitmap;
    bh.payload_bytes = static_cast<uint32_t>(bytes.size());
    if (!l->Send(bh, bytes.data(), t).ok()) return;
    s = l->Recv(&h, &payload, t);
    if (!s.ok() || h.type != wire::Type::kBitmap) {
      SetConn("Connecting", s.ok() ? "expected BITMAP" : s.message());
      return;
    }
    Bitmap theirs(size, meta->granularity());
    if (!theirs.Load(payload.data(), payload.size())) {
      Refuse(l, "Refused", "peer bitmap too short");
      return;
    }
    if (IsFull(d.what))
      s = meta->MarkAllDirty();
    else if (IsSource(d.what) || IsTarget(d.what))
      s = meta->MergeBitmap(theirs);
    if (s.ok() && IsTarget(d.what))
      s = meta->Update([](Superblock& sb) { sb.flags |= kFlagOutdated; });
    if (!s.ok()) {
      Refuse(l, "Refused", "metadata: " + s.message());
      return;
    }
    {
      std::lock_guard lk(mu);
      link = l;
      split_brain = false;
      split_brain_info = Json();
      peer_role = remote.primary ? "Primary" : "Secondary";
      connects++;
      if (IsSource(d.what)) resync = ResyncRole::kSource;
    }
    SetConn("Connected", "peer " + peer.name + ", " + d.reason + " (" + DecisionName(d.what) +
                             ", " + l->Cipher() + ")");
    SendState(l);
    std::thread rx([this, l] { ReceiveLoop(l); });
    std::thread rs;
    if (IsSource(d.what)) rs = std::thread([this, l] { ResyncSource(l); });
    // Keepalive, and the watchdog on writes the peer does not acknowledge.
    Micros every = std::min<Micros>(Micros(1'000'000), cfg().peer_timeout / 3);
    while (!stopping && CurrentLink() == l) {
      {
        std::unique_lock lk(mu);
        stop_cv.wait_for(lk, every, [&] { return stopping.load() || link != l; });
      }
      if (stopping || CurrentLink() != l) break;
      wire::Header ph2;
      ph2.type = wire::Type::kPing;
      if (!l->Send(ph2, nullptr, cfg().peer_timeout).ok()) {
        DropPeer(l, "keepalive could not be sent within " + FormatDuration(cfg().peer_timeout));
        break;
      }
      std::string stuck;
      {
        std::lock_guard lk(pend_mu);
        for (auto& [seq, p] : pending)
          if (Clock::now() - p->sent > cfg().peer_timeout) {
            stuck = std::string(wire::TypeName(p->type)) + " seq " + std::to_string(seq) +
                    " not acknowledged within " + FormatDuration(cfg().peer_timeout);
            break;
          }
      }
      if (!stuck.empty()) DropPeer(l, "peer too slow: " + stuck);
    }
    DropPeer(l, stopping ? "stopping" : "connection ended");
    rx.join();
    if (rs.joinable()) rs.join();
  }

  // Ends the connection `l` (once): its unacknowledged writes and writes since
  // its last flush are marked out of sync; a primary starts a new generation.
  void DropPeer(const std::shared_ptr<Link>& l, const std::string& reason) {
    bool was_primary;
    {
      std::lock_guard lk(mu);
      if (link != l || !l) return;
      link = nullptr;
      resync = ResyncRole::kNone;
      peer_role = "Unknown";
      peer_disk = "DUnknown";
      was_primary = primary;
      stop_cv.notify_all();
    }
    l->Shutdown();
    // Without fencing the primary goes on alone at once. With fencing it
    // starts a new generation only when it acknowledges the first change
    // the standby lacks, after recording it Outdated (StartDivergence): a
    // primary that suspends instead rejoins as a plain resync target.
    if (was_primary && !fenced())
      (void)meta->Update([](Superblock& sb) { RotateForDivergence(&sb.gen); });
    {
      std::lock_guard ok(order_mu);
      std::lock_guard pk(pend_mu);
      Bitmap mark(size, meta->granularity());
      for (auto& [seq, p] : pending) {
        if (ChangesData(p->type)) mark.Set(p->offset, p->length);
        for (uint64_t b : p->bits) mark.SetBit(b);
        p->done = true;
        p->ok = false;
        p->cv.notify_all();  // they return once pend_mu is free: after the bitmap below
      }
      for (uint64_t b : unflushed_bits) mark.SetBit(b);
      unflushed_bits.clear();
      pending.clear();
      pending_bytes = 0;
      resync_inflight = 0;
      Status s = meta->MergeBitmap(mark);
      if (!s.ok()) log::Error("mirror {}: cannot record out-of-sync regions: {}", tag, s.message());
      pend_cv.notify_all();
    }
    SetConn(stopping ? "StandAlone" : "Connecting", reason);
  }

  void Complete(uint64_t seq, bool ok, std::vector<uint8_t>* reply) {
    std::lock_guard lk(pend_mu);
    auto it = pending.find(seq);
    if (it == pending.end()) return;
    it->second->done = true;
    it->second->ok = ok;
    if (reply) it->second->reply = std::move(*reply);
    pending_bytes -= QueuedBytes(*it->second);
    it->second->cv.notify_all();
    pending.erase(it);
    // Protocol A writers wait on pend_cv for queue space.
    if (cfg().protocol == Protocol::kAsync) pend_cv.notify_all();
  }

  void ReceiveLoop(std::shared_ptr<Link> l) {
    wire::Header h;
    std::vector<uint8_t> payload;
    std::vector<std::pair<uint64_t, uint64_t>> to_clear;  // target: applied, not yet durable
    uint64_t since_sync = 0, since_flush_bitmap = 0;
    auto reply = [&](wire::Type type, uint64_t seq, uint16_t flags, uint64_t off = 0,
                     uint32_t len = 0) {
      wire::Header a;
      a.type = type;
      a.seq = seq;
      a.flags = flags;
      a.offset = off;
      a.length = len;
      return l->Send(a, nullptr, cfg().peer_timeout);
    };
    // A standby's acknowledgements of writes wait here while more input is
    // already waiting, and go out together (one TLS record, one segment)
    // before the receiver would block, before any other frame is handled,
    // and every kMaxHeldAcks: at depth 16 that is one packet back per burst
    // rather than one per write. No acknowledgement is held while the
    // standby waits for input, so none is delayed by more than the frames
    // queued ahead of it.
    constexpr size_t kMaxHeldAcks = 64;
    std::vector<wire::Header> held_acks;
    auto send_held_acks = [&]() -> Status {
      if (held_acks.empty()) return Status::Ok();
      Status st = l->SendHeaders(held_acks, cfg().peer_timeout);
      held_acks.clear();
      return st;
    };
    while (!stopping) {
      Status s = l->Recv(&h, &payload, cfg().peer_timeout);
      if (!s.ok()) {
        DropPeer(l, s.message());
        return;
      }
      if (h.type != wire::Type::kWrite && h.type != wire::Type::kZero) {
        s = send_held_acks();
        if (!s.ok()) {
          DropPeer(l, "send: " + s.message());
          return;
        }
      }
      if (h.offset > size || h.length > size - std::min(h.offset, size)) {
        DropPeer(l, std::string("peer sent a ") + wire::TypeName(h.type) + " past the device end");
        return;
      }
      switch (h.type) {
        case wire::Type::kWrite:
        case wire::Type::kZero: {
          bool is_primary;
          {
            std::lock_guard lk(mu);
            is_primary = primary;
          }
          if (is_primary) {
            DropPeer(l, std::string("peer sent a ") + wire::TypeName(h.type) + " to a primary");
            return;
          }
          uint16_t ack_flags = 0;
          if (h.token < max_token_seen) {
            ack_flags = wire::kFlagError;
          } else {
            if (h.token > max_token_seen) ObserveToken(h.token);
            s = ApplyLocally(h.type, payload.data(), h.length, h.offset, h.flags);
            if (!s.ok()) {
              log::Error("mirror {}: applying a {} at {}: {}", tag, wire::TypeName(h.type),
                         h.offset, s.message());
              ack_flags = wire::kFlagError;
            }
          }
          wire::Header a;
          a.type = wire::Type::kAck;
          a.seq = h.seq;
          a.flags = ack_flags;
          held_acks.push_back(a);
          s = Status::Ok();
          if (held_acks.size() >= kMaxHeldAcks || !l->InputWaiting()) s = send_held_acks();
          break;
        }
        case wire::Type::kFlush:
          s = disk->Flush();
          s = reply(wire::Type::kAck, h.seq, s.ok() ? 0 : wire::kFlagError);
          break;
        case wire::Type::kAck:
          Complete(h.seq, !(h.flags & wire::kFlagError), nullptr);
          break;
        case wire::Type::kSyncStart: {
          Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
          s = meta->Update([](Superblock& sb) {
            sb.flags |= kFlagInconsistent;
            sb.flags &= ~kFlagOutdated;
          });
          {
            std::lock_guard lk(mu);
            resync = ResyncRole::kTarget;
            resync_total = j.is_object() ? j.value("total_bytes", uint64_t{0}) : 0;
            resync_done = 0;
            resync_start = Clock::now();
          }
          log::Info("mirror {}: resync from {} started: {} to receive", tag, peer.name,
                    FormatBytes(resync_total));
          break;
        }
        case wire::Type::kResyncData:
          s = disk->Pwrite(payload.data(), h.length, h.offset, false);
          if (!s.ok()) {
            DropPeer(l, "applying resync data: " + s.message());
            return;
          }
          to_clear.emplace_back(h.offset, h.length);
          since_sync += h.length;
          resync_done += h.length;
          if (since_sync >= kTargetSyncEvery) {
            s = disk->Flush();
            for (auto& [o, n] : to_clear) meta->ClearInMemory(o, n);
            if (s.ok()) DropResyncedPages(to_clear);
            if (s.ok()) s = meta->FlushBitmap();
            to_clear.clear();
            since_sync = 0;
          }
          s = reply(wire::Type::kResyncAck, 0, 0, h.offset, h.length);
          break;
        case wire::Type::kResyncAck: {
          meta->ClearInMemory(h.offset, h.length);
          resync_done += h.length;
          since_flush_bitmap += h.length;
          if (since_flush_bitmap >= kTargetSyncEvery) {
            (void)meta->FlushBitmap();
            since_flush_bitmap = 0;
          }
          std::lock_guard lk(pend_mu);
          resync_inflight -= std::min<uint64_t>(resync_inflight, h.length);
          pend_cv.notify_all();
          break;
        }
        case wire::Type::kSyncDone: {
          Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
          uint64_t current = j.is_object() ? j.value("current", uint64_t{0}) : 0;
          s = disk->Flush();
          if (s.ok()) {
            DropResyncedPages(to_clear);
            meta->ClearAllInMemory();
            s = meta->FlushBitmap();
          }
          to_clear.clear();
          if (s.ok())
            s = meta->Update([current](Superblock& sb) {
              sb.gen.current = current;
              sb.gen.bitmap = 0;
              sb.flags &= ~(kFlagInconsistent | kFlagOutdated | kFlagCrashedPrimary | kFlagDiscard);
            });
          uint64_t total;
          double secs;
          {
            std::lock_guard lk(mu);
            resync = ResyncRole::kNone;
            total = resync_done;
            secs = std::chrono::duration<double>(Clock::now() - resync_start).count();
            last_resync = Json{{"direction", "from_peer"}, {"bytes", total}, {"seconds", secs}};
          }
          log::Info("mirror {}: resync from {} done: {} in {:.1f}s; UpToDate at generation {}", tag,
                    peer.name, FormatBytes(total), secs, FormatGeneration(current));
          s = reply(wire::Type::kAck, h.seq, s.ok() ? 0 : wire::kFlagError);
          SendState(l);
          break;
        }
        case wire::Type::kVerifyReq: {
          uint32_t block = payload.size() >= 4
                               ? (uint32_t{payload[0]} << 24 | uint32_t{payload[1]} << 16 |
                                  uint32_t{payload[2]} << 8 | payload[3])
                               : 0;
          if (block == 0) block = static_cast<uint32_t>(meta->granularity());
          std::vector<uint8_t> data(h.length);
          s = disk->Pread(data.data(), h.length, h.offset);
          auto d = Digests(data.data(), h.length, block);
          wire::Header r;
          r.type = wire::Type::kVerifyReply;
          r.seq = h.seq;
          r.offset = h.offset;
          r.length = h.length;
          r.flags = s.ok() ? 0 : wire::kFlagError;
          r.payload_bytes = static_cast<uint32_t>(d.size());
          s = l->Send(r, d.data(), cfg().peer_timeout);
          break;
        }
        case wire::Type::kVerifyReply:
          Complete(h.seq, !(h.flags & wire::kFlagError), &payload);
          break;
        case wire::Type::kState: {
          Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
          if (j.is_object()) {
            std::lock_guard lk(mu);
            peer_role = j.value("role", "Unknown");
            peer_disk = j.value("disk_state", "DUnknown");
          }
          break;
        }
        case wire::Type::kRefuse: {
          Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
          DropPeer(l,
                   "peer refused: " + (j.is_object() ? j.value("reason", "?") : std::string("?")));
          return;
        }
        case wire::Type::kPing:
        case wire::Type::kPong:
          break;
        default:
          DropPeer(l, std::string("unexpected ") + wire::TypeName(h.type));
          return;
      }
      if (!s.ok() && CurrentLink() == l) {
        DropPeer(l, s.message());
        return;
      }
    }
  }

  // The resync target drops the page cache of regions it has made durable.
  // A standby never reads its copy for its client, so those pages serve no
  // one; and on this kernel (Linux 6.18, ext4 with large folios) the big
  // folios that the resync's large writes leave behind make every later
  // 4 KiB write into them walk the whole folio in ext4_block_write_begin:
  // measured with bench/mirror.sh, depth-16 random writes ran at 6.9k IOPS
  // into a freshly resynced copy and 15.7k once its pages were dropped.
  // DRBD's resync bypasses the page cache altogether. The pages are clean
  // (Flush() just returned), so DONTNEED discards them without I/O.
  void DropResyncedPages(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    for (auto& [o, n] : ranges)
      (void)posix_fadvise(disk->fd(), static_cast<off_t>(o), static_cast<off_t>(n),
                          POSIX_FADV_DONTNEED);
  }

  // Sends every region set in the bitmap to the peer, then SYNC_DONE.
  void ResyncSource(std::shared_ptr<Link> l) {
    Bitmap bm = meta->BitmapCopy();
    {
      std::lock_guard lk(mu);
      resync = ResyncRole::kSource;
      resync_total = bm.DirtyBytes();
      resync_done = 0;
      resync_start = Clock::now();
    }
    if (!l->SendJson(wire::Type::kSyncStart, Json{{"total_bytes", bm.DirtyBytes()}},
                     cfg().peer_timeout)
             .ok())
      return;
    log::Info("mirror {}: resync to {} started: {} to send", tag, peer.name,
              FormatBytes(bm.DirtyBytes()));
    std::vector<uint8_t> buf(kResyncBlock);
    for (int pass = 0; pass < 100; pass++) {
      bool ok = true;
      bm.ForEachRun(kResyncBlock, [&](uint64_t off, uint64_t len) {
        {
          std::unique_lock lk(pend_mu);
          pend_cv.wait_for(lk, std::chrono::seconds(1), [&] {
            return resync_inflight + len <= cfg().resync_window_bytes || stopping ||
                   CurrentLink() != l;
          });
          while (resync_inflight + len > cfg().resync_window_bytes && !stopping &&
                 CurrentLink() == l)
            pend_cv.wait_for(lk, std::chrono::milliseconds(100));
        }
        if (stopping || CurrentLink() != l) return ok = false;
        auto guard = ranges.Lock(off, len);
        if (!disk->Pread(buf.data(), len, off).ok()) return ok = false;
        std::lock_guard ok2(order_mu);
        if (CurrentLink() != l) return ok = false;
        {
          std::lock_guard pk(pend_mu);
          resync_inflight += len;
        }
        wire::Header h;
        h.type = wire::Type::kResyncData;
        h.offset = off;
        h.length = h.payload_bytes = static_cast<uint32_t>(len);
        if (!l->Send(h, buf.data(), cfg().peer_timeout).ok()) return ok = false;
        return true;
      });
      if (!ok) return;
      {
        std::unique_lock lk(pend_mu);
        while (resync_inflight > 0 && !stopping && CurrentLink() == l)
          pend_cv.wait_for(lk, std::chrono::milliseconds(100));
      }
      if (stopping || CurrentLink() != l) return;
      bm = meta->BitmapCopy();  // regions marked meanwhile (online verify)
      if (bm.Count() == 0) break;
      std::lock_guard lk(mu);
      resync_total += bm.DirtyBytes();
    }
    (void)meta->FlushBitmap();
    uint64_t current = meta->sb().gen.current;
    std::shared_ptr<Pending> p = std::make_shared<Pending>();
    p->type = wire::Type::kSyncDone;
    {
      std::lock_guard ok(order_mu);
      if (CurrentLink() != l) return;
      uint64_t seq = next_seq++;
      p->sent = Clock::now();
      {
        std::lock_guard pk(pend_mu);
        pending[seq] = p;
      }
      if (!l->SendJson(wire::Type::kSyncDone, Json{{"current", current}}, cfg().peer_timeout, seq)
               .ok())
        return;
    }
    {
      std::unique_lock lk(pend_mu);
      p->cv.wait(lk, [&] { return p->done; });
    }
    if (!p->ok) return;
    (void)meta->Update([](Superblock& sb) {
      RetireBitmapId(&sb.gen);
      sb.flags &= ~(kFlagCrashedPrimary | kFlagOutdated);
    });
    uint64_t total;
    double secs;
    {
      std::lock_guard lk(mu);
      resync = ResyncRole::kNone;
      discard_peer.clear();
      total = resync_done;
      secs = std::chrono::duration<double>(Clock::now() - resync_start).count();
      last_resync = Json{{"direction", "to_peer"}, {"bytes", total}, {"seconds", secs}};
    }
    log::Info("mirror {}: resync to {} done: {} in {:.1f}s ({}/s)", tag, peer.name,
              FormatBytes(total), secs,
              FormatBytes(static_cast<uint64_t>(secs > 0 ? static_cast<double>(total) / secs : 0)));
    SendState(l);
  }

  // Queues a frame in stream order with a pending record; false if there is no peer.
  bool SendTracked(const std::shared_ptr<Link>& l, wire::Header h, const void* data,
                   std::shared_ptr<Pending> p, Status* send_status) {
    std::lock_guard ok(order_mu);
    if (!l || CurrentLink() != l) return false;
    h.seq = next_seq++;
    h.token = fencer ? fencer->token() : 0;
    p->sent = Clock::now();
    {
      std::lock_guard pk(pend_mu);
      pending[h.seq] = p;
      pending_bytes += QueuedBytes(*p);
    }
    if (ChangesData(p->type)) {
      uint64_t g = meta->granularity();
      for (uint64_t b = p->offset / g; b <= (p->offset + p->length - 1) / g; b++)
        unflushed_bits.insert(b);
    } else if (p->type == wire::Type::kFlush) {
      p->bits.swap(unflushed_bits);
    }
    *send_status = l->Send(h, data, cfg().peer_timeout);
    return true;
  }

  void WaitAck(const std::shared_ptr<Link>& l, const std::shared_ptr<Pending>& p) {
    std::unique_lock lk(pend_mu);
    while (!p->done) {
      if (p->cv.wait_for(lk, cfg().peer_timeout, [&] { return p->done; })) break;
      lk.unlock();
      DropPeer(l, std::string("peer did not acknowledge a ") + wire::TypeName(p->type) +
                      " within " + FormatDuration(cfg().peer_timeout));
      lk.lock();
      if (!p->done) {  // l was already replaced: nobody else will complete it
        p->done = true;
        if (ChangesData(p->type)) {
          lk.unlock();
          (void)meta->MarkDirty(p->offset, p->length);
          lk.lock();
        }
      }
    }
  }

  // Applies one change to the local copy: a write, or a zeroing that may
  // deallocate (kFlagMayTrim). Both copies apply the same call, so they stay
  // byte-identical: a hole punched in a file reads as zeroes, and a block
  // device gets BLKZEROOUT rather than BLKDISCARD, whose contents afterwards
  // are the device's choice.
  Status ApplyLocally(wire::Type type, const void* buf, uint64_t count, uint64_t offset,
                      uint16_t flags) {
    bool fua = flags & wire::kFlagFua;
    if (type == wire::Type::kZero)
      return disk->Zero(count, offset, flags & wire::kFlagMayTrim, /*fast=*/false, fua);
    return disk->Pwrite(buf, count, offset, fua);
  }

  // The primary's data path for a write (buf) or a zeroing (type kZero,
  // buf null): serialized against overlapping changes, recorded in the
  // activity log, sent to the peer in stream order and applied locally at
  // the same time; protocol C returns after both.
  // *replicated: the standby acknowledged it (protocol C) or it was queued to
  // the standby (protocol A); false means the standby lacks it.
  Status Replicate(wire::Type type, const void* buf, uint64_t count, uint64_t offset,
                   uint16_t flags, bool* replicated) {
    *replicated = false;
    if (count > UINT32_MAX) return Status::FromErrno("a change of over 4 GiB", EINVAL);
    uint64_t t0 = MonoNs();
    auto guard = ranges.Lock(offset, count);
    CK_RETURN_IF_ERROR(meta->AlBegin(offset, count));
    auto p = std::make_shared<Pending>();
    p->type = type;
    p->offset = offset;
    p->length = count;
    std::shared_ptr<Link> l = CurrentLink();
    Status send_status;
    wire::Header h;
    h.type = type;
    h.flags = flags;
    h.offset = offset;
    h.length = static_cast<uint32_t>(count);
    h.payload_bytes = type == wire::Type::kWrite ? h.length : 0;
    bool sent = SendTracked(l, h, buf, p, &send_status);
    if (!sent) {
      Status s = meta->MarkDirty(offset, count);
      if (!s.ok()) {
        meta->AlEnd(offset, count);
        return s;
      }
    } else if (!send_status.ok()) {
      DropPeer(l, "send: " + send_status.message());
    }
    Status local = ApplyLocally(type, buf, count, offset, flags);
    if (sent) {
      if (cfg().protocol == Protocol::kSync) {
        WaitAck(l, p);
        // The peer answered but could not apply it (its disk failed, or it
        // saw a newer fencing token): it lacks this change, so the bitmap says so.
        if (!p->ok) (void)meta->MarkDirty(offset, count);
        *replicated = p->ok;
      } else {
        *replicated = send_status.ok();
        std::unique_lock lk(pend_mu);
        while (pending_bytes > cfg().async_max_queued_bytes && CurrentLink() == l)
          pend_cv.wait_for(lk, std::chrono::milliseconds(100));
      }
    }
    meta->AlEnd(offset, count);
    uint64_t us = (MonoNs() - t0) / 1000;
    {
      std::lock_guard lk(lat_mu);
      latencies.emplace_back(MonoNs(), static_cast<uint32_t>(std::min<uint64_t>(us, UINT32_MAX)));
      if (latencies.size() > 2'000'000) latencies.pop_front();
    }
    return local;
  }

  Status Write(const void* buf, uint64_t count, uint64_t offset, bool fua,
               bool* replicated = nullptr) {
    bool r;
    return Replicate(wire::Type::kWrite, buf, count, offset, fua ? wire::kFlagFua : 0,
                     replicated ? replicated : &r);
  }
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fua,
              bool* replicated = nullptr) {
    uint16_t flags = (fua ? wire::kFlagFua : 0) | (may_trim ? wire::kFlagMayTrim : 0);
    bool r;
    return Replicate(wire::Type::kZero, nullptr, count, offset, flags,
                     replicated ? replicated : &r);
  }
  // With fencing: before the export answers a change (fencing.h, BeforeAck).
  Status Acknowledge(Status done, bool replicated) {
    if (!done.ok() || !fencer) return done;
    return fencer->BeforeAck(replicated);
  }

  // The FLUSH barrier goes to the peer first, so that both copies sync at
  // the same time; it is answered after both.
  Status Flush(bool* replicated = nullptr) {
    bool r_;
    if (!replicated) replicated = &r_;
    *replicated = false;
    auto p = std::make_shared<Pending>();
    p->type = wire::Type::kFlush;
    std::shared_ptr<Link> l = CurrentLink();
    Status send_status;
    wire::Header h;
    h.type = wire::Type::kFlush;
    bool sent = SendTracked(l, h, nullptr, p, &send_status);
    if (sent && !send_status.ok()) DropPeer(l, "send: " + send_status.message());
    Status local = disk->Flush();
    if (sent && cfg().protocol == Protocol::kSync) {
      WaitAck(l, p);
      // A failed flush on the peer: what it had not made durable is out of sync.
      if (!p->ok) {
        Bitmap mark(size, meta->granularity());
        for (uint64_t b : p->bits) mark.SetBit(b);
        (void)meta->MergeBitmap(mark);
      }
      *replicated = p->ok;
    } else if (sent) {
      *replicated = send_status.ok();
    }
    return local;
  }

  // Becomes primary and starts the export (Promote after its checks, or an
  // election with fencing).
  Status BecomePrimary(std::vector<std::string>* notes);

  // FencingHost (fencing.h).
  FencingView View() override;
  Status PromoteElected(uint64_t token, std::vector<std::string>* notes) override;
  void DemoteFenced(const std::string& why) override;
  void DropPeerLink(const std::string& why) override {
    if (auto l = CurrentLink()) DropPeer(l, "fencing: " + why);
  }
  void ObserveToken(uint64_t token) override {
    std::lock_guard lk(token_mu);
    if (token <= max_token_seen) return;
    Status s = meta->Update([token](Superblock& sb) { sb.max_token = token; });
    if (!s.ok())
      log::Error("mirror {}: cannot record fencing token {}: {}", tag, token, s.message());
    max_token_seen = token;
  }
  void StartDivergence() override {
    (void)meta->Update([](Superblock& sb) { RotateForDivergence(&sb.gen); });
  }
};

// The export on the primary: reads are local, writes and flushes replicate.
class MirrorBackend : public nbd::Backend {
 public:
  explicit MirrorBackend(Node::Impl* n) : n_(n) {}
  uint64_t Size() const override { return n_->size; }
  nbd::BackendCaps Caps() const override {
    nbd::BackendCaps c;
    c.writable = c.flush = c.fua = c.multi_conn = true;
    // TRIM and WRITE_ZEROES replicate as zeroing (ApplyLocally); never
    // "fast", since the peer's copy may not be.
    c.trim = c.zero = true;
    return c;
  }
  std::string Description() const override {
    return "mirror " + n_->cfg().name + " (" + n_->self.device + ", replicated to " +
           n_->peer.name + ")";
  }
  Status Pread(void* buf, uint64_t count, uint64_t offset) override {
    return n_->disk->Pread(buf, count, offset);
  }
  Status Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua) override {
    bool rep = false;
    Status s = n_->Write(buf, count, offset, fua, &rep);
    return n_->Acknowledge(s, rep);
  }
  Status Flush() override {
    bool rep = false;
    Status s = n_->Flush(&rep);
    return n_->Acknowledge(s, rep);
  }
  Status Trim(uint64_t count, uint64_t offset, bool fua) override {
    bool rep = false;
    Status s = n_->Zero(count, offset, /*may_trim=*/true, fua, &rep);
    return n_->Acknowledge(s, rep);
  }
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua) override {
    // Not advertised as fast (Caps), so the server never asks for fast.
    if (fast) return Status::FromErrno("fast zero on a mirror", ENOTSUP);
    bool rep = false;
    Status s = n_->Zero(count, offset, may_trim, fua, &rep);
    return n_->Acknowledge(s, rep);
  }

 private:
  Node::Impl* n_;
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() {
  Stop();
  Wait();
}

std::string ControlSocketPath(const std::string& run_dir, const std::string& resource,
                              const std::string& node) {
  return run_dir + "/" + resource + "-" + node + ".sock";
}

namespace {

Result<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return Status::Usage("control socket path too long: " + path);
  std::strcpy(sa.sun_path, path.c_str());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return Status::FromErrno(path, errno);
  return fd;
}

Result<std::string> ReadLine(int fd) {
  std::string out;
  char c;
  while (true) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("control socket read", errno);
    if (n == 0 || c == '\n') break;
    out += c;
    if (out.size() > (1 << 20)) return Status::Failure("control message too long");
  }
  return out;
}

}  // namespace

Result<Json> ControlCall(const std::string& socket_path, const Json& request, Micros timeout) {
  auto fd = ConnectUnix(socket_path);
  if (!fd.ok())
    return Status::Failure("no mirror daemon answers on " + socket_path +
                           " (is 'mirror run' running?)");
  SetSocketTimeouts(fd->get(), timeout);
  std::string line = request.dump() + "\n";
  CK_RETURN_IF_ERROR(WriteAll(fd->get(), line.data(), line.size(), "control socket"));
  CK_ASSIGN_OR_RETURN(std::string reply, ReadLine(fd->get()));
  Json j = Json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Failure("bad answer from " + socket_path);
  if (j.contains("error")) {
    std::string msg = j["error"].value("message", "error");
    return j["error"].value("exit_code", 1) == 2 ? Status::Usage(msg) : Status::Failure(msg);
  }
  return j;
}

}  // namespace cloudkeep::mirror

namespace cloudkeep::mirror {

namespace {

Result<UniqueFd> ListenTcp(const std::string& address) {
  CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address, "address", 7789));
  CK_ASSIGN_OR_RETURN(SockAddr sa, Resolve(hp));
  UniqueFd fd(socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd.get(), sa.sa(), sa.len) != 0)
    return Status::Usage("cannot listen on replication address " + address + ": " +
                         std::strerror(errno));
  if (listen(fd.get(), 8) != 0) return Status::FromErrno("listen " + address, errno);
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return Status::Usage("control socket path too long: " + path);
  std::strcpy(sa.sun_path, path.c_str());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return Status::FromErrno("bind " + path, errno);
  chmod(path.c_str(), 0600);
  if (listen(fd.get(), 16) != 0) return Status::FromErrno("listen " + path, errno);
  return fd;
}

Status MkdirP(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return Status::Ok();
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) return Status::Ok();
  CK_RETURN_IF_ERROR(MkdirP(DirName(dir)));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::FromErrno("mkdir " + dir, errno);
  return Status::Ok();
}

Json ErrorJson(const Status& s) {
  return Json{{"error", {{"message", s.message()}, {"exit_code", s.exit_code()}}}};
}

}  // namespace

Result<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& n = *impl;
  n.opt = std::move(options);
  CK_ASSIGN_OR_RETURN(n.size, ValidateLocal(n.opt.cfg, n.opt.node));
  n.self = *n.opt.cfg.FindNode(n.opt.node);
  n.peer = *n.opt.cfg.PeerOf(n.opt.node);
  n.tag = n.opt.cfg.name + "/" + n.self.name;
  CK_ASSIGN_OR_RETURN(Superblock sb, Metadata::Peek(n.self.meta));
  if (sb.resource != n.opt.cfg.name || sb.node != n.self.name)
    return Status::Usage("metadata " + n.self.meta + " belongs to resource " + sb.resource +
                         " node " + sb.node + ", not " + n.tag);
  if (sb.device_size != n.size)
    return Status::Usage("device " + n.self.device + " is " + std::to_string(n.size) +
                         " bytes but its metadata " + n.self.meta + " says " +
                         std::to_string(sb.device_size));
  CK_ASSIGN_OR_RETURN(UniqueFd dev, LockDevice(n.self.device));
  CK_ASSIGN_OR_RETURN(n.disk, nbd::FileBackend::Adopt(std::move(dev), n.self.device, true));
  CK_ASSIGN_OR_RETURN(n.meta, Metadata::Open(n.self.meta));
  CK_ASSIGN_OR_RETURN(n.auth, LinkAuth::Create(n.opt.cfg));
  if (sb.flags & kFlagPrimary) {
    CK_RETURN_IF_ERROR(n.meta->RecoverActivityLog());
    CK_RETURN_IF_ERROR(n.meta->Update([](Superblock& s) {
      s.flags &= ~kFlagPrimary;
      s.flags |= kFlagCrashedPrimary;
    }));
    log::Warn(
        "mirror {}: stopped as primary without a demote: the activity log's {} are marked out of "
        "sync",
        n.tag, FormatBytes(n.meta->DirtyBytes()));
  }
  // Control socket: one daemon per node.
  CK_RETURN_IF_ERROR(MkdirP(n.opt.run_dir));
  n.ctl_path = ControlSocketPath(n.opt.run_dir, n.opt.cfg.name, n.self.name);
  if (ConnectUnix(n.ctl_path).ok())
    return Status::Usage("node " + n.tag + " already runs (control socket " + n.ctl_path +
                         " answers)");
  unlink(n.ctl_path.c_str());
  CK_ASSIGN_OR_RETURN(n.ctl_fd, ListenUnix(n.ctl_path));
  if (!(n.self.name < n.peer.name)) {
    CK_ASSIGN_OR_RETURN(n.listen_fd, ListenTcp(n.self.address));
  }
  n.max_token_seen = sb.max_token;
  std::unique_ptr<Node> node(new Node(std::move(impl)));
  Impl* ip = node->impl_.get();
  if (ip->opt.cfg.fencing == Fencing::kEtcd) {
    CK_ASSIGN_OR_RETURN(ip->fencer, Fencer::Create(ip->opt.cfg, ip->self.name, ip));
    if (ip->opt.cloud_address_take && !ip->opt.cfg.service_address.empty())
      ip->fencer->UseServiceAddress(
          MakeCloudAddress(ip->opt.cfg.service_address, ip->opt.cfg.service_interface, ip->tag,
                           ip->opt.cloud_address_name, ip->opt.cloud_address_take));
  }
  Superblock now = ip->meta->sb();
  log::Info("mirror {}: started, {} {} ({}), generation {}, {} out of sync", ip->tag,
            ip->self.device, FormatBytes(ip->size), ip->DiskStateLocked(),
            FormatGeneration(now.gen.current), FormatBytes(ip->meta->DirtyBytes()));
  ip->conn_thread = std::thread([ip] { ip->ConnectLoop(); });
  if (ip->fencer) ip->fencer->Start();
  Node* np = node.get();
  ip->ctl_thread = std::thread([ip, np] {
    while (!ip->stopping) {
      pollfd p{ip->ctl_fd.get(), POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      int c = accept4(ip->ctl_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard lk(ip->ctl_mu);
      ip->ctl_threads.emplace_back([np, c] {
        UniqueFd fd(c);
        SetSocketTimeouts(fd.get(), Micros(600'000'000));
        auto line = ReadLine(fd.get());
        if (!line.ok()) return;
        Json req = Json::parse(*line, nullptr, false);
        Json out;
        std::string cmd = req.is_object() ? req.value("cmd", "") : "";
        if (cmd == "status") {
          out = np->StatusJson();
        } else if (cmd == "promote") {
          std::vector<std::string> notes;
          Status s = np->Promote(req.value("force", false), &notes);
          out = s.ok() ? Json{{"ok", true}, {"notes", notes}} : ErrorJson(s);
          if (s.ok()) out["status"] = np->StatusJson();
        } else if (cmd == "demote") {
          Status s = np->Demote();
          out = s.ok() ? Json{{"ok", true}, {"status", np->StatusJson()}} : ErrorJson(s);
        } else if (cmd == "verify") {
          auto r = np->Verify(req.value("resync", false), req.value("block_bytes", uint64_t{0}));
          out = r.ok() ? *r : ErrorJson(r.status());
        } else if (cmd == "resolve") {
          Status s = np->Resolve(req.value("discard", ""));
          out = s.ok() ? Json{{"ok", true}} : ErrorJson(s);
        } else {
          out = ErrorJson(Status::Usage("unknown control command '" + cmd + "'"));
        }
        std::string text = out.dump() + "\n";
        (void)WriteAll(fd.get(), text.data(), text.size(), "control reply");
      });
    }
  });
  if (ip->opt.start_primary && ip->fencer) {
    log::Warn("mirror {}: --primary ignored: fencing = \"etcd\" elects the primary", ip->tag);
  } else if (ip->opt.start_primary) {
    std::vector<std::string> notes;
    Status s = node->Promote(false, &notes);
    for (auto& note : notes) log::Warn("mirror {}: {}", ip->tag, note);
    if (!s.ok()) return s;
  }
  return node;
}

void Node::Stop() {
  Impl& n = *impl_;
  if (n.stopping.exchange(true)) return;
  {
    std::lock_guard lk(n.mu);
    n.stop_cv.notify_all();
  }
  std::unique_ptr<nbd::Server> server;
  {
    std::lock_guard lk(n.mu);
    server = std::move(n.server);
  }
  if (server) server->Stop();
  // Fencing: writes waiting for the lease fail now (their connections are
  // being shut down), and the key is given up (revoked) for the peer.
  if (n.fencer) n.fencer->Stop();
  if (server) server->Wait();
  bool was_primary;
  {
    std::lock_guard lk(n.mu);
    was_primary = n.primary;
  }
  if (was_primary) {
    (void)n.Flush();
    (void)n.meta->Update([](Superblock& sb) { sb.flags &= ~kFlagPrimary; });
    std::lock_guard lk(n.mu);
    n.primary = false;
  }
  if (auto l = n.CurrentLink()) n.DropPeer(l, "stopping");
}

void Node::Wait() {
  Impl& n = *impl_;
  if (n.conn_thread.joinable()) n.conn_thread.join();
  if (n.ctl_thread.joinable()) n.ctl_thread.join();
  std::vector<std::thread> ts;
  {
    std::lock_guard lk(n.ctl_mu);
    ts.swap(n.ctl_threads);
  }
  for (auto& t : ts) t.join();
  if (!n.ctl_path.empty()) unlink(n.ctl_path.c_str());
  n.ctl_path.clear();
  if (n.meta) (void)n.meta->FlushBitmap();
}

uint64_t Node::Size() const {
  return impl_->size;
}
Status Node::Read(void* buf, uint64_t count, uint64_t offset) {
  return impl_->disk->Pread(buf, count, offset);
}
Status Node::Write(const void* buf, uint64_t count, uint64_t offset, bool fua) {
  return impl_->Write(buf, count, offset, fua);
}
Status Node::Zero(uint64_t count, uint64_t offset, bool may_trim, bool fua) {
  return impl_->Zero(count, offset, may_trim, fua);
}
Status Node::Flush() {
  return impl_->Flush();
}

Json Node::StatusJson() {
  Impl& n = *impl_;
  Superblock sb = n.meta->sb();
  Json j;
  // Before n.mu: the fencer never waits for it while holding its own lock.
  Json fencing = n.fencer ? n.fencer->StatusJson() : Json{{"mode", "none"}};
  fencing["max_token_seen"] = n.max_token_seen.load();
  std::lock_guard lk(n.mu);
  j["resource"] = n.cfg().name;
  j["fencing"] = fencing;
  j["node"] = n.self.name;
  j["role"] = n.primary ? "Primary" : "Secondary";
  j["connection"] = n.conn;
  j["disk_state"] = n.DiskStateLocked();
  j["protocol"] = n.cfg().protocol == Protocol::kSync ? "sync" : "async";
  j["device"] = n.self.device;
  j["size_bytes"] = n.size;
  j["out_of_sync_bytes"] = n.meta->DirtyBytes();
  j["bitmap_granularity_bytes"] = sb.granularity;
  j["generation"] = {{"current", FormatGeneration(sb.gen.current)},
                     {"bitmap", FormatGeneration(sb.gen.bitmap)},
                     {"history", Json::array()}};
  for (uint64_t h : sb.gen.history)
    if (h) j["generation"]["history"].push_back(FormatGeneration(h));
  j["peer"] = {{"node", n.peer.name},
               {"address", n.peer.address},
               {"role", n.peer_role},
               {"disk_state", n.peer_disk},
               {"connected", n.link != nullptr}};
  if (!n.last_error.empty()) j["last_event"] = n.last_error;
  if (n.resync != ResyncRole::kNone) {
    double secs = std::chrono::duration<double>(Clock::now() - n.resync_start).count();
    uint64_t done = std::min<uint64_t>(n.resync_done, n.resync_total);
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    uint64_t left = n.resync_total - done;
    j["resync"] = {{"direction", n.resync == ResyncRole::kSource ? "to_peer" : "from_peer"},
                   {"total_bytes", n.resync_total},
                   {"done_bytes", done},
                   {"percent", n.resync_total ? 100.0 * static_cast<double>(done) /
                                                    static_cast<double>(n.resync_total)
                                              : 100.0},
                   {"rate_bytes_per_second", static_cast<uint64_t>(rate)},
                   {"eta_seconds", rate > 0 ? static_cast<double>(left) / rate : -1.0}};
  }
  if (n.split_brain) j["split_brain"] = n.split_brain_info;
  if (!n.last_resync.is_null()) j["last_resync"] = n.last_resync;
  if (!n.discard_peer.empty()) j["resolve_pending"] = {{"discard", n.discard_peer}};
  if (sb.flags & kFlagDiscard) j["resolve_pending"] = {{"discard", n.self.name}};
  {
    std::lock_guard pk(n.pend_mu);
    j["in_flight_writes"] = n.pending.size();
    if (n.cfg().protocol == Protocol::kAsync)
      j["async"] = {
          {"unacknowledged_bytes", n.pending_bytes},
          {"max_loss_bytes", n.cfg().async_max_queued_bytes},
          {"note",
           "protocol A: writes acknowledged once queued; a primary lost now loses at most "
           "max_loss_bytes of acknowledged writes"}};
  }
  {
    std::lock_guard ll(n.lat_mu);
    uint64_t cutoff = MonoNs() - 60ull * 1000 * 1000 * 1000;
    while (!n.latencies.empty() && n.latencies.front().first < cutoff) n.latencies.pop_front();
    std::vector<uint32_t> v;
    v.reserve(n.latencies.size());
    for (auto& [t, us] : n.latencies) v.push_back(us);
    std::sort(v.begin(), v.end());
    auto pct = [&](double q) {
      return v.empty() ? 0u
                       : v[std::min(v.size() - 1,
                                    static_cast<size_t>(q * static_cast<double>(v.size())))];
    };
    j["write_latency"] = {
        {"window_seconds", 60}, {"writes", v.size()}, {"p50_us", pct(0.50)}, {"p99_us", pct(0.99)}};
  }
  if (n.server) {
    auto st = n.server->Stats();
    j["export"] = {{"addresses", n.server->Addresses()},
                   {"connections_open", st.connections_open},
                   {"requests_total", st.requests_total}};
  }
  if (auto* l = n.link.get())
    j["link"] = {{"bytes_sent", l->bytes_sent()},
                 {"bytes_received", l->bytes_received()},
                 {"cipher", l->Cipher()}};
  return j;
}

Status Node::Promote(bool force, std::vector<std::string>* notes) {
  Impl& n = *impl_;
  if (n.fenced()) {
    {
      std::lock_guard lk(n.mu);
      if (n.resync == ResyncRole::kTarget)
        return Status::Usage("a resync into " + n.tag + " is running: wait for it");
    }
    return n.fencer->ManualPromote(force, notes);
  }
  std::string disk;
  bool connected;
  {
    std::lock_guard lk(n.mu);
    if (n.primary) return Status::Ok();
    if (n.stopping) return Status::Failure("stopping");
    connected = n.link != nullptr;
    if (connected && n.peer_role == "Primary")
      return Status::Usage("peer " + n.peer.name +
                           " is primary: demote it first (two primaries are never allowed)");
    if (n.resync == ResyncRole::kTarget)
      return Status::Usage(
          "a resync into " + n.tag + " is running (" +
          FormatBytes(n.resync_total - std::min<uint64_t>(n.resync_done, n.resync_total)) +
          " left): wait for it");
    disk = n.DiskStateLocked();
  }
  if (disk == "Inconsistent" || disk == "Outdated") {
    std::string what = disk == "Inconsistent"
                           ? "its copy is Inconsistent (a resync did not finish): " +
                                 FormatBytes(n.meta->DirtyBytes()) +
                                 " may hold old or mixed data, and the client would read it"
                           : "its copy is Outdated: every write made on " + n.peer.name +
                                 " since generation " + FormatGeneration(n.meta->sb().gen.current) +
                                 " would be lost";
    if (!force)
      return Status::Usage("refusing to promote " + n.tag + ": " + what +
                           " (--force to promote anyway)");
    notes->push_back("promoted with --force: " + what);
  }
  if (!connected)
    notes->push_back("peer " + n.peer.name +
                     " is not connected: cloudkeep cannot exclude a second primary (fencing = "
                     "none); writes are tracked "
                     "in the bitmap");
  return n.BecomePrimary(notes);
}

Status Node::Impl::BecomePrimary(std::vector<std::string>* notes) {
  (void)notes;
  bool connected;
  {
    std::lock_guard lk(mu);
    if (primary) return Status::Ok();
    if (stopping) return Status::Failure("stopping");
    connected = link != nullptr;
  }
  // Without fencing a primary alone starts a new generation at once. With
  // fencing it starts one lazily, at the first change of its term that the
  // standby lacks, before that change is acknowledged and after the standby
  // is recorded Outdated (Fencer::BeforeAck -> StartDivergence): a node that
  // is elected and stops or dies without writing leaves nothing divergent,
  // so the two copies still meet as one generation (no false split brain).
  const bool rotate = !connected && !fenced();
  CK_RETURN_IF_ERROR(meta->Update([&](Superblock& sb) {
    sb.flags |= kFlagPrimary;
    if (rotate) RotateForDivergence(&sb.gen);
    if (sb.gen.current == 0) sb.gen.current = NewGenerationId();
    sb.flags &= ~(kFlagInconsistent | kFlagOutdated);
  }));
  auto backend = std::make_shared<MirrorBackend>(this);
  nbd::ServerOptions so;
  so.listen = opt.export_listen;
  so.unix_socket = opt.export_socket;
  std::unique_ptr<nbd::Server> started;
  if (!so.listen.empty() || !so.unix_socket.empty()) {
    auto s = nbd::Server::Start(so, {nbd::Export{"", "mirror " + cfg().name, backend},
                                     nbd::Export{cfg().name, "mirror " + cfg().name, backend}});
    if (!s.ok()) {
      (void)meta->Update([](Superblock& sb) { sb.flags &= ~kFlagPrimary; });
      return s.status();
    }
    started = std::move(*s);
  }
  std::shared_ptr<Link> l;
  {
    std::lock_guard lk(mu);
    primary = true;
    server = std::move(started);
    l = link;
  }
  std::string where;
  {
    std::lock_guard lk(mu);
    if (server)
      where = " (export on " + fmt::format("{}", fmt::join(server->Addresses(), ", ")) + ")";
  }
  log::Info("mirror {}: role Secondary -> Primary{}", tag, where);
  SendState(l);
  return Status::Ok();
}

FencingView Node::Impl::View() {
  Superblock sb = meta->sb();
  std::lock_guard lk(mu);
  FencingView v;
  v.primary = primary;
  v.disk_state = DiskStateLocked();
  v.peer_connected = link != nullptr;
  v.peer_role = peer_role;
  v.peer_disk = peer_disk;
  v.resync_running = resync != ResyncRole::kNone;
  v.generation = sb.gen.current;
  return v;
}

Status Node::Impl::PromoteElected(uint64_t token, std::vector<std::string>* notes) {
  {
    std::lock_guard lk(mu);
    if (stopping) return Status::Failure("stopping");
    if (resync == ResyncRole::kTarget) return Status::Failure("a resync into this node is running");
  }
  (void)token;
  return BecomePrimary(notes);
}

void Node::Impl::DemoteFenced(const std::string& why) {
  std::unique_ptr<nbd::Server> srv;
  {
    std::lock_guard lk(mu);
    if (!primary) return;
    srv = std::move(server);
  }
  // The export's connections are shut down first; writes waiting in
  // BeforeAck fail only after that (fencing.cpp), so no client reads an
  // error: it sees the connection end and reconnects to the new primary.
  if (srv) {
    srv->Stop();
    srv->Wait();
  }
  std::shared_ptr<Link> l;
  {
    std::lock_guard lk(mu);
    primary = false;
    l = link;
  }
  (void)meta->Update([](Superblock& sb) { sb.flags &= ~kFlagPrimary; });
  log::Warn("mirror {}: role Primary -> Secondary (fenced: {})", tag, why);
  SendState(l);
}

Status Node::Demote() {
  Impl& n = *impl_;
  std::unique_ptr<nbd::Server> server;
  {
    std::lock_guard lk(n.mu);
    if (!n.primary) {
      if (n.fencer) n.fencer->ManualDemote();  // no campaign until the next promote
      return Status::Ok();
    }
    server = std::move(n.server);
  }
  if (server) server->Stop();
  // Writes suspended in BeforeAck end now (their connections are shut down).
  if (n.fencer) n.fencer->StopAcknowledging();
  if (server) server->Wait();
  CK_RETURN_IF_ERROR(n.Flush());
  std::shared_ptr<Link> l;
  {
    std::lock_guard lk(n.mu);
    n.primary = false;
    l = n.link;
  }
  CK_RETURN_IF_ERROR(n.meta->Update([](Superblock& sb) { sb.flags &= ~kFlagPrimary; }));
  log::Info("mirror {}: role Primary -> Secondary", n.tag);
  n.SendState(l);
  // Fencing: the key goes last, once nothing here acknowledges writes.
  if (n.fencer) n.fencer->ManualDemote();
  return Status::Ok();
}

Result<Json> Node::Verify(bool resync, uint64_t block) {
  Impl& n = *impl_;
  std::shared_ptr<Link> l;
  std::string disk;
  {
    std::lock_guard lk(n.mu);
    l = n.link;
    if (!l)
      return Status::Failure("node " + n.tag + " is not connected to " + n.peer.name +
                             ": nothing to compare with");
    if (n.peer_role == "Primary") return Status::Usage("run verify on the primary, " + n.peer.name);
    if (n.resync != ResyncRole::kNone) return Status::Usage("a resync is running: verify after it");
    disk = n.DiskStateLocked();
  }
  uint64_t g = n.meta->granularity();
  if (block == 0) block = g;
  if (block % 4096 || block > 4 * 1024 * 1024)
    return Status::Usage("verify block must be a multiple of 4KiB up to 4MiB");
  uint64_t chunk = std::max<uint64_t>(block, 4 * 1024 * 1024) / block * block;
  auto t0 = Clock::now();
  Json mismatches = Json::array();
  uint64_t mismatch_bytes = 0;
  std::vector<uint8_t> data(chunk);
  log::Info("mirror {}: online verify against {} started ({} in {} blocks)", n.tag, n.peer.name,
            FormatBytes(n.size), FormatBytes(block));
  for (uint64_t off = 0; off < n.size; off += chunk) {
    uint64_t len = std::min(chunk, n.size - off);
    auto p = std::make_shared<Pending>();
    p->type = wire::Type::kVerifyReq;
    std::vector<uint8_t> mine;
    {
      auto guard = n.ranges.Lock(off, len);
      CK_RETURN_IF_ERROR(n.disk->Pread(data.data(), len, off));
      mine = Digests(data.data(), len, block);
      wire::Header h;
      h.type = wire::Type::kVerifyReq;
      h.offset = off;
      h.length = static_cast<uint32_t>(len);
      uint8_t pl[4] = {static_cast<uint8_t>(block >> 24), static_cast<uint8_t>(block >> 16),
                       static_cast<uint8_t>(block >> 8), static_cast<uint8_t>(block)};
      h.payload_bytes = 4;
      Status ss;
      if (!n.SendTracked(l, h, pl, p, &ss) || !ss.ok())
        return Status::Failure("verify interrupted: the connection to " + n.peer.name + " ended");
    }
    n.WaitAck(l, p);
    if (!p->ok || p->reply.size() != mine.size())
      return Status::Failure("verify interrupted at offset " + std::to_string(off) +
                             ": no answer from " + n.peer.name);
    for (uint64_t i = 0; i * SHA256_DIGEST_LENGTH < mine.size(); i++) {
      if (std::memcmp(&mine[i * SHA256_DIGEST_LENGTH], &p->reply[i * SHA256_DIGEST_LENGTH],
                      SHA256_DIGEST_LENGTH) != 0) {
        uint64_t bo = off + i * block, bl = std::min(block, n.size - bo);
        mismatches.push_back({{"offset", bo}, {"length", bl}});
        mismatch_bytes += bl;
        CK_RETURN_IF_ERROR(n.meta->MarkDirty(bo, bl));
        log::Warn("mirror {}: verify: {} bytes at offset {} differ from {}", n.tag, bl, bo,
                  n.peer.name);
      }
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Json out{{"resource", n.cfg().name},
           {"node", n.self.name},
           {"peer", n.peer.name},
           {"verified_bytes", n.size},
           {"block_bytes", block},
           {"seconds", secs},
           {"mismatches", mismatches},
           {"mismatch_bytes", mismatch_bytes},
           {"out_of_sync_bytes", n.meta->DirtyBytes()},
           {"resynced", false}};
  log::Info("mirror {}: online verify done in {:.1f}s: {} blocks differ", n.tag, secs,
            mismatches.size());
  if (resync && mismatch_bytes) {
    if (disk != "UpToDate")
      return Status::Usage("cannot resync from " + n.tag + ": its disk is " + disk);
    {
      std::lock_guard lk(n.mu);
      if (n.link != l)
        return Status::Failure("the connection to " + n.peer.name + " ended before the resync");
    }
    n.ResyncSource(l);
    out["resynced"] = n.meta->DirtyBytes() == 0;
    out["out_of_sync_bytes"] = n.meta->DirtyBytes();
  }
  return out;
}

Status Node::Resolve(const std::string& discard) {
  Impl& n = *impl_;
  if (discard != n.self.name && discard != n.peer.name)
    return Status::Usage("--discard names node '" + discard + "', which is not a node of " +
                         n.cfg().name + " (" + n.self.name + ", " + n.peer.name + ")");
  {
    std::lock_guard lk(n.mu);
    if (n.link && !n.split_brain)
      return Status::Usage("no split brain to resolve: " + n.tag + " is connected");
    if (discard == n.self.name && n.primary)
      return Status::Usage("node " + n.self.name +
                           " is primary: demote it before discarding its changes");
  }
  if (discard == n.self.name) {
    CK_RETURN_IF_ERROR(n.meta->Update([](Superblock& sb) { sb.flags |= kFlagDiscard; }));
  } else {
    std::lock_guard lk(n.mu);
    n.discard_peer = discard;
  }
  log::Warn("mirror {}: resolve: the changes of node {} will be discarded at the next connect",
            n.tag, discard);
  return Status::Ok();
}

}  // namespace cloudkeep::mirror
