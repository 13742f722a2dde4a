// RFC 7208 §4 and §5: check_host(), one function per step and per
// mechanism — the record lookup (§4.4, §4.5), the evaluation of its terms
// (§4.6), each mechanism (all §5.1, include §5.2, a §5.3, mx §5.4, ptr §5.5,
// ip4/ip6 §5.6, exists §5.7), redirect (§6.1), the explanation (§6.2) and
// the DNS limits (§4.6.4).
#include <fmt/format.h>

#include <cstring>

#include "core/strings.h"
#include "mail/spf.h"

namespace cloudkeep::mail {

namespace {

bool DnsError(const DnsAnswer& a) {
  return a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout;
}

// §4.6.2: what a matching mechanism's qualifier makes the result.
SpfResult Qualify(char qualifier) {
  switch (qualifier) {
    case '-':
      return SpfResult::kFail;
    case '~':
      return SpfResult::kSoftFail;
    case '?':
      return SpfResult::kNeutral;
    default:
      return SpfResult::kPass;
  }
}

// `name` equals `target` or is a subdomain of it, ignoring case (§5.5).
bool SameOrUnder(const std::string& name, const std::string& target) {
  std::string ln = AsciiLower(name), lt = AsciiLower(target);
  return ln == lt ||
         (ln.size() > lt.size() && ln.ends_with(lt) && ln[ln.size() - lt.size() - 1] == '.');
}

// One check_host() evaluation with the counters it shares across include
// and redirect (§4.6.4 counts per top-level evaluation).
class SpfRun {
 public:
  SpfRun(Resolver& r, const SpfOptions& o, const IpAddress& ip, std::string sender,
         std::string helo)
      : resolver_(r), options_(o), ip_(ip), helo_(std::move(helo)) {
    auto at = sender.rfind('@');
    local_ = at == std::string::npos ? "" : sender.substr(0, at);
    sender_domain_ = at == std::string::npos ? sender : sender.substr(at + 1);
    // §4.3: without a local-part the sender is postmaster@domain.
    if (local_.empty()) local_ = "postmaster";
    sender_ = local_ + "@" + sender_domain_;
  }

  // check_host() of §4 for `domain`; `depth` counts include/redirect nesting.
  SpfOutcome Run(const std::string& domain, int depth) {
    SpfOutcome o;
    o.domain = domain;
    SpfRecord rec;
    if (FetchRecord(domain, &rec, &o)) EvaluateRecord(rec, domain, depth, &o);
    o.dns_lookups = lookups_;
    o.void_lookups = voids_;
    return o;
  }

 private:
  // A mechanism's verdict: matched or not, or an error that ends the evaluation.
  struct Match {
    bool matched = false;
    std::optional<SpfResult> result;  // temperror / permerror
    std::string problem;
  };

  static Match Error(SpfResult result, std::string problem) {
    Match m;
    m.result = result;
    m.problem = std::move(problem);
    return m;
  }
  static Match Matched(bool matched) {
    Match m;
    m.matched = matched;
    return m;
  }

  // §4.3 (a malformed domain is "none"), §4.4 (the TXT lookup; a DNS error
  // is temperror) and §4.5 (exactly one SPF record, which must parse).
  // False with `o` decided when there is no record to evaluate.
  bool FetchRecord(const std::string& domain, SpfRecord* rec, SpfOutcome* o) {
    if (!IsValidDomain(domain)) {
      o->result = SpfResult::kNone;
      o->problem = fmt::format("'{}' is not a valid domain name", domain);
      return false;
    }
    DnsAnswer txt = resolver_.Query(domain, RrType::kTXT);
    if (DnsError(txt)) {
      o->result = SpfResult::kTempError;
      o->problem = fmt::format("DNS error looking up TXT {}: {}", domain,
                               txt.error.empty() ? DnsStatusName(txt.status) : txt.error);
      return false;
    }
    std::vector<std::string> records;
    for (const auto& r : txt.records)
      if (IsSpfRecord(r)) records.push_back(r);
    if (records.size() != 1) {
      o->result = records.empty() ? SpfResult::kNone : SpfResult::kPermError;
      o->problem = records.empty() ? fmt::format("no SPF record at {}", domain)
                                   : fmt::format("{} SPF records at {} (§4.5 allows one)",
                                                 records.size(), domain);
      return false;
    }
    o->record = records[0];
    std::string err;
    if (!ParseSpfRecord(records[0], rec, &err)) {
      o->result = SpfResult::kPermError;
      o->problem = fmt::format("syntax error in the SPF record of {}: {}", domain, err);
      return false;
    }
    return true;
  }

  // §4.6: the mechanisms left to right; the first match decides, an error
  // ends it. Then redirect (§6.1), else neutral (§4.7).
  void EvaluateRecord(const SpfRecord& rec, const std::string& domain, int depth, SpfOutcome* o) {
    bool has_all = false;
    for (const auto& t : rec.terms) {
      if (t.kind == SpfTerm::Kind::kModifier) continue;
      if (t.name == "all") has_all = true;
      Match m = Evaluate(t, domain, depth);
      if (!m.result && !m.matched) continue;
      o->mechanism = t.text;
      if (m.result) {
        o->result = *m.result;
        o->problem = m.problem;
        return;
      }
      o->result = Qualify(t.qualifier);
      if (o->result == SpfResult::kFail) o->explanation = Explain(rec, domain);
      return;
    }
    // §6.1: redirect applies only when no mechanism matched and there is no "all".
    if (rec.redirect && !has_all) {
      Redirect(*rec.redirect, domain, depth, o);
      return;
    }
    o->result = SpfResult::kNeutral;
    o->mechanism = "default";
  }

  // §6.1: the result is that of the target's record; a target without one
  // is a permerror. The redirect counts against the lookup limit.
  void Redirect(const std::string& spec, const std::string& domain, int depth, SpfOutcome* o) {
    if (!Count(o)) return;
    std::string target;
    if (!Expand(spec, domain, &target)) {
      o->result = SpfResult::kPermError;
      o->problem = "bad macro in redirect";
      return;
    }
    SpfOutcome r = Run(target, depth + 1);
    if (r.result == SpfResult::kNone) {
      r.result = SpfResult::kPermError;
      r.problem = fmt::format("redirect target {} has no SPF record", target);
    }
    if (r.mechanism.empty()) r.mechanism = "redirect=" + spec;
    *o = std::move(r);
  }

  MacroContext Ctx(const std::string& domain) {
    MacroContext c;
    c.sender = sender_;
    c.local = local_;
    c.sender_domain = sender_domain_;
    c.domain = domain;
    c.helo = helo_;
    c.ip = ip_;
    c.receiving_host = options_.receiving_host;
    c.now = options_.now ? options_.now : std::time(nullptr);
    c.ptr = [this] { return ValidatedPtr(""); };
    return c;
  }

  // A domain-spec, expanded (§7) and truncated (§7.3), without a final dot.
  bool Expand(const std::string& spec, const std::string& domain, std::string* out) {
    if (!ExpandMacros(spec, Ctx(domain), false, out)) return false;
    if (!out->empty() && out->back() == '.') out->pop_back();
    *out = TruncateDomain(*out);
    return true;
  }

  // §4.6.4: each DNS-querying term counts; past the limit, permerror.
  bool Count(SpfOutcome* o) {
    if (++lookups_ > options_.max_dns_terms) {
      o->result = SpfResult::kPermError;
      o->problem =
          fmt::format("more than {} DNS-querying terms (RFC 7208 §4.6.4)", options_.max_dns_terms);
      return false;
    }
    return true;
  }
  // §4.6.4: more than two void lookups is a permerror.
  bool CountVoid(const DnsAnswer& a, Match* m) {
    if (!a.empty()) return true;
    if (++voids_ > options_.max_void_lookups) {
      *m = Error(SpfResult::kPermError,
                 fmt::format("more than {} void DNS lookups (RFC 7208 §4.6.4)",
                             options_.max_void_lookups));
      return false;
    }
    return true;
  }
  static Match TempError(const std::string& what, const DnsAnswer& a) {
    return Error(SpfResult::kTempError,
                 fmt::format("DNS error for {}: {}", what,
                             a.error.empty() ? DnsStatusName(a.status) : a.error));
  }

  // The mechanisms that need no DNS decide at once; the others count
  // against the limit and expand their domain-spec (the current domain when
  // there is none) before they ask.
  Match Evaluate(const SpfTerm& t, const std::string& domain, int depth) {
    if (t.name == "all") return Matched(true);  // §5.1
    if (t.name == "ip4" || t.name == "ip6")     // §5.6
      return Matched(ip_.InPrefix(t.network, t.name == "ip6" ? t.cidr6 : t.cidr4));
    SpfOutcome counted;
    if (!Count(&counted)) return Error(counted.result, counted.problem);
    std::string target = domain;
    if (!t.domain_spec.empty() && !Expand(t.domain_spec, domain, &target))
      return Error(SpfResult::kPermError, "bad macro");
    if (t.name == "include") return MatchInclude(target, depth);
    if (t.name == "a") return MatchA(t, target);
    if (t.name == "mx") return MatchMx(t, target);
    if (t.name == "ptr") return MatchPtr(target);
    if (t.name == "exists") return MatchExists(target);
    return Matched(false);
  }

  // §5.2: matches when the included domain passes; its errors are ours, and
  // an included domain without SPF is a permerror.
  Match MatchInclude(const std::string& target, int depth) {
    if (depth > 20) return Error(SpfResult::kPermError, "include loop");
    SpfOutcome inner = Run(target, depth + 1);
    switch (inner.result) {
      case SpfResult::kPass:
        return Matched(true);
      case SpfResult::kFail:
      case SpfResult::kSoftFail:
      case SpfResult::kNeutral:
        return Matched(false);
      case SpfResult::kTempError:
      case SpfResult::kPermError:
        return Error(inner.result, inner.problem);
      case SpfResult::kNone:
        return Error(SpfResult::kPermError,
                     fmt::format("included domain {} has no SPF record", target));
    }
    return Matched(false);
  }

  // Whether any address of `name` (of the client's family) is the client's
  // within the cidr; a DNS error is temperror.
  Match MatchAddresses(const std::string& name, int cidr4, int cidr6, bool count_void) {
    Match m;
    DnsAnswer a = resolver_.Query(name, ip_.v6 ? RrType::kAAAA : RrType::kA);
    if (DnsError(a)) return TempError(name, a);
    if (count_void && !CountVoid(a, &m)) return m;
    for (const auto& r : a.records) {
      auto addr = IpAddress::Parse(r);
      if (addr && ip_.InPrefix(*addr, ip_.v6 ? cidr6 : cidr4)) m.matched = true;
    }
    return m;
  }

  // §5.3.
  Match MatchA(const SpfTerm& t, const std::string& target) {
    if (!IsValidDomain(target)) return Matched(false);
    return MatchAddresses(target, t.cidr4, t.cidr6, true);
  }

  // §5.4: the addresses of every MX host, at most 10 hosts (§4.6.4); the
  // null MX of RFC 7505 names no host.
  Match MatchMx(const SpfTerm& t, const std::string& target) {
    Match m;
    if (!IsValidDomain(target)) return m;
    DnsAnswer mx = resolver_.Query(target, RrType::kMX);
    if (DnsError(mx)) return TempError(target, mx);
    if (!CountVoid(mx, &m)) return m;
    std::vector<std::string> hosts;
    for (const auto& r : mx.records) {
      std::optional<MxRecord> rec = ParseMxRecord(r);
      if (rec && !rec->null()) hosts.push_back(rec->host);
    }
    if (static_cast<int>(hosts.size()) > options_.max_mx_ptr_names)
      return Error(SpfResult::kPermError,
                   fmt::format("{} has more than {} MX names (RFC 7208 §4.6.4)", target,
                               options_.max_mx_ptr_names));
    for (const auto& h : hosts) {
      Match a = MatchAddresses(h, t.cidr4, t.cidr6, false);
      if (a.result || a.matched) return a;
    }
    return m;
  }

  // §5.5: matches when a validated PTR name of the client is `target` or under it.
  Match MatchPtr(const std::string& target) {
    Match m;
    DnsAnswer ptr = resolver_.Query(ip_.ReverseName(), RrType::kPTR);
    if (!CountVoid(ptr, &m)) return m;
    m.matched = !ValidatedPtr(target).empty();
    return m;
  }

  // §5.7: always an A query, whatever the client's address family.
  Match MatchExists(const std::string& target) {
    Match m;
    if (!IsValidDomain(target)) return m;
    DnsAnswer a = resolver_.Query(target, RrType::kA);
    if (DnsError(a)) return TempError(target, a);
    if (!CountVoid(a, &m)) return m;
    m.matched = a.ok();
    return m;
  }

  // Whether one of the addresses of `name` (client's family) is the client's.
  bool ResolvesToClient(const std::string& name) {
    DnsAnswer a = resolver_.Query(name, ip_.v6 ? RrType::kAAAA : RrType::kA);
    if (!a.ok()) return false;
    for (const auto& r : a.records) {
      auto addr = IpAddress::Parse(r);
      if (addr && addr->v6 == ip_.v6 && std::memcmp(addr->bytes, ip_.bytes, ip_.v6 ? 16 : 4) == 0)
        return true;
    }
    return false;
  }

  // §5.5: a PTR name of the client whose addresses include it, equal to or
  // under `target` ("" when none is). With an empty target (the %{p} macro,
  // §7.3) any validated name, or "unknown".
  std::string ValidatedPtr(const std::string& target) {
    DnsAnswer ptr = resolver_.Query(ip_.ReverseName(), RrType::kPTR);
    std::string none = target.empty() ? "unknown" : "";
    if (!ptr.ok()) return none;
    int n = 0;
    for (const auto& name : ptr.records) {
      if (++n > options_.max_mx_ptr_names) break;  // §4.6.4: extra names ignored
      if (!ResolvesToClient(name)) continue;
      if (target.empty() || SameOrUnder(name, target)) return name;
    }
    return none;
  }

  // §6.2: the explanation; any problem with it falls back to the default.
  std::string Explain(const SpfRecord& rec, const std::string& domain) {
    std::string fallback;
    ExpandMacros(options_.default_explanation, Ctx(domain), true, &fallback);
    if (!rec.exp) return fallback;
    std::string target;
    if (!Expand(*rec.exp, domain, &target) || !IsValidDomain(target)) return fallback;
    DnsAnswer a = resolver_.Query(target, RrType::kTXT);
    if (!a.ok() || a.records.size() != 1) return fallback;
    for (unsigned char c : a.records[0])
      if (c < 0x20 || c > 0x7e) return fallback;
    std::string text;
    if (!ExpandMacros(a.records[0], Ctx(domain), true, &text)) return fallback;
    return text;
  }

  Resolver& resolver_;
  const SpfOptions& options_;
  IpAddress ip_;
  std::string sender_, local_, sender_domain_, helo_;
  int lookups_ = 0;
  int voids_ = 0;
};

}  // namespace

SpfEvaluator::SpfEvaluator(Resolver& resolver, SpfOptions options)
    : resolver_(resolver), options_(std::move(options)) {}

SpfOutcome SpfEvaluator::CheckHost(const IpAddress& ip, const std::string& domain,
                                   const std::string& sender, const std::string& helo) {
  SpfRun run(resolver_, options_, ip, sender, helo);
  return run.Run(domain, 0);
}

SpfOutcome SpfEvaluator::Check(const std::string& ip_text, const std::string& sender,
                               const std::string& helo) {
  SpfOutcome o;
  auto ip = IpAddress::Parse(ip_text);
  if (!ip) {
    o.result = SpfResult::kPermError;
    o.problem = fmt::format("'{}' is not an IP address", ip_text);
    return o;
  }
  if (sender.empty()) return CheckHost(*ip, helo, "postmaster@" + helo, helo);
  auto at = sender.rfind('@');
  std::string domain = at == std::string::npos ? sender : sender.substr(at + 1);
  return CheckHost(*ip, domain, sender, helo);
}

}  // namespace cloudkeep::mail
