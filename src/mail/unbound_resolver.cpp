// The production Resolver: libunbound with its own resolving thread
// (ub_ctx_async) and a pump thread here that delivers results, so any
// number of caller threads can wait on their own queries and QueryMany keeps
// hundreds in flight at once (DNSBL scans of a whole address block).
#include <fmt/format.h>
#include <poll.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "mail/dns_wire.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

namespace {

// libunbound parses the query name as presentation text, so bytes that mean
// something there (a space, a backslash, '(', ';', '"', '@', '$') or are not
// printable must be written as \DDD: SPF macros can expand to such names
// (RFC 7208 §7.1: "%_" is a space), and they are legal on the wire.
std::string PresentationName(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (unsigned char c : name) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '*' || c == '%' || c == '+' || c == '=' || c == '/' ||
        c == '~' || c == '!' || c == '&' || c == ',' || c == ':' || c == '#' || c == '^')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\{:03d}", c);
  }
  return out;
}

// Names libunbound answers from built-in empty zones (RFC 6761, RFC 6303,
// AS112, documentation prefixes). With an explicit --resolver the named
// server must decide, so each becomes "transparent": no local data, every query goes out.
std::vector<std::string> DefaultLocalZones() {
  std::vector<std::string> z = {"localhost.",
                                "127.in-addr.arpa.",
                                "0.in-addr.arpa.",
                                "10.in-addr.arpa.",
                                "168.192.in-addr.arpa.",
                                "254.169.in-addr.arpa.",
                                "2.0.192.in-addr.arpa.",
                                "100.51.198.in-addr.arpa.",
                                "113.0.203.in-addr.arpa.",
                                "255.255.255.255.in-addr.arpa.",
                                "home.arpa.",
                                "onion.",
                                "test.",
                                "invalid.",
                                "d.f.ip6.arpa.",
                                "8.e.f.ip6.arpa.",
                                "9.e.f.ip6.arpa.",
                                "a.e.f.ip6.arpa.",
                                "b.e.f.ip6.arpa.",
                                "8.b.d.0.1.0.0.2.ip6.arpa.",
                                "resolver.arpa.",
                                "service.arpa."};
  std::string zeros;
  for (int i = 0; i < 31; ++i) zeros += "0.";
  z.push_back("0." + zeros + "ip6.arpa.");
  z.push_back("1." + zeros + "ip6.arpa.");
  for (int i = 16; i <= 31; ++i) z.push_back(fmt::format("{}.172.in-addr.arpa.", i));
  for (int i = 64; i <= 127; ++i) z.push_back(fmt::format("{}.100.in-addr.arpa.", i));
  return z;
}

// One QueryMany call: its answers and who is still outstanding.
struct Batch {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DnsAnswer> answers;
  std::vector<char> done;
  size_t completed = 0;
};

struct CallbackArg {
  std::shared_ptr<Batch> batch;
  size_t index;
  RrType type;
};

// Skips a possibly compressed name at `*off` of a DNS message.
bool SkipName(std::string_view m, size_t* off) {
  while (*off < m.size()) {
    auto len = static_cast<uint8_t>(m[*off]);
    if ((len & 0xc0) == 0xc0) {
      *off += 2;
      return *off <= m.size();
    }
    ++*off;
    if (len == 0) return true;
    *off += len;
  }
  return false;
}

// The TXT records of a NOERROR answer packet, read directly. libunbound
// turns a TXT record with no strings (rdlength 0, legal on the wire) into
// SERVFAIL while keeping the packet (its result copy of an empty rdata
// fails), so the packet is the only place the answer can be read from.
bool TxtFromPacket(const ub_result* r, std::vector<std::string>* out) {
  if (!r->answer_packet || r->answer_len < 12) return false;
  std::string_view m(static_cast<const char*>(r->answer_packet),
                     static_cast<size_t>(r->answer_len));
  auto u16 = [&](size_t o) {
    return static_cast<uint16_t>((static_cast<uint8_t>(m[o]) << 8) |
                                 static_cast<uint8_t>(m[o + 1]));
  };
  if ((u16(2) & 0x000f) != 0) return false;  // the server's own rcode was not NOERROR
  size_t qd = u16(4), an = u16(6), off = 12;
  for (size_t i = 0; i < qd; ++i) {
    if (!SkipName(m, &off)) return false;
    off += 4;
  }
  for (size_t i = 0; i < an; ++i) {
    if (!SkipName(m, &off) || off + 10 > m.size()) return false;
    uint16_t type = u16(off), len = u16(off + 8);
    off += 10;
    if (off + len > m.size()) return false;
    if (type == static_cast<uint16_t>(RrType::kTXT)) {
      auto text = RdataToText(RrType::kTXT, m.substr(off, len));
      if (!text) return false;
      out->push_back(std::move(*text));
    }
    off += len;
  }
  return !out->empty();
}

DnsAnswer ToAnswer(int err, ub_result* r, RrType type) {
  DnsAnswer a;
  if (err != 0 || r == nullptr) {
    a.status = DnsStatus::kServFail;
    a.error = ub_strerror(err);
    return a;
  }
  a.secure = r->secure != 0;
  a.bogus = r->bogus != 0;
  a.ttl = r->ttl > 0 ? static_cast<uint32_t>(r->ttl) : 0;
  if (r->bogus) {
    a.status = DnsStatus::kServFail;
    a.error = r->why_bogus ? std::string("DNSSEC bogus: ") + r->why_bogus : "DNSSEC bogus";
    return a;
  }
  if (r->nxdomain) {
    a.status = DnsStatus::kNxDomain;
    return a;
  }
  if (r->rcode == 2 && type == RrType::kTXT && !r->havedata && TxtFromPacket(r, &a.records)) {
    a.status = DnsStatus::kOk;
    return a;
  }
  if (r->rcode != 0) {
    a.status = DnsStatus::kServFail;
    static const char* const kRcodes[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                          "NXDOMAIN", "NOTIMP",  "REFUSED"};
    a.error = r->rcode < 6 ? kRcodes[r->rcode] : fmt::format("rcode {}", r->rcode);
    return a;
  }
  if (!r->havedata) {
    a.status = DnsStatus::kNoData;
    return a;
  }
  for (int i = 0; r->data[i] != nullptr; ++i) {
    auto text = RdataToText(type, std::string_view(r->data[i], static_cast<size_t>(r->len[i])));
    // A record we cannot parse is dropped rather than passed on half-read.
    if (text) a.records.push_back(std::move(*text));
  }
  if (a.records.empty()) {
    a.status = DnsStatus::kServFail;
    a.error = "malformed records in answer";
    return a;
  }
  a.status = DnsStatus::kOk;
  return a;
}

void OnResult(void* arg, int err, ub_result* result) {
  auto* cb = static_cast<CallbackArg*>(arg);
  DnsAnswer answer = ToAnswer(err, result, cb->type);
  if (result) ub_resolve_free(result);
  {
    std::lock_guard lock(cb->batch->mu);
    cb->batch->answers[cb->index] = std::move(answer);
    cb->batch->done[cb->index] = 1;
    ++cb->batch->completed;
  }
  cb->batch->cv.notify_all();
  delete cb;
}

class UnboundResolver : public Resolver {
 public:
  UnboundResolver(ub_ctx* ctx, int timeout_ms, Deadline deadline, int wake[2])
      : ctx_(ctx), timeout_ms_(timeout_ms), deadline_(deadline) {
    wake_[0] = wake[0];
    wake_[1] = wake[1];
    pump_ = std::thread([this] { Pump(); });
  }
  ~UnboundResolver() override {
    char c = 0;
    (void)!write(wake_[1], &c, 1);
    pump_.join();
    ub_ctx_delete(ctx_);
    close(wake_[0]);
    close(wake_[1]);
  }

  DnsAnswer Query(const std::string& name, RrType type) override {
    return QueryMany({{name, type}}, 1)[0];
  }

  std::vector<DnsAnswer> QueryMany(const std::vector<DnsQuestion>& questions,
                                   int concurrency) override {
    using Clock = std::chrono::steady_clock;
    auto batch = std::make_shared<Batch>();
    const size_t n = questions.size();
    batch->answers.resize(n);
    batch->done.assign(n, 0);
    std::vector<int> ids(n, -1);
    std::vector<CallbackArg*> args(n, nullptr);  // owned by the callback, or by us once cancelled
    std::vector<Clock::time_point> give_up(n);   // per question
    size_t next = 0;
    const size_t limit = static_cast<size_t>(std::max(1, concurrency));
    std::vector<size_t> active;  // submitted, not yet seen done

    std::unique_lock lock(batch->mu);
    while (batch->completed < n) {
      // Keep `limit` queries in flight.
      while (next < n && active.size() < limit) {
        size_t i = next++;
        // Past the deadline a question is not asked: it is as unanswered
        // as one that timed out, and says nothing about the name.
        if (deadline_.expired()) {
          batch->answers[i].status = DnsStatus::kTimeout;
          batch->answers[i].error = "not asked: the deadline was reached";
          batch->done[i] = 1;
          ++batch->completed;
          continue;
        }
        auto* arg = new CallbackArg{batch, i, questions[i].type};
        args[i] = arg;
        lock.unlock();
        std::string qname = PresentationName(questions[i].name);
        int rc = ub_resolve_async(ctx_, qname.c_str(), static_cast<int>(questions[i].type), 1, arg,
                                  OnResult, &ids[i]);
        lock.lock();
        if (rc != 0) {
          delete arg;
          batch->answers[i].status = DnsStatus::kServFail;
          batch->answers[i].error =
              fmt::format("cannot query '{}': {}", questions[i].name, ub_strerror(rc));
          batch->done[i] = 1;
          ++batch->completed;
          continue;
        }
        give_up[i] = deadline_.Until(std::chrono::milliseconds(timeout_ms_));
        active.push_back(i);
      }
      std::erase_if(active, [&](size_t i) { return batch->done[i] != 0; });
      if (batch->completed >= n) break;
      if (active.empty()) continue;
      auto earliest =
          give_up[*std::min_element(active.begin(), active.end(),
                                    [&](size_t a, size_t b) { return give_up[a] < give_up[b]; })];
      size_t before = batch->completed;
      batch->cv.wait_until(lock, earliest, [&] { return batch->completed != before; });
      if (batch->completed != before) continue;
      // Our own time limit: libunbound would keep retrying and finally report
      // SERVFAIL, which must not be confused with a server that said so.
      auto now = Clock::now();
      for (size_t i : active) {
        if (batch->done[i] || give_up[i] > now) continue;
        lock.unlock();
        int rc = ub_cancel(ctx_, ids[i]);
        lock.lock();
        // If the cancel lost the race the callback runs (or ran) and fills
        // the answer in; otherwise the callback will never run, and its
        // argument is ours to free.
        if (rc == 0) delete args[i];
        if (rc == 0 && !batch->done[i]) {
          batch->answers[i].status = DnsStatus::kTimeout;
          batch->answers[i].error = deadline_.expired()
                                        ? std::string("no answer before the deadline")
                                        : fmt::format("no answer within {} ms", timeout_ms_);
          batch->done[i] = 1;
          ++batch->completed;
        }
      }
    }
    return std::move(batch->answers);
  }

 private:
  // Delivers results: ub_process runs the callbacks on this thread.
  void Pump() {
    pollfd fds[2] = {{ub_fd(ctx_), POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (;;) {
      int rc = poll(fds, 2, -1);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      if (fds[0].revents) ub_process(ctx_);
    }
  }

  ub_ctx* ctx_;
  int timeout_ms_;
  Deadline deadline_;
  int wake_[2];
  std::thread pump_;
};

Status SetOption(ub_ctx* ctx, const char* opt, const std::string& value) {
  int rc = ub_ctx_set_option(ctx, opt, value.c_str());
  if (rc != 0)
    return Status::Failure(fmt::format("libunbound option {} {}: {}", opt, value, ub_strerror(rc)));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Resolver>> MakeUnboundResolver(const ResolverOptions& options) {
  std::string forwarder;
  if (!options.server.empty()) {
    CK_ASSIGN_OR_RETURN(forwarder, ForwarderAddress(options.server));
  }
  ub_ctx* ctx = ub_ctx_create();
  if (ctx == nullptr) return Status::Failure("cannot create a libunbound context");
  auto fail = [ctx](Status s) {
    ub_ctx_delete(ctx);
    return s;
  };
  int in_flight = std::max(16, options.max_in_flight);
  auto apply = [&]() -> Status {
    int rc = ub_ctx_async(ctx, 1);
    if (rc != 0) return Status::Failure(fmt::format("libunbound async: {}", ub_strerror(rc)));
    CK_RETURN_IF_ERROR(SetOption(ctx, "num-queries-per-thread:", std::to_string(in_flight)));
    CK_RETURN_IF_ERROR(
        SetOption(ctx, "outgoing-range:", std::to_string(std::max(1024, in_flight * 2))));
    // Forwarders and resolv.conf entries on loopback are legitimate here.
    CK_RETURN_IF_ERROR(SetOption(ctx, "do-not-query-localhost:", "no"));
    if (!forwarder.empty()) {
      rc = ub_ctx_set_fwd(ctx, forwarder.c_str());
      if (rc != 0)
        return Status::Usage(fmt::format("resolver '{}': {}", options.server, ub_strerror(rc)));
      for (const auto& zone : DefaultLocalZones())
        CK_RETURN_IF_ERROR(SetOption(ctx, "local-zone:", zone + " transparent"));
    } else {
      rc = ub_ctx_resolvconf(ctx, nullptr);
      if (rc != 0)
        return Status::Failure(fmt::format("reading /etc/resolv.conf: {}", ub_strerror(rc)));
      // Validate where a root trust anchor is installed (dns-root-data or
      // unbound-anchor); a forwarder to a test server is never validated,
      // since its zones have no chain of trust.
      for (const char* ta : {"/usr/share/dns/root.key", "/var/lib/unbound/root.key"}) {
        std::error_code ec;
        if (std::filesystem::exists(ta, ec) && ub_ctx_add_ta_file(ctx, ta) == 0) break;
      }
    }
    return Status::Ok();
  };
  if (Status s = apply(); !s.ok()) return fail(s);
  int wake[2];
  if (pipe(wake) != 0) return fail(Status::FromErrno("pipe", errno));
  return std::unique_ptr<Resolver>(
      new UnboundResolver(ctx, std::max(1, options.timeout_ms), options.deadline, wake));
}

}  // namespace cloudkeep::mail
