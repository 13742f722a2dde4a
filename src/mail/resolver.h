// Resolver: the DNS interface every mail check goes through.
//
// Answers keep apart what SPF (RFC 7208 §4.4, §5) and DNSBL checks must
// tell apart: an answer, NXDOMAIN, NODATA (name exists, no record of the
// type), SERVFAIL and timeouts. Records come back in presentation text:
//   A "192.0.2.1", AAAA "2001:db8::1", PTR/CNAME/NS "host.example.com" (no
//   trailing dot), MX "10 mx.example.com", TXT the record's character-strings
//   concatenated (RFC 7208 §3.3).
// The production resolver is libunbound (MakeUnboundResolver); tests load
// zone data into a StaticResolver behind the same interface.
//
// Implementations are safe to call from several threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/deadline.h"
#include "core/status.h"

namespace cloudkeep::mail {

enum class RrType : uint16_t {
  kA = 1,
  kNS = 2,
  kCNAME = 5,
  kSOA = 6,
  kPTR = 12,
  kMX = 15,
  kTXT = 16,
  kAAAA = 28
};
const char* RrTypeName(RrType t);

enum class DnsStatus {
  kOk,        // at least one record of the type
  kNxDomain,  // the name does not exist
  kNoData,    // the name exists, no record of this type
  kServFail,  // the server failed (SERVFAIL, REFUSED, bogus DNSSEC)
  kTimeout,   // no answer in time
};
const char* DnsStatusName(DnsStatus s);

struct DnsAnswer {
  DnsStatus status = DnsStatus::kServFail;
  std::vector<std::string> records;
  uint32_t ttl = 0;
  bool secure = false;  // DNSSEC validated
  bool bogus = false;   // DNSSEC validation failed
  std::string error;    // resolver's own words when status is kServFail/kTimeout
  bool ok() const { return status == DnsStatus::kOk; }
  // NXDOMAIN or NODATA: a "void lookup" in RFC 7208 §4.6.4 terms.
  bool empty() const { return status == DnsStatus::kNxDomain || status == DnsStatus::kNoData; }
};

// One MX record in the presentation text above ("10 mx.example.com"), for
// every reader of MX answers (the SPF mx mechanism, the audit's mail hosts).
struct MxRecord {
  int preference = 0;
  std::string host;  // without the trailing dot; "" for RFC 7505's null MX "0 ."
  bool null() const { return host.empty(); }
};
// nullopt for text that is not "PREFERENCE HOST".
std::optional<MxRecord> ParseMxRecord(const std::string& record);

struct DnsQuestion {
  std::string name;
  RrType type;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual DnsAnswer Query(const std::string& name, RrType type) = 0;
  // Resolves all questions, at most `concurrency` in flight; answers in order.
  virtual std::vector<DnsAnswer> QueryMany(const std::vector<DnsQuestion>& questions,
                                           int concurrency);
};

struct ResolverOptions {
  // "ADDR" or "ADDR:PORT" or "[V6]:PORT"; empty: the system's resolv.conf.
  std::string server;
  int timeout_ms = 5000;
  int max_in_flight = 256;  // num-queries-per-thread, raised for DNSBL scans
  // Of the whole command (mail check --deadline): each query waits at most
  // until then, and past it queries are not sent but answered kTimeout.
  Deadline deadline = Deadline::Never();
};

// libunbound, forwarding to `server` when given; kUsage for a bad server value.
Result<std::unique_ptr<Resolver>> MakeUnboundResolver(const ResolverOptions& options);

// In-process zone data, for tests and the SPF conformance suites.
class StaticResolver : public Resolver {
 public:
  // Adds a record; names are case-insensitive, without the trailing dot.
  void Add(const std::string& name, RrType type, std::string record);
  // Makes queries for `name` (any type) fail with kTimeout / kServFail.
  void SetTimeout(const std::string& name);
  void SetServFail(const std::string& name);
  DnsAnswer Query(const std::string& name, RrType type) override;
  size_t queries() const { return queries_.load(); }

 private:
  std::map<std::string, std::map<RrType, std::vector<std::string>>> zone_;
  std::map<std::string, DnsStatus> failures_;
  std::atomic<size_t> queries_{0};
};

}  // namespace cloudkeep::mail
