#include "mail/spf_lint.h"

#include <fmt/format.h>

#include <set>

#include "mail/spf.h"

namespace cloudkeep::mail {

const char* SeverityName(LintFinding::Severity s) {
  switch (s) {
    case LintFinding::Severity::kOk:
      return "ok";
    case LintFinding::Severity::kWarn:
      return "warn";
    case LintFinding::Severity::kUnknown:
      return "unknown";
    case LintFinding::Severity::kFail:
      return "fail";
  }
  return "?";
}

bool SpfLintReport::failed() const {
  for (const auto& f : findings)
    if (f.severity == LintFinding::Severity::kFail) return true;
  return false;
}

bool SpfLintReport::incomplete() const {
  for (const auto& f : findings)
    if (f.severity == LintFinding::Severity::kUnknown) return true;
  return false;
}

namespace {

// A finding with a fixed message, built in place. Not push_back({s, "…"}):
// GCC 12 at -O3 (with the precompiled headers) knows the literal's length in
// the temporary's std::string and reports the move constructor's short-string
// copy, a branch that cannot run for a long message, as out of bounds
// (-Warray-bounds).
void AddFixed(std::vector<LintFinding>* findings, LintFinding::Severity s, const char* message) {
  LintFinding& f = findings->emplace_back();
  f.severity = s;
  f.message = message;
}

struct Walker {
  Resolver& resolver;
  std::set<std::string> seen;
  std::vector<LintFinding>* findings;
  bool ptr_reported = false;

  void Add(LintFinding::Severity s, std::string m) { findings->push_back({s, std::move(m)}); }

  // Counts the DNS-querying terms of `domain`'s record and of the records
  // it includes or redirects to (§4.6.4 counts them across the evaluation).
  int Count(const std::string& domain, int depth) {
    if (depth > 10 || !seen.insert(domain).second) return 0;
    DnsAnswer a = resolver.Query(domain, RrType::kTXT);
    if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
      // Not "no record": the lookup failed, so nothing is known about it.
      Add(LintFinding::Severity::kUnknown,
          fmt::format("could not check {} (included or redirected to): TXT lookup failed ({}{})",
                      domain, DnsStatusName(a.status), a.error.empty() ? "" : ": " + a.error));
      return 0;
    }
    std::vector<std::string> recs;
    for (const auto& r : a.records)
      if (IsSpfRecord(r)) recs.push_back(r);
    if (recs.size() != 1) {
      if (depth > 0)
        Add(LintFinding::Severity::kFail,
            fmt::format("{} (included or redirected to) has {} SPF records: a permerror", domain,
                        recs.size()));
      return 0;
    }
    SpfRecord rec;
    std::string err;
    if (!ParseSpfRecord(recs[0], &rec, &err)) {
      if (depth > 0)
        Add(LintFinding::Severity::kFail,
            fmt::format("SPF record of {} is invalid: {}", domain, err));
      return 0;
    }
    int n = 0;
    auto follow = [&](const std::string& target) {
      if (target.find('%') != std::string::npos) return 0;  // depends on the client
      std::string t = target;
      if (!t.empty() && t.back() == '.') t.pop_back();
      return Count(t, depth + 1);
    };
    bool has_all = false;
    for (const auto& t : rec.terms) {
      if (t.kind != SpfTerm::Kind::kMechanism) continue;
      if (t.name == "all") has_all = true;
      if (t.name == "include" || t.name == "a" || t.name == "mx" || t.name == "ptr" ||
          t.name == "exists")
        ++n;
      if (t.name == "include") n += follow(t.domain_spec);
      if (t.name == "ptr" && !ptr_reported) {
        ptr_reported = true;
        Add(LintFinding::Severity::kWarn,
            fmt::format(
                "{} uses the ptr mechanism, which RFC 7208 §5.5 says not to use (slow, unreliable)",
                domain));
      }
    }
    if (rec.redirect && !has_all) n += 1 + follow(*rec.redirect);
    return n;
  }
};

}  // namespace

SpfLintReport LintSpf(Resolver& resolver, const std::string& domain) {
  SpfLintReport r;
  r.domain = domain;
  using S = LintFinding::Severity;
  DnsAnswer a = resolver.Query(domain, RrType::kTXT);
  if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
    r.dns_error = true;
    r.findings.push_back(
        {S::kUnknown,
         fmt::format("could not check the SPF record of {}: TXT lookup failed ({}{})", domain,
                     DnsStatusName(a.status), a.error.empty() ? "" : ": " + a.error)});
    return r;
  }
  for (const auto& t : a.records)
    if (IsSpfRecord(t)) r.records.push_back(t);
  if (r.records.empty()) {
    r.findings.push_back(
        {S::kFail, fmt::format("{} publishes no SPF record (TXT \"v=spf1 …\")", domain)});
    return r;
  }
  if (r.records.size() > 1) {
    r.findings.push_back({S::kFail, fmt::format("{} publishes {} SPF records; RFC 7208 §4.5 makes "
                                                "that a permerror: merge them into one",
                                                domain, r.records.size())});
    return r;
  }
  SpfRecord rec;
  std::string err;
  if (!ParseSpfRecord(r.records[0], &rec, &err)) {
    r.findings.push_back(
        {S::kFail, fmt::format("the SPF record is invalid (a permerror): {}", err)});
    return r;
  }
  Walker w{resolver, {}, &r.findings};
  r.dns_lookups = w.Count(domain, 0);
  if (r.dns_lookups > 10)
    r.findings.push_back(
        {S::kFail, fmt::format("{} DNS-querying terms: more than the 10 RFC 7208 §4.6.4 allows "
                               "(a permerror); flatten includes into ip4:/ip6:",
                               r.dns_lookups)});
  else
    r.findings.push_back({S::kOk, fmt::format("{} of 10 DNS lookups", r.dns_lookups)});
  bool has_all = false;
  for (const auto& t : rec.terms) {
    if (t.kind != SpfTerm::Kind::kMechanism || t.name != "all") continue;
    has_all = true;
    if (t.qualifier == '+')
      AddFixed(&r.findings, S::kFail, "'+all' lets every host on the Internet send as this domain");
    else if (t.qualifier == '?')
      AddFixed(&r.findings, S::kWarn,
               "'?all' is neutral: mail from any host is neither passed nor failed");
  }
  if (!has_all && !rec.redirect)
    AddFixed(
        &r.findings, S::kWarn,
        "no 'all' mechanism and no redirect=: unlisted hosts get neutral; end with -all or ~all");
  // The evaluator has the last word: limits reached only while evaluating
  // (void lookups, MX names, loops, lookups behind macros) make every
  // sender the record does not list a permerror. Reported unless the static
  // walk already found the cause (one cause, one finding).
  bool known = false;
  for (const auto& f : r.findings)
    known = known || f.severity == S::kFail || f.severity == S::kUnknown;
  if (!known) {
    SpfEvaluator eval(resolver);
    SpfOutcome v4 = eval.Check("192.0.2.123", "postmaster@" + domain, domain);
    SpfOutcome v6 = v4.result == SpfResult::kPermError || v4.result == SpfResult::kTempError
                        ? eval.Check("2001:db8::123", "postmaster@" + domain, domain)
                        : v4;
    if (v4.result == SpfResult::kPermError && v6.result == SpfResult::kPermError)
      r.findings.push_back(
          {S::kFail, fmt::format("the record evaluates to permerror for a sender it does not "
                                 "list (receivers then ignore it): {}",
                                 v4.problem)});
    else if (v4.result == SpfResult::kTempError || v6.result == SpfResult::kTempError)
      r.findings.push_back(
          {S::kUnknown, fmt::format("could not evaluate the record: temperror ({})",
                                    (v4.result == SpfResult::kTempError ? v4 : v6).problem)});
  }
  return r;
}

}  // namespace cloudkeep::mail
