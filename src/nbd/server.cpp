// The NBD server core. Section names in comments refer to
// NetworkBlockDevice/nbd doc/proto.md.
#include "nbd/server.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "core/log.h"
#include "core/net.h"
#include "nbd/protocol.h"

namespace cloudkeep::nbd {

ServerStats ServerCounters::Snapshot() const {
  ServerStats s;
  s.connections_total = connections_total.load();
  s.connections_open = connections_open.load();
  s.connections_refused = connections_refused.load();
  s.requests_total = requests_total.load();
  s.errors_total = errors_total.load();
  s.bytes_read = bytes_read.load();
  s.bytes_written = bytes_written.load();
  return s;
}

namespace {

using namespace proto;  // NOLINT: the protocol's names read best unqualified here

// Payloads above this are refused ("Size constraints": 2^25 SHOULD NOT be
// considered a denial of service, and nothing larger need be accepted).
constexpr uint32_t kMaxPayload = 32u << 20;
// Option data above this is read and discarded with NBD_REP_ERR_TOO_BIG;
// far above it the client is disconnected without reading it.
constexpr uint32_t kMaxOptionData = 64u << 10;
constexpr uint32_t kMaxOptionDiscard = 1u << 20;
// Request bytes a connection may hold in memory at once.
constexpr size_t kMaxInflightBytes = 64u << 20;
// Descriptors in one NBD_REPLY_TYPE_BLOCK_STATUS chunk (proto: SHOULD NOT exceed 2^20).
constexpr size_t kMaxExtents = 1u << 16;

uint64_t NowNs() {
  return MonoNs();
}

uint32_t NbdError(const Status& s) {
  return ErrnoToNbd(s.sys_errno());
}
Status Errno(int err, const std::string& what) {
  return Status::FromErrno(what, err);
}

// One client, from the handshake to the end of transmission.
class Connection {
 public:
  Connection(int fd, const std::vector<Export>& exports, const ServerOptions& options,
             const std::atomic<bool>& stop, ServerCounters* counters)
      : fd_(fd), exports_(exports), opt_(options), stop_(stop), ctr_(counters) {}

  void Run() {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one,
               sizeof one);  // fails harmlessly on Unix sockets
    SetSocketTimeouts(fd_, std::chrono::microseconds(0));
    int64_t us = opt_.reply_timeout.count();
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(us / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (!Handshake()) return;
    Transmission();
  }

 private:
  // --- socket I/O --------------------------------------------------------

  // Reads exactly n bytes. deadline_ns = 0: no deadline (transmission phase,
  // where an idle client is legitimate); the server's Stop() shuts the
  // socket down to end a blocked read.
  bool ReadExact(void* buf, size_t n, uint64_t deadline_ns) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      if (stop_.load()) return false;
      if (deadline_ns != 0) {
        uint64_t now = NowNs();
        if (now >= deadline_ns) {
          log::Debug("nbd: handshake timed out");
          return false;
        }
        pollfd pfd{fd_, POLLIN, 0};
        int ms = static_cast<int>(std::min<uint64_t>((deadline_ns - now) / 1000000 + 1, 1000));
        int rc = poll(&pfd, 1, ms);
        if (rc < 0 && errno != EINTR) return false;
        if (rc <= 0) continue;
      }
      ssize_t r = read(fd_, p, n);
      if (r == 0) return false;
      if (r < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

  bool Discard(size_t n, uint64_t deadline_ns) {
    char buf[4096];
    while (n > 0) {
      size_t k = std::min(n, sizeof buf);
      if (!ReadExact(buf, k, deadline_ns)) return false;
      n -= k;
    }
    return true;
  }

  // Writes header then payload as one message, whole, under the write lock.
  // A client that stops reading makes send() time out (SO_SNDTIMEO); the
  // connection is then shut down so that its reader ends too.
  bool Send(const std::string& header, const void* payload = nullptr, size_t payload_len = 0) {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (broken_) return false;
    iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                    {const_cast<void*>(payload), payload_len}};
    int iovcnt = payload_len ? 2 : 1;
    int idx = 0;
    while (idx < iovcnt) {
      msghdr msg{};
      msg.msg_iov = iov + idx;
      msg.msg_iovlen = static_cast<size_t>(iovcnt - idx);
      ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        log::Debug("nbd: client not reading replies ({}); disconnecting", std::strerror(errno));
        broken_ = true;
        shutdown(fd_, SHUT_RDWR);
        return false;
      }
      size_t left = static_cast<size_t>(n);
      while (idx < iovcnt && left >= iov[idx].iov_len) {
        left -= iov[idx].iov_len;
        ++idx;
      }
      if (idx < iovcnt) {
        iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
        iov[idx].iov_len -= left;
      }
    }
    return true;
  }

  // --- handshake ("Fixed newstyle negotiation") ---------------------------

  const Export* FindExport(const std::string& name) const {
    for (const auto& e : exports_)
      if (e.name == name) return &e;
    // "" names the default export: the first one.
    if (name.empty() && !exports_.empty()) return &exports_.front();
    return nullptr;
  }

  uint16_t TransmissionFlags(const Export& e) const {
    BackendCaps c = e.backend->Caps();
    bool ro = opt_.read_only || !c.writable;
    uint16_t f = kHasFlags | kSendCache;
    if (ro) {
      f |= kReadOnly;
    } else {
      // Always FLUSH and FUA on writable exports: qemu drops flushes otherwise.
      f |= kSendFlush | kSendFua | kSendWriteZeroes;
      if (c.trim) f |= kSendTrim;
      if (c.fast_zero) f |= kSendFastZero;
    }
    if (structured_) f |= kSendDf;  // DF only means something with structured replies
    // Read-only exports have nothing to flush; writable ones only when the
    // backend's Flush covers writes from every connection.
    if (ro || c.multi_conn) f |= kCanMultiConn;
    if (c.rotational) f |= kRotational;
    return f;
  }

  bool Reply(uint32_t option, uint32_t type, std::string_view data = {}) {
    return Send(OptionReply(option, type, data));
  }

  bool SendInfoExport(uint32_t option, const Export& e) {
    std::string d;
    Put16(&d, kInfoExport);
    Put64(&d, e.backend->Size());
    Put16(&d, TransmissionFlags(e));
    return Reply(option, kRepInfo, d);
  }

  bool Handshake() {
    uint64_t deadline = NowNs() + static_cast<uint64_t>(opt_.handshake_timeout.count()) * 1000;
    std::string hello;
    Put64(&hello, kNbdMagic);
    Put64(&hello, kIHaveOpt);
    Put16(&hello, kFlagFixedNewstyle | kFlagNoZeroes);
    if (!Send(hello)) return false;
    uint8_t cf[4];
    if (!ReadExact(cf, 4, deadline)) return false;
    uint32_t client_flags = Get32(cf);
    // "Client flags": unknown bits, or a client that is not fixed newstyle,
    // end the session (this server speaks fixed newstyle only).
    if ((client_flags & ~(kClientFixedNewstyle | kClientNoZeroes)) != 0 ||
        !(client_flags & kClientFixedNewstyle)) {
      log::Debug("nbd: client flags {:#x} refused", client_flags);
      return false;
    }
    no_zeroes_ = client_flags & kClientNoZeroes;

    for (;;) {
      uint8_t h[16];
      if (!ReadExact(h, sizeof h, deadline)) return false;
      if (Get64(h) != kIHaveOpt) {
        log::Debug("nbd: bad option magic");
        return false;
      }
      uint32_t option = Get32(h + 8);
      uint32_t length = Get32(h + 12);
      if (length > kMaxOptionData) {
        if (length > kMaxOptionDiscard || option == kOptExportName) return false;
        if (!Discard(length, deadline)) return false;
        if (!Reply(option, kRepErrTooBig)) return false;
        continue;
      }
      std::string data(length, '\0');
      if (length && !ReadExact(data.data(), length, deadline)) return false;

      switch (option) {
        case kOptExportName: {
          // "NBD_OPT_EXPORT_NAME": no option reply; an unknown name ends the session.
          const Export* e = FindExport(data);
          if (!e) {
            log::Debug("nbd: EXPORT_NAME of unknown export '{}'", data);
            return false;
          }
          std::string r;
          Put64(&r, e->backend->Size());
          Put16(&r, TransmissionFlags(*e));
          if (!no_zeroes_) r.append(124, '\0');
          if (!Send(r)) return false;
          return Enter(*e, data);
        }
        case kOptAbort:
          Reply(option, kRepAck);  // "the server SHOULD reply with NBD_REP_ACK"
          return false;
        case kOptList: {
          if (length != 0) {
            if (!Reply(option, kRepErrInvalid)) return false;
            break;
          }
          for (const auto& e : exports_) {
            std::string d;
            Put32(&d, static_cast<uint32_t>(e.name.size()));
            d += e.name;
            d += e.description;
            if (!Reply(option, kRepServer, d)) return false;
          }
          if (!Reply(option, kRepAck)) return false;
          break;
        }
        case kOptInfo:
        case kOptGo: {
          auto req = ParseInfoRequest(data);
          if (!req) {
            if (!Reply(option, kRepErrInvalid)) return false;
            break;
          }
          const Export* e = FindExport(req->name);
          if (!e) {
            if (!Reply(option, kRepErrUnknown, "unknown export '" + req->name + "'")) return false;
            break;
          }
          for (uint16_t info : req->infos) {
            if (info == kInfoName) {
              std::string d;
              Put16(&d, kInfoName);
              d += e->name;
              if (!Reply(option, kRepInfo, d)) return false;
            } else if (info == kInfoDescription && !e->description.empty()) {
              std::string d;
              Put16(&d, kInfoDescription);
              d += e->description.substr(0, kMaxString);
              if (!Reply(option, kRepInfo, d)) return false;
            }
          }
          // Block sizes are sent whether or not they were asked for: the
          // defaults of "Size constraints" hold, so a client may ignore them.
          BlockSize bs = e->backend->BlockSizes();
          std::string d;
          Put16(&d, kInfoBlockSize);
          Put32(&d, bs.minimum);
          Put32(&d, bs.preferred);
          Put32(&d, std::min(bs.maximum, kMaxPayload));
          if (!Reply(option, kRepInfo, d)) return false;
          // NBD_INFO_EXPORT last: "the server MUST send it" before the ACK.
          if (!SendInfoExport(option, *e)) return false;
          if (!Reply(option, kRepAck)) return false;
          if (option == kOptGo) return Enter(*e, req->name);
          break;
        }
        case kOptStructuredReply:
          if (length != 0 || structured_) {
            if (!Reply(option, kRepErrInvalid)) return false;
            break;
          }
          structured_ = true;
          if (!Reply(option, kRepAck)) return false;
          break;
        case kOptListMetaContext:
        case kOptSetMetaContext: {
          if (!MetaContext(option, data)) return false;
          break;
        }
        default:
          // STARTTLS included: this server has no TLS ("NOTLS mode": NBD_REP_ERR_UNSUP).
          log::Debug("nbd: option {} ({}) unsupported", option, OptionName(option));
          if (!Reply(option, kRepErrUnsup)) return false;
          break;
      }
    }
  }

  bool MetaContext(uint32_t option, const std::string& data) {
    bool set = option == kOptSetMetaContext;
    // "NBD_OPT_SET_META_CONTEXT": structured replies must come first.
    if (set && !structured_)
      return Reply(option, kRepErrInvalid, "negotiate structured replies first");
    auto req = ParseMetaContextRequest(data);
    if (!req) return Reply(option, kRepErrInvalid);
    if (!FindExport(req->export_name))
      return Reply(option, kRepErrUnknown, "unknown export '" + req->export_name + "'");
    bool match = false;
    if (!set && req->queries.empty()) match = true;  // list everything
    for (const auto& q : req->queries) {
      if (q == kBaseAllocation) match = true;
      if (!set && q == "base:") match = true;  // the namespace wildcard, LIST only
    }
    if (set) {
      meta_export_ = req->export_name;
      base_allocation_ = match;
    }
    if (match) {
      std::string d;
      Put32(&d, set ? kBaseAllocationId : 0);
      d += kBaseAllocation;
      if (!Reply(option, kRepMetaContext, d)) return false;
    }
    return Reply(option, kRepAck);
  }

  bool Enter(const Export& e, const std::string& name) {
    export_ = &e;
    caps_ = e.backend->Caps();
    read_only_ = opt_.read_only || !caps_.writable;
    // Contexts count only if SET_META_CONTEXT named this export ("Metadata querying").
    if (!meta_export_ || *meta_export_ != name) base_allocation_ = false;
    size_ = e.backend->Size();
    log::Debug("nbd: client entered transmission on export '{}'", name);
    return true;
  }

  // --- transmission ------------------------------------------------------

  struct Job {
    Request req;
    std::unique_ptr<char[]> payload;
    size_t accounted = 0;  // bytes counted in inflight_bytes_
  };

  // Each worker reads its own request under read_mu_, runs it and sends its
  // reply, as nbdkit's connection threads do: no request is handed from one
  // thread to another (measured: the hand-off cost more than the snapshot
  // read itself at depth 16). A worker that has taken a request while no
  // other is waiting to read starts one more, up to workers_per_connection.
  void Transmission() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      SpawnWorkerLocked();
    }
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return live_ == 0; });
    std::vector<std::thread> workers = std::move(workers_);
    lock.unlock();
    for (auto& t : workers) t.join();
  }

  void SpawnWorkerLocked() {
    ++live_;
    workers_.emplace_back([this] { Worker(); });
  }

  // Reads one request (and a WRITE's payload); false when reading is over:
  // end of stream, NBD_CMD_DISC, a protocol violation, or the server stops.
  bool ReadRequest(Job* job) {
    uint8_t h[kRequestSize];
    if (!ReadExact(h, sizeof h, 0)) return false;
    if (!DecodeRequest(h, &job->req)) {
      log::Debug("nbd: bad request magic; disconnecting");
      return false;
    }
    ctr_->requests_total++;
    if (job->req.type == kCmdDisc) return false;  // "NBD_CMD_DISC": finish what is in flight
    if (job->req.type == kCmdWrite && job->req.length > kMaxPayload) {
      // "the server MAY choose to disconnect rather than reading the payload"
      log::Debug("nbd: WRITE of {} bytes over the 32 MiB limit; disconnecting", job->req.length);
      return false;
    }
    size_t bytes = RequestBytes(job->req);
    {
      // Bound the request bytes held in memory; waiting here (with the read
      // lock held) stops reading this client until replies drain.
      std::unique_lock<std::mutex> lock(mu_);
      space_cv_.wait(lock, [&] {
        return broken_flag_.load() || stop_.load() || inflight_bytes_ == 0 ||
               inflight_bytes_ + bytes <= kMaxInflightBytes;
      });
      if (broken_flag_.load() || stop_.load()) return false;
      inflight_bytes_ += bytes;
    }
    job->accounted = bytes;
    if (job->req.type == kCmdWrite) {
      job->payload.reset(new char[std::max<uint32_t>(job->req.length, 1)]);
      if (!ReadExact(job->payload.get(), job->req.length, 0)) return false;
    }
    return true;
  }

  static size_t RequestBytes(const Request& r) {
    return r.type == kCmdWrite || (r.type == kCmdRead && r.length <= kMaxPayload) ? r.length : 0;
  }

  void Release(Job& job) {
    if (job.accounted == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    inflight_bytes_ -= job.accounted;
    job.accounted = 0;
    space_cv_.notify_all();
  }

  void Worker() {
    for (;;) {
      Job job;
      {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++readers_waiting_;
        }
        std::unique_lock<std::mutex> read_lock(read_mu_);
        {
          std::lock_guard<std::mutex> lock(mu_);
          --readers_waiting_;
        }
        if (reading_done_) break;
        if (!ReadRequest(&job)) {
          reading_done_ = true;
          Release(job);
          break;
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (readers_waiting_ == 0 && workers_.size() < std::max(1u, opt_.workers_per_connection))
          SpawnWorkerLocked();
      }
      if (!Execute(job)) {
        broken_flag_ = true;
        shutdown(fd_, SHUT_RDWR);
      }
      Release(job);
    }
    std::lock_guard<std::mutex> lock(mu_);
    --live_;
    done_cv_.notify_all();
  }

  bool InBounds(const Request& r) const {
    return r.offset <= size_ && r.length <= size_ - r.offset;
  }

  bool SendError(const Request& r, uint32_t error, const std::string& message) {
    ctr_->errors_total++;
    if (structured_) return Send(StructuredError(r.cookie, error, message));
    return Send(SimpleReply(error, r.cookie));
  }
  bool SendError(const Request& r, const Status& s) {
    return SendError(r, NbdError(s), s.message());
  }
  bool SendOk(const Request& r) { return Send(SimpleReply(0, r.cookie)); }

  // Runs one request and sends its reply; false when the connection is lost.
  bool Execute(Job& job) {
    const Request& r = job.req;
    static constexpr uint16_t kAllowed[] = {
        /*READ*/ kCmdFlagDf,
        /*WRITE*/ kCmdFlagFua,
        /*DISC*/ 0,
        /*FLUSH*/ 0,
        /*TRIM*/ kCmdFlagFua,
        /*CACHE*/ 0,
        /*WRITE_ZEROES*/ kCmdFlagFua | kCmdFlagNoHole | kCmdFlagFastZero,
        /*BLOCK_STATUS*/ kCmdFlagReqOne,
    };
    if (r.type >= std::size(kAllowed))
      return SendError(r, kEinval, fmt::format("unknown command {}", r.type));
    uint16_t allowed = kAllowed[r.type];
    if (!structured_) allowed &= static_cast<uint16_t>(~kCmdFlagDf);
    if (read_only_) allowed &= static_cast<uint16_t>(~kCmdFlagFua);
    if (!(caps_.fast_zero && !read_only_)) allowed &= static_cast<uint16_t>(~kCmdFlagFastZero);
    if (r.flags & ~allowed)
      return SendError(r, kEinval,
                       fmt::format("flags {:#x} not valid for {}", r.flags, CommandName(r.type)));
    bool fua = r.flags & kCmdFlagFua;
    Backend& b = *export_->backend;

    switch (r.type) {
      case kCmdRead: {
        if (r.length == 0 || r.length > kMaxPayload || !InBounds(r))
          return SendError(r, kEinval, "read out of bounds or of a bad length");
        std::unique_ptr<char[]> buf(new char[r.length]);
        Status s = b.Pread(buf.get(), r.length, r.offset);
        if (!s.ok()) return SendError(r, s);
        ctr_->bytes_read += r.length;
        if (structured_) {
          // One NBD_REPLY_TYPE_OFFSET_DATA chunk: DF holds trivially.
          std::string h =
              StructuredHeader(kReplyFlagDone, kReplyTypeOffsetData, r.cookie, r.length + 8);
          Put64(&h, r.offset);
          return Send(h, buf.get(), r.length);
        }
        return Send(SimpleReply(0, r.cookie), buf.get(), r.length);
      }
      case kCmdWrite: {
        if (read_only_) return SendError(r, kEperm, "the export is read-only");
        if (r.length == 0 || !InBounds(r))
          return SendError(r, kEinval, "write out of bounds or of a bad length");
        Status s = b.Pwrite(job.payload.get(), r.length, r.offset, fua);
        if (!s.ok()) return SendError(r, s);
        ctr_->bytes_written += r.length;
        return SendOk(r);
      }
      case kCmdFlush: {
        if (r.offset != 0 || r.length != 0)
          return SendError(r, kEinval, "flush takes no offset or length");
        if (read_only_) return SendOk(r);
        Status s = b.Flush();
        return s.ok() ? SendOk(r) : SendError(r, s);
      }
      case kCmdTrim: {
        if (read_only_) return SendError(r, kEperm, "the export is read-only");
        if (r.length == 0 || !InBounds(r)) return SendError(r, kEinval, "trim out of bounds");
        Status s = caps_.trim ? b.Trim(r.length, r.offset, fua)
                              : (fua ? b.Flush() : Status::Ok());  // trim is advisory
        return s.ok() ? SendOk(r) : SendError(r, s);
      }
      case kCmdWriteZeroes: {
        if (read_only_) return SendError(r, kEperm, "the export is read-only");
        if (r.length == 0 || !InBounds(r))
          return SendError(r, kEinval, "write zeroes out of bounds");
        Status s = WriteZeroes(b, r.length, r.offset, !(r.flags & kCmdFlagNoHole),
                               r.flags & kCmdFlagFastZero, fua);
        return s.ok() ? SendOk(r) : SendError(r, s);
      }
      case kCmdBlockStatus:
        return BlockStatus(b, r);
      case kCmdCache: {
        if (r.length == 0 || !InBounds(r)) return SendError(r, kEinval, "cache out of bounds");
        Status s = caps_.cache ? b.Cache(r.length, r.offset) : Status::Ok();
        return s.ok() ? SendOk(r) : SendError(r, s);
      }
      default:
        return SendError(r, kEinval, fmt::format("unknown command {}", r.type));
    }
  }

  Status WriteZeroes(Backend& b, uint64_t count, uint64_t offset, bool may_trim, bool fast,
                     bool fua) {
    if (caps_.zero) {
      Status s = b.Zero(count, offset, may_trim, fast, fua);
      if (s.ok() || fast || s.sys_errno() != ENOTSUP) return s;
    } else if (fast) {
      return Errno(ENOTSUP, "no fast zero on this export");
    }
    // "NBD_CMD_WRITE_ZEROES" without a backend zero: plain writes of zeroes.
    static const std::string kZeros(1 << 20, '\0');
    while (count > 0) {
      uint64_t n = std::min<uint64_t>(count, kZeros.size());
      CK_RETURN_IF_ERROR(b.Pwrite(kZeros.data(), n, offset, false));
      count -= n;
      offset += n;
    }
    return fua ? b.Flush() : Status::Ok();
  }

  bool BlockStatus(Backend& b, const Request& r) {
    // "NBD_CMD_BLOCK_STATUS": only with structured replies and a selected context.
    if (!structured_ || !base_allocation_)
      return SendError(r, kEinval, "no metadata context was selected");
    if (r.length == 0 || !InBounds(r)) return SendError(r, kEinval, "block status out of bounds");
    std::vector<Extent> raw;
    Status s = caps_.extents ? b.Extents(r.length, r.offset, &raw)
                             : b.Backend::Extents(r.length, r.offset, &raw);
    if (!s.ok()) return SendError(r, s);
    // Merge equal neighbours, keep within the request, bound the count.
    std::vector<Extent> ext;
    uint64_t total = 0;
    for (const auto& e : raw) {
      if (e.length == 0) continue;
      uint64_t len = std::min<uint64_t>(e.length, r.length - total);
      uint32_t flags = e.flags & (Extent::kHole | Extent::kZero);
      if (!ext.empty() && ext.back().flags == flags && ext.back().length + len <= UINT32_MAX)
        ext.back().length += len;
      else if (ext.size() < kMaxExtents)
        ext.push_back(Extent{len, flags});
      else
        break;
      total += len;
      if (total >= r.length) break;
    }
    if (ext.empty()) return SendError(r, kEio, "the export reported no extents");
    if (r.flags & kCmdFlagReqOne) ext.resize(1);  // "exactly one descriptor", ≤ length
    std::string payload;
    Put32(&payload, kBaseAllocationId);
    for (const auto& e : ext) {
      Put32(&payload, static_cast<uint32_t>(std::min<uint64_t>(e.length, UINT32_MAX)));
      Put32(&payload, e.flags);
    }
    return Send(StructuredHeader(kReplyFlagDone, kReplyTypeBlockStatus, r.cookie,
                                 static_cast<uint32_t>(payload.size())) +
                payload);
  }

  const int fd_;
  const std::vector<Export>& exports_;
  const ServerOptions& opt_;
  const std::atomic<bool>& stop_;
  ServerCounters* ctr_;

  bool no_zeroes_ = false;
  bool structured_ = false;
  std::optional<std::string> meta_export_;
  bool base_allocation_ = false;
  const Export* export_ = nullptr;
  BackendCaps caps_;
  bool read_only_ = true;
  uint64_t size_ = 0;

  std::mutex write_mu_;
  bool broken_ = false;  // guarded by write_mu_
  std::atomic<bool> broken_flag_{false};

  std::mutex read_mu_;         // one reader of the socket at a time
  bool reading_done_ = false;  // guarded by read_mu_
  std::mutex mu_;
  std::condition_variable space_cv_, done_cv_;
  std::vector<std::thread> workers_;  // guarded by mu_
  unsigned live_ = 0;                 // workers started and not yet ended
  unsigned readers_waiting_ = 0;
  size_t inflight_bytes_ = 0;
};

}  // namespace

void ServeConnection(int fd, const std::vector<Export>& exports, const ServerOptions& options,
                     const std::atomic<bool>& stop, ServerCounters* counters) {
  ServerCounters scratch;
  Connection c(fd, exports, options, stop, counters ? counters : &scratch);
  c.Run();
}

// --- listeners and the accept loop --------------------------------------

struct Server::Impl {
  ServerOptions options;
  std::vector<Export> exports;
  struct Listener {
    UniqueFd fd;
    std::string address;
  };
  std::vector<Listener> listeners;
  UniqueFd wake_read, wake_write;
  std::atomic<bool> stop{false};
  ServerCounters counters;
  std::thread accept_thread;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;

  struct Conn {
    std::thread thread;
    int fd = -1;
    std::atomic<bool> finished{false};
  };
  std::list<std::unique_ptr<Conn>> conns;  // guarded by mu
  int64_t last_refusal_log_ms = 0;

  Status Listen(const std::string& text);
  Status ListenUnix(const std::string& path);
  void AcceptLoop();
  void Reap(bool all);
};

Status Server::Impl::Listen(const std::string& text) {
  CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(text, "--listen", kDefaultPort, true));
  CK_ASSIGN_OR_RETURN(SockAddr addr, Resolve(hp));
  UniqueFd fd(socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.family() == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd.get(), addr.sa(), addr.len) != 0)
    return Status::FromErrno("cannot listen on " + text, errno);
  if (listen(fd.get(), 128) != 0) return Status::FromErrno("listen on " + text, errno);
  SockAddr bound;
  bound.len = sizeof bound.ss;
  getsockname(fd.get(), bound.sa(), &bound.len);
  listeners.push_back(Listener{std::move(fd), bound.ToString()});
  return Status::Ok();
}

Status Server::Impl::ListenUnix(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path)
    return Status::Usage("--socket '" + path + "' is empty or too long for a Unix socket");
  std::memcpy(sun.sun_path, path.data(), path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int err = errno;
    struct stat st {};
    if (err != EADDRINUSE || lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
      return Status::FromErrno("cannot listen on '" + path + "'", err);
    // A socket file is there: in use if something answers, else left by a dead server.
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0)
      return Status::Failure("'" + path + "' is in use by another server");
    unlink(path.c_str());
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0)
      return Status::FromErrno("cannot listen on '" + path + "'", errno);
  }
  if (listen(fd.get(), 128) != 0) return Status::FromErrno("listen on " + path, errno);
  listeners.push_back(Listener{std::move(fd), "unix:" + path});
  return Status::Ok();
}

void Server::Impl::Reap(bool all) {
  std::list<std::unique_ptr<Conn>> gone;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = conns.begin(); it != conns.end();) {
      if (all || (*it)->finished.load()) {
        gone.push_back(std::move(*it));
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : gone) c->thread.join();
}

void Server::Impl::AcceptLoop() {
  std::vector<pollfd> pfds;
  for (auto& l : listeners) pfds.push_back(pollfd{l.fd.get(), POLLIN, 0});
  pfds.push_back(pollfd{wake_read.get(), POLLIN, 0});
  while (!stop.load()) {
    for (auto& p : pfds) p.revents = 0;
    int rc = poll(pfds.data(), pfds.size(), 1000);
    Reap(false);
    if (rc <= 0) continue;
    for (size_t i = 0; i + 1 < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      int cfd = accept4(pfds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EMFILE || errno == ENFILE)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (conns.size() >= options.max_connections) {
        close(cfd);
        counters.connections_refused++;
        int64_t now = static_cast<int64_t>(MonoNs() / 1000000);
        if (now - last_refusal_log_ms > 1000) {
          log::Warn("nbd: {} connections open, the limit; refusing new clients",
                    options.max_connections);
          last_refusal_log_ms = now;
        }
        continue;
      }
      auto c = std::make_unique<Conn>();
      c->fd = cfd;
      Conn* raw = c.get();
      counters.connections_total++;
      counters.connections_open++;
      raw->thread = std::thread([this, raw] {
        ServeConnection(raw->fd, exports, options, stop, &counters);
        {
          std::lock_guard<std::mutex> l(mu);
          close(raw->fd);
          raw->fd = -1;
        }
        counters.connections_open--;
        raw->finished = true;
      });
      conns.push_back(std::move(c));
    }
  }
  // Stop: end every blocked read, then wait for the connections to finish
  // the requests they hold.
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& c : conns)
      if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
  }
  Reap(true);
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, std::vector<Export> exports) {
  if (exports.empty()) return Status::Usage("no export to serve");
  for (const auto& e : exports)
    if (!e.backend) return Status::Usage("export '" + e.name + "' has no backend");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->exports = std::move(exports);
  if (impl->options.listen.empty() && impl->options.unix_socket.empty())
    impl->options.listen.push_back("127.0.0.1:" + std::to_string(kDefaultPort));
  for (const auto& l : impl->options.listen) CK_RETURN_IF_ERROR(impl->Listen(l));
  if (!impl->options.unix_socket.empty())
    CK_RETURN_IF_ERROR(impl->ListenUnix(impl->options.unix_socket));
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno("pipe", errno);
  impl->wake_read = UniqueFd(p[0]);
  impl->wake_write = UniqueFd(p[1]);
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] {
    raw->AcceptLoop();
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->done = true;
    raw->done_cv.notify_all();
  });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() {
  Stop();
  Wait();
}

void Server::Stop() {
  if (impl_->stop.exchange(true)) return;
  char c = 1;
  [[maybe_unused]] ssize_t n = write(impl_->wake_write.get(), &c, 1);
}

void Server::Wait() {
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->done_cv.wait(lock, [&] { return impl_->done; });
  }
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  if (!impl_->options.unix_socket.empty()) {
    unlink(impl_->options.unix_socket.c_str());
    impl_->options.unix_socket.clear();
  }
}

std::vector<std::string> Server::Addresses() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->listeners) out.push_back(l.address);
  return out;
}

ServerStats Server::Stats() const {
  return impl_->counters.Snapshot();
}

}  // namespace cloudkeep::nbd
