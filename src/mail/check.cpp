#include "mail/check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/duration.h"
#include "core/log.h"

namespace cloudkeep::mail {

const char* CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kPass:
      return "PASS";
    case CheckLevel::kSkip:
      return "SKIP";
    case CheckLevel::kWarn:
      return "WARN";
    case CheckLevel::kUnknown:
      return "UNKNOWN";
    case CheckLevel::kFail:
      return "FAIL";
  }
  return "?";
}

const char* CheckGroupName(CheckGroup group) {
  switch (group) {
    case CheckGroup::kDeadline:
      return "deadline";
    case CheckGroup::kEgress:
      return "egress";
    case CheckGroup::kDns:
      return "DNS";
    case CheckGroup::kMx:
      return "MX";
    case CheckGroup::kRelay:
      return "1 relay";
    case CheckGroup::kSpf:
      return "2 SPF";
    case CheckGroup::kDkim:
      return "2 DKIM";
    case CheckGroup::kPtr:
      return "3 PTR";
    case CheckGroup::kRbl:
      return "4 RBL";
    case CheckGroup::kDmarc:
      return "DMARC";
    case CheckGroup::kTls:
      return "TLS";
    case CheckGroup::kBulk:
      return "bulk";
  }
  return "?";
}

int MailCheckReport::count(CheckLevel level) const {
  return static_cast<int>(std::count_if(findings.begin(), findings.end(),
                                        [&](const CheckFinding& f) { return f.level == level; }));
}

namespace {

using S = LintFinding::Severity;
using G = CheckGroup;

CheckLevel FromLint(S s) {
  switch (s) {
    case S::kFail:
      return CheckLevel::kFail;
    case S::kUnknown:
      return CheckLevel::kUnknown;
    case S::kWarn:
      return CheckLevel::kWarn;
    default:
      return CheckLevel::kPass;
  }
}

bool Failed(DnsStatus s) {
  return s == DnsStatus::kServFail || s == DnsStatus::kTimeout;
}

CheckLevel FromDkim(DkimSeverity s) {
  switch (s) {
    case DkimSeverity::kFail:
      return CheckLevel::kFail;
    case DkimSeverity::kUnknown:
      return CheckLevel::kUnknown;
    case DkimSeverity::kWarn:
      return CheckLevel::kWarn;
    default:
      return CheckLevel::kPass;
  }
}

std::string IpMechanism(const std::string& ip) {
  return (IsIpv6(ip) ? "ip6:" : "ip4:") + ip;
}

constexpr const char* kDeadlineFix =
    "rerun with a longer --deadline, or find the mail or name server that answers slowly";

class Auditor {
 public:
  Auditor(Resolver& resolver, const MailCheckOptions& o, MailCheckReport& r)
      : res_(resolver), o_(o), r_(r) {}

  void Add(CheckGroup group, std::string subject, CheckLevel level, std::string message,
           std::string fix = "") {
    if (level == CheckLevel::kPass) fix.clear();
    r_.findings.push_back({group, std::move(subject), level, std::move(message), std::move(fix)});
  }

  // The hosts to audit: --host, else the MX hosts (RFC 5321 §5.1: no MX
  // means the domain itself is the implicit MX).
  std::vector<std::string> MailHosts() {
    if (!o_.host.empty()) return {o_.host};
    DnsAnswer mx = res_.Query(o_.domain, RrType::kMX);
    std::vector<std::pair<int, std::string>> sorted;
    for (const auto& rec : mx.records) {
      std::optional<MxRecord> parsed = ParseMxRecord(rec);
      if (!parsed) continue;
      sorted.emplace_back(parsed->preference, parsed->host);
      r_.mx.push_back(rec);
    }
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::string> hosts;
    for (const auto& [pref, name] : sorted) {
      // RFC 7505: "0 ." is a null MX, the domain accepts no mail.
      if (name.empty()) continue;
      hosts.push_back(name);
    }
    if (Failed(mx.status)) {
      Add(G::kMx, o_.domain, CheckLevel::kUnknown,
          fmt::format("could not check: MX lookup failed ({}{}); no mail host audited",
                      DnsStatusName(mx.status), mx.error.empty() ? "" : ": " + mx.error),
          "retry; make the domain's name servers answer, or name the host with --host");
    } else if (hosts.empty()) {
      Add(G::kMx, o_.domain, CheckLevel::kWarn,
          fmt::format("{} has no MX record; the domain itself is used", o_.domain),
          fmt::format("publish {}. MX 10 mail.{}. (your mail host)", o_.domain, o_.domain));
      hosts.push_back(o_.domain);
    } else {
      Add(G::kMx, o_.domain, CheckLevel::kPass, fmt::format("MX: {}", fmt::join(hosts, ", ")));
    }
    return hosts;
  }

  std::string DeadlineReached() const {
    return fmt::format("the deadline of {} was reached", FormatDuration(o_.deadline.budget()));
  }

  // A step of the audit starts only while there is time left; past the
  // deadline it is listed as not checked instead (one finding names them
  // all, ReportDeadline). A step under way when the deadline passes has its
  // waits cut short and reports what it could not check itself.
  bool Start(std::string step) {
    if (!o_.deadline.expired()) return true;
    r_.deadline_reached = true;
    r_.not_checked.push_back(std::move(step));
    return false;
  }

  // One root cause, one finding: what the deadline left unchecked.
  void ReportDeadline() {
    if (!r_.deadline_reached) return;
    Add(G::kDeadline, o_.domain, CheckLevel::kUnknown,
        r_.not_checked.empty()
            ? fmt::format("could not check everything: {}; the checks under way were cut short",
                          DeadlineReached())
            : fmt::format("could not check everything: {}; not checked: {}", DeadlineReached(),
                          fmt::join(r_.not_checked, ", ")),
        kDeadlineFix);
  }

  // Before the rules: can this host open an SMTP session on port 25 at all?
  void AuditEgress() {
    // --no-smtp: no connection at all, and no finding (the JSON's egress is
    // null): a dead resolver stays one finding.
    if (!o_.smtp) return;
    if (!o_.egress) {
      Add(G::kEgress, "port 25", CheckLevel::kSkip, "not tested (--no-egress)");
      return;
    }
    EgressOptions eo = o_.egress_options;
    eo.deadline = o_.deadline;
    // 587 and 465 only matter (for the advice) when port 25 does not work.
    eo.relay_ports_when_needed = true;
    std::vector<EgressTarget> targets = o_.egress_targets;
    if (targets.empty())
      for (const auto& t : DefaultEgressTargets()) {
        auto parsed = ParseEgressTarget(t);
        if (parsed.ok()) targets.push_back(*parsed);
      }
    r_.egress = ProbeEgress(res_, targets, eo);
    if (r_.egress->deadline_reached) r_.deadline_reached = true;
    for (auto& f : EgressFindings(*r_.egress, o_.cloud)) r_.findings.push_back(std::move(f));
  }

  void AuditHost(MailHostReport& h) {
    if (Start("PTR of " + h.host)) AuditPtr(h);
    if (Start("SPF for " + h.host)) AuditSpf(h);
    if (Start("blocklists for " + h.host)) AuditRbl(h);
    AuditSmtp(h);
  }

  // Rule 3: forward and reverse DNS.
  void AuditPtr(MailHostReport& h) {
    h.ptr = CheckPtr(res_, h.host, o_.ips);
    for (const auto& a : h.ptr.addresses) h.addresses.push_back(a.address);
    if (!h.ptr.error.empty()) {
      if (h.ptr.lookup_failed)
        Add(G::kPtr, h.host, CheckLevel::kUnknown, "could not check: " + h.ptr.error,
            "retry; make the name servers of the host's zone answer");
      else
        Add(G::kPtr, h.host, CheckLevel::kFail, h.ptr.error,
            fmt::format("publish an A record: {}. A <the server's public IPv4>", h.host));
    }
    for (const auto& a : h.ptr.addresses) {
      std::string rev = ReverseName(a.address).ok() ? *ReverseName(a.address) : a.address;
      bool forward_failed = false;
      for (const auto& n : a.names) forward_failed = forward_failed || Failed(n.forward_status);
      if (!a.error.empty() && a.names.empty()) {
        Add(G::kPtr, a.address, CheckLevel::kUnknown, "could not check: " + a.error,
            "retry; make the reverse zone's servers answer");
      } else if (!a.fcrdns && forward_failed) {
        Add(G::kPtr, a.address, CheckLevel::kUnknown,
            fmt::format("could not check whether the PTR of {} resolves back: forward lookup "
                        "failed",
                        a.address),
            "retry; make the name servers of the PTR name's zone answer");
      } else if (a.names.empty()) {
        Add(G::kPtr, a.address, CheckLevel::kFail, fmt::format("{} has no PTR record", a.address),
            PtrFix(o_.provider, h.host, a.address,
                   fmt::format("ask the owner of {} (your cloud provider) to set: {}. PTR {}.",
                               a.address, rev, h.host)));
      } else if (a.matches_host) {
        Add(G::kPtr, a.address, CheckLevel::kPass,
            fmt::format("PTR {} resolves back to {}", h.host, a.address));
      } else if (a.fcrdns) {
        std::string names;
        for (const auto& n : a.names) names += (names.empty() ? "" : ", ") + n.name;
        Add(G::kPtr, a.address, CheckLevel::kFail,
            fmt::format("PTR is {} (resolves back) but the mail host is {}", names, h.host),
            PtrFix(o_.provider, h.host, a.address,
                   fmt::format("set the PTR to the mail hostname: {}. PTR {}.", rev, h.host)));
      } else {
        std::string detail;
        for (const auto& n : a.names)
          detail += fmt::format("{}{} -> {}", detail.empty() ? "" : "; ", n.name,
                                n.forward.empty() ? DnsStatusName(n.forward_status)
                                                  : fmt::format("{}", fmt::join(n.forward, ",")));
        Add(G::kPtr, a.address, CheckLevel::kFail,
            fmt::format("PTR of {} does not resolve back to it ({})", a.address, detail),
            PtrFix(o_.provider, h.host, a.address,
                   fmt::format("publish {}. {} {} and set {}. PTR {}.", h.host,
                               IsIpv6(a.address) ? "AAAA" : "A", a.address, rev, h.host)));
      }
    }
  }

  // Rule 2 (SPF) for this host's addresses: would the domain's SPF let it send?
  void AuditSpf(MailHostReport& h) {
    SpfEvaluator spf(res_);
    for (const auto& ip : h.addresses) {
      SpfOutcome out = spf.Check(ip, "postmaster@" + o_.domain, h.host);
      std::string msg =
          fmt::format("SPF of {} for {}: {}{}", o_.domain, ip, SpfResultName(out.result),
                      out.problem.empty() ? "" : " (" + out.problem + ")");
      switch (out.result) {
        case SpfResult::kPass:
          Add(G::kSpf, ip, CheckLevel::kPass, msg);
          break;
        case SpfResult::kNone:
          Add(G::kSpf, ip, CheckLevel::kFail, msg,
              fmt::format("publish {}. TXT \"v=spf1 mx {} -all\"", o_.domain, IpMechanism(ip)));
          break;
        case SpfResult::kTempError:
          // A DNS error: nothing is known about the record, so no fix is derived.
          Add(G::kSpf, ip, CheckLevel::kUnknown, "could not check: " + msg,
              "retry; make the name servers of the domain (and of its includes) answer");
          break;
        case SpfResult::kNeutral:
          Add(G::kSpf, ip, CheckLevel::kWarn, msg,
              fmt::format("add {} before the all term of {}'s SPF record and end it with -all",
                          IpMechanism(ip), o_.domain));
          break;
        default:
          Add(G::kSpf, ip, CheckLevel::kFail, msg,
              out.result == SpfResult::kPermError
                  ? fmt::format("repair {}'s SPF record: {}", o_.domain, out.problem)
                  : fmt::format("add {} to {}'s SPF record (before -all)", IpMechanism(ip),
                                o_.domain));
      }
      h.spf.push_back(std::move(out));
    }
  }

  // Rule 4: blocklists, the address and (with --block-prefix) its block.
  void AuditRbl(MailHostReport& h) {
    for (const auto& ip : h.addresses) {
      auto rbl = CheckRbl(res_, ip, o_.rbl);
      if (!rbl.ok()) {
        Add(G::kRbl, ip, CheckLevel::kUnknown, "could not check: " + rbl.status().message());
        continue;
      }
      const RblReport& rep = *rbl;
      std::vector<std::string> listed, unusable, errors;
      for (const auto& z : rep.zones) {
        if (z.listed)
          listed.push_back(z.zone + (z.meanings.empty() ? "" : " (" + z.meanings[0] + ")"));
        if (z.unusable) unusable.push_back(z.zone);
        if (!z.error.empty()) errors.push_back(z.zone);
      }
      int applicable = 0;
      for (const auto& z : rep.zones) applicable += z.skipped ? 0 : 1;
      int answered = rep.answered_count();
      if (!listed.empty())
        Add(G::kRbl, ip, CheckLevel::kFail, fmt::format("listed on {}", fmt::join(listed, ", ")),
            "find and stop the cause (open relay, compromised account, bot), then request removal "
            "from each list");
      else if (answered > 0)
        Add(G::kRbl, ip, CheckLevel::kPass,
            answered == applicable ? fmt::format("not listed on any of {} lists", applicable)
                                   : fmt::format("not listed on the {} of {} lists that answered",
                                                 answered, applicable));
      if (!unusable.empty())
        Add(G::kRbl, ip, CheckLevel::kUnknown,
            fmt::format("could not check {} of {} lists: refused to answer: {}", unusable.size(),
                        applicable, fmt::join(unusable, ", ")),
            "query the lists through your own resolver, not a public one (Spamhaus refuses those)");
      if (!errors.empty())
        Add(G::kRbl, ip, CheckLevel::kUnknown,
            fmt::format("could not check {} of {} lists: no answer from {}", errors.size(),
                        applicable, fmt::join(errors, ", ")),
            "retry; check the resolver");
      if (rep.block_prefix > 0) {
        int block_errors = 0;
        for (const auto& z : rep.zones) block_errors += z.block_errors;
        std::vector<std::string> dirty;
        for (const auto& z : rep.zones)
          if (z.block_listed > 0) dirty.push_back(fmt::format("{} on {}", z.block_listed, z.zone));
        if (dirty.empty() && block_errors > 0)
          Add(G::kRbl, rep.block, CheckLevel::kUnknown,
              fmt::format("could not check the block: {} lookups of {} failed", block_errors,
                          rep.block),
              "retry; check the resolver");
        else if (dirty.empty())
          Add(G::kRbl, rep.block, CheckLevel::kPass,
              fmt::format("no address of {} is listed", rep.block));
        else
          Add(G::kRbl, rep.block, CheckLevel::kWarn,
              fmt::format("neighbours listed: {} (of {} addresses)", fmt::join(dirty, ", "),
                          rep.block_size),
              "receivers that score whole blocks will distrust this address: ask the provider for "
              "an address in a "
              "clean block, or relay through a reputable smarthost");
      }
      h.rbl.push_back(rep);
    }
  }

  // Rule 1, the greeting and TLS: SMTP to the first address.
  void AuditSmtp(MailHostReport& h) {
    if (!o_.smtp) {
      Add(G::kRelay, h.host, CheckLevel::kSkip, "not tested (--no-smtp)");
      Add(G::kTls, h.host, CheckLevel::kSkip, "not tested (--no-smtp)");
      return;
    }
    if (!Start("relay, greeting and TLS of " + h.host)) return;
    if (h.addresses.empty()) {
      // One finding: the address lookup above already says why.
      Add(G::kRelay, h.host, CheckLevel::kUnknown,
          "could not check: no address to connect to (relay, greeting and TLS untested)");
      return;
    }
    SmtpEndpoint ep{h.host, h.addresses[0], o_.smtp_port};
    auto probe = o_.relay_test ? ProbeRelay(ep, o_.relay) : ProbeGreeting(ep, o_.relay);
    if (!probe.ok() && o_.deadline.expired()) {
      // Not the server's fault, perhaps: the audit ran out of time.
      r_.deadline_reached = true;
      h.smtp_error = probe.status().message();
      Add(G::kRelay, h.host, CheckLevel::kUnknown,
          fmt::format("could not check: {} before the SMTP session opened ({}greeting and TLS "
                      "untested)",
                      DeadlineReached(),
                      o_.relay_test
                          ? fmt::format("0 of {} relay forms tested; ",
                                        RelayBattery(h.host, h.addresses[0], o_.relay).size())
                          : ""),
          kDeadlineFix);
      return;
    }
    if (!probe.ok()) {
      h.smtp_error = probe.status().message();
      Add(G::kRelay, h.host, CheckLevel::kUnknown,
          o_.relay_test
              ? fmt::format("could not check: SMTP: {} (0 of {} relay forms tested; greeting "
                            "and TLS untested)",
                            h.smtp_error, RelayBattery(h.host, h.addresses[0], o_.relay).size())
              : fmt::format("could not check: SMTP: {} (greeting and TLS untested)", h.smtp_error),
          fmt::format("make {} port {} reachable, or rerun with --no-smtp", h.addresses[0],
                      o_.smtp_port));
      return;
    }
    h.smtp = std::move(probe).value();
    const RelayReport& rr = *h.smtp;
    if (rr.deadline_reached || rr.tls.deadline_reached) r_.deadline_reached = true;
    if (!o_.relay_test)
      Add(G::kRelay, h.host, CheckLevel::kSkip, "not tested (--no-relay-test)");
    else if (rr.open_relay()) {
      std::vector<std::string> tricks;
      for (const auto& a : rr.attempts)
        if (a.accepted) tricks.push_back(a.name);
      Add(G::kRelay, h.host, CheckLevel::kFail,
          fmt::format("OPEN RELAY: {} of {} forms relayed ({})", rr.accepted(), rr.attempts.size(),
                      fmt::join(tricks, ", ")),
          "Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
          "reject_unauth_destination with mynetworks = 127.0.0.0/8 [::1]/128");
    } else if (!rr.complete()) {
      Add(G::kRelay, h.host, CheckLevel::kUnknown,
          fmt::format("could not check: {} of {} relay forms tested, none relayed{}", rr.tested(),
                      rr.attempts.size(), rr.error.empty() ? "" : " (" + rr.error + ")"),
          rr.deadline_reached ? kDeadlineFix : "rerun the test");
    } else {
      Add(G::kRelay, h.host, CheckLevel::kPass,
          fmt::format("not an open relay: all {} relay forms refused", rr.attempts.size()));
    }
    // The name in the greeting and EHLO is what receivers compare with the PTR.
    for (auto [what, name] : {std::pair<const char*, std::string>{"greeting", rr.greeting_name},
                              std::pair<const char*, std::string>{"EHLO", rr.ehlo_name}}) {
      if (name.empty()) continue;  // never answered: the relay finding says why
      if (SameHostname(name, h.host))
        Add(G::kPtr, h.host, CheckLevel::kPass, fmt::format("{} name is {}", what, name));
      else
        Add(G::kPtr, h.host, CheckLevel::kWarn,
            fmt::format("{} name is '{}', not {}", what, name, h.host),
            fmt::format("Postfix: myhostname = {} (smtpd_banner = $myhostname ESMTP)", h.host));
    }
    const TlsResult& t = rr.tls;
    if (t.deadline_reached || (rr.ehlo_name.empty() && rr.deadline_reached))
      Add(G::kTls, h.host, CheckLevel::kUnknown,
          fmt::format("could not check: {} {}", DeadlineReached(),
                      t.deadline_reached ? "during STARTTLS" : "before the server answered EHLO"),
          kDeadlineFix);
    else if (rr.ehlo_name.empty())
      Add(G::kTls, h.host, CheckLevel::kUnknown,
          "could not check: the server did not answer EHLO, so STARTTLS was never offered or "
          "refused");
    else if (!t.offered)
      Add(G::kTls, h.host, CheckLevel::kFail, "STARTTLS not offered",
          "Postfix: smtpd_tls_security_level = may, smtpd_tls_cert_file/smtpd_tls_key_file from a "
          "CA (e.g. Let's Encrypt)");
    else if (!t.established)
      Add(G::kTls, h.host, CheckLevel::kFail, "STARTTLS failed: " + t.error,
          "check the server's TLS key and certificate");
    else if (!t.certificate_valid)
      Add(G::kTls, h.host, CheckLevel::kWarn,
          fmt::format("{}, but the certificate is not valid for {}: {}", t.version, h.host,
                      t.certificate_error),
          fmt::format("install a CA-signed certificate whose name is {}", h.host));
    else if (t.version == "TLSv1" || t.version == "TLSv1.1")
      Add(G::kTls, h.host, CheckLevel::kWarn, t.version + " is obsolete",
          "Postfix: smtpd_tls_protocols = >=TLSv1.2");
    else
      Add(G::kTls, h.host, CheckLevel::kPass,
          fmt::format("STARTTLS {} with a certificate valid for {}", t.version, h.host));
  }

  void AuditDomain() {
    if (Start("SPF record of " + o_.domain)) AuditSpfRecord();
    if (Start("DKIM of " + o_.domain)) AuditDkim();
    if (Start("DMARC of " + o_.domain)) AuditDmarc();
  }

  void AuditSpfRecord() {
    r_.spf_lint = LintSpf(res_, o_.domain);
    for (const auto& f : r_.spf_lint.findings)
      if (f.severity != S::kOk && !r_.spf_lint.records.empty())
        Add(G::kSpf, o_.domain, FromLint(f.severity), f.message,
            f.severity == S::kUnknown ? "retry; make the name servers answer"
                                      : "edit the SPF record as the message says");
    // A failed lookup says nothing about the record: no "publish" fix.
    if (r_.spf_lint.dns_error)
      Add(G::kSpf, o_.domain, CheckLevel::kUnknown, r_.spf_lint.findings[0].message,
          "retry; make the domain's name servers answer");
    else if (r_.spf_lint.records.empty() && !r_.spf_lint.findings.empty())
      Add(G::kSpf, o_.domain, CheckLevel::kFail, r_.spf_lint.findings[0].message,
          fmt::format("publish {}. TXT \"v=spf1 mx -all\"", o_.domain));
  }

  void AuditDkim() {
    r_.dkim = CheckDkimSelectors(res_, o_.domain, o_.dkim_selectors);
    for (const auto& f : r_.dkim.findings)
      Add(G::kDkim, f.selector.empty() ? o_.domain : f.selector + "._domainkey." + o_.domain,
          FromDkim(f.severity), f.message, f.fix);
  }

  void AuditDmarc() {
    r_.dmarc = LookupDmarc(res_, o_.domain);
    const std::string fix_dmarc = fmt::format(
        "publish _dmarc.{}. TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{}\"", o_.domain,
        o_.domain);
    if (!r_.dmarc.record && r_.dmarc.dns_error) {
      Add(G::kDmarc, o_.domain, CheckLevel::kUnknown, "could not check: " + r_.dmarc.problem,
          "retry; make the domain's name servers answer for _dmarc names");
    } else if (!r_.dmarc.record) {
      Add(G::kDmarc, o_.domain, CheckLevel::kFail,
          r_.dmarc.problem.empty() ? "no DMARC record" : r_.dmarc.problem,
          fmt::format("publish _dmarc.{}. TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{}\" "
                      "(then tighten to "
                      "quarantine)",
                      o_.domain, o_.domain));
    } else {
      for (const auto& f : r_.dmarc.findings)
        Add(G::kDmarc, o_.domain, FromLint(f.severity), f.message,
            f.severity == S::kOk ? "" : fix_dmarc);
    }
  }

  // Gmail and Yahoo's 2024 requirements for bulk senders, from the findings
  // above. A requirement whose inputs could not be checked is UNKNOWN, not
  // FAIL (and never PASS).
  void BulkSender() {
    auto worst = [&](CheckGroup group) {
      CheckLevel w = CheckLevel::kPass;
      bool any = false;
      for (const auto& f : r_.findings)
        if (f.group == group) {
          any = true;
          if (f.level > w) w = f.level;
        }
      return any ? w : CheckLevel::kSkip;
    };
    auto has_unknown = [&](CheckGroup group) {
      for (const auto& f : r_.findings)
        if (f.group == group && f.level == CheckLevel::kUnknown) return true;
      return false;
    };
    auto req = [&](const std::string& what, CheckLevel level, const std::string& see) {
      Add(G::kBulk, o_.domain, level, what,
          level == CheckLevel::kPass || level == CheckLevel::kSkip
              ? ""
              : "see the " + see + " findings");
    };
    // PASS when met; else UNKNOWN when something it rests on was not checked; else FAIL.
    auto judged = [](bool met, bool unknown) {
      return met ? CheckLevel::kPass : unknown ? CheckLevel::kUnknown : CheckLevel::kFail;
    };
    bool spf_pass = false;
    for (const auto& h : r_.hosts)
      for (const auto& s : h.spf) spf_pass = spf_pass || s.result == SpfResult::kPass;
    bool spf_all = !r_.hosts.empty();
    for (const auto& h : r_.hosts) {
      if (h.spf.empty()) spf_all = false;
      for (const auto& s : h.spf) spf_all = spf_all && s.result == SpfResult::kPass;
    }
    bool spf_unknown = has_unknown(G::kSpf) || has_unknown(G::kMx) || has_unknown(G::kPtr);
    bool dkim_key = false;
    for (const auto& s : r_.dkim.selectors)
      dkim_key = dkim_key || (s.found && !s.revoked && s.severity != DkimSeverity::kFail);
    bool dkim_unknown = has_unknown(G::kDkim);
    req("SPF authorizes every mail host", judged(spf_all, spf_unknown), "2 SPF");
    req("a usable DKIM key is published", judged(dkim_key, dkim_unknown), "2 DKIM");
    req("DMARC record with at least p=none",
        judged(r_.dmarc.record.has_value(), r_.dmarc.dns_error), "DMARC");
    // The From domain is the audited domain: SPF is aligned when it passes
    // for that domain, DKIM when the key lives under it (RFC 7489 §3.1).
    req("From domain aligned with SPF or DKIM",
        judged(spf_pass || dkim_key, spf_unknown || dkim_unknown), "2 SPF and 2 DKIM");
    CheckLevel ptr = worst(G::kPtr);
    req("valid forward and reverse DNS",
        ptr == CheckLevel::kFail      ? CheckLevel::kFail
        : ptr == CheckLevel::kUnknown ? CheckLevel::kUnknown
        : ptr == CheckLevel::kSkip    ? (has_unknown(G::kMx) ? CheckLevel::kUnknown : ptr)
                                      : CheckLevel::kPass,
        "3 PTR");
    CheckLevel tls = worst(G::kTls);
    if (tls == CheckLevel::kSkip && o_.smtp) tls = CheckLevel::kUnknown;  // never connected
    req("TLS for SMTP", tls,
        tls == CheckLevel::kUnknown && worst(G::kTls) == CheckLevel::kSkip ? "1 relay" : "TLS");
  }

 private:
  Resolver& res_;
  const MailCheckOptions& o_;
  MailCheckReport& r_;
};

}  // namespace

std::string PtrFix(const std::string& provider, const std::string& host, const std::string& address,
                   const std::string& otherwise) {
  if (provider != "aws" || !IsIpAddress(address) || IsIpv6(address)) return otherwise;
  std::string name = host;
  if (!name.empty() && name.back() == '.') name.pop_back();
  return fmt::format(
      "set it through EC2 (an Elastic IP of this account): cloudkeep --provider aws mail ptr {} "
      "--set --address {}",
      name, address);
}

std::vector<CheckFinding> EgressFindings(const EgressReport& r, const CloudInfo& cloud) {
  std::vector<CheckFinding> out;
  auto add = [&](std::string subject, CheckLevel level, std::string message, std::string fix) {
    if (level == CheckLevel::kPass) fix.clear();
    out.push_back(
        {CheckGroup::kEgress, std::move(subject), level, std::move(message), std::move(fix)});
  };
  // "gmail.com dropped, outlook.com refused": what each target did on a port.
  auto results = [&](bool relay) {
    std::vector<std::string> seen;
    for (const auto& p : r.probes) {
      if (IsRelayPort(p.port) != relay) continue;
      std::string who = p.host.empty() ? p.address : p.host;
      std::string item = fmt::format("{}{} {}", who, relay ? fmt::format(":{}", p.port) : "",
                                     EgressResultName(p.result));
      if (std::find(seen.begin(), seen.end(), item) == seen.end()) seen.push_back(item);
    }
    return fmt::format("{}", fmt::join(seen, ", "));
  };
  bool proxy = false;
  std::string greeter;
  for (const auto& p : r.probes) {
    if (IsRelayPort(p.port)) continue;
    proxy |= p.result == EgressResult::kProxy;
    if (p.result == EgressResult::kOpen && greeter.empty())
      greeter = p.host.empty() ? p.address : p.host;
  }
  const std::string advice = EgressAdvice(r, cloud);
  switch (r.port25) {
    case EgressVerdict::kOpen:
      if (proxy)
        add("port 25", CheckLevel::kFail,
            fmt::format("outbound port 25 works, but something on the path answers for some "
                        "targets ({})",
                        results(false)),
            advice);
      else
        add("port 25", CheckLevel::kPass,
            fmt::format("outbound SMTP session on port 25 opened ({} greeted)", greeter), "");
      break;
    case EgressVerdict::kBlocked:
      add("port 25", CheckLevel::kFail,
          fmt::format("outbound port 25 is {} from this host ({})",
                      proxy ? "intercepted" : "blocked", results(false)),
          advice);
      break;
    case EgressVerdict::kUnknown:
    case EgressVerdict::kNotTested: {
      std::string why;
      for (const auto& p : r.probes)
        if (!IsRelayPort(p.port) && !p.detail.empty()) {
          why = p.detail;
          break;
        }
      add("port 25", CheckLevel::kUnknown,
          fmt::format("could not check outbound port 25: no target could be tried{}",
                      why.empty() ? "" : " (" + why + ")"),
          r.deadline_reached ? kDeadlineFix
                             : "make DNS answer for the targets, or name reachable ones with "
                               "--egress-target");
      break;
    }
  }
  // The relay ports, for the advice: only asked when port 25 does not work.
  if (r.port25 == EgressVerdict::kOpen && !proxy) return out;
  switch (r.relay) {
    case EgressVerdict::kOpen:
      add("587/465", CheckLevel::kPass,
          fmt::format("submission ports reachable ({}): a smarthost relay works from here",
                      results(true)),
          "");
      break;
    case EgressVerdict::kBlocked:
      add("587/465", CheckLevel::kFail,
          fmt::format("submission ports do not answer either ({})", results(true)),
          "check this host's own firewall and the provider's security groups for outbound "
          "587/465");
      break;
    case EgressVerdict::kUnknown:
      add("587/465", CheckLevel::kUnknown, "could not check the submission ports 587/465",
          r.deadline_reached ? kDeadlineFix : "rerun");
      break;
    case EgressVerdict::kNotTested:
      break;
  }
  return out;
}

Result<MailCheckReport> RunMailCheck(Resolver& resolver, const MailCheckOptions& options) {
  if (!IsValidDomain(options.domain))
    return Status::Usage(fmt::format("'{}' is not a domain name", options.domain));
  for (const auto& ip : options.ips)
    if (!IsIpAddress(ip)) return Status::Usage(fmt::format("bad --ip '{}': not an IP address", ip));
  // One deadline for the whole audit, the relay probe's SMTP waits included
  // (the resolver was made with it for the DNS waits).
  MailCheckOptions o = options;
  o.relay.smtp.deadline = o.deadline;
  MailCheckReport r;
  r.domain = o.domain;
  r.cloud = o.cloud;
  Auditor a(resolver, o, r);
  // One root cause, one finding: when the domain's own name does not get
  // an answer (the resolver is down, or the domain's servers are), every
  // check that asks DNS about the domain would fail for the same reason.
  // That is said once, and those checks are not run.
  bool started = a.Start("the whole audit");
  DnsAnswer soa;
  // First, what comes before the rules: can this host send on port 25?
  if (started) a.AuditEgress();
  if (started) started = a.Start("everything after the port-25 check");
  if (started) {
    soa = resolver.Query(o.domain, RrType::kSOA);
    // A first question that the deadline cut short says nothing about the
    // domain's servers: the deadline finding says it all.
    if (Failed(soa.status)) started = a.Start("the whole audit");
  }
  if (!started) {
    // Nothing was checked; ReportDeadline below says so.
  } else if (Failed(soa.status)) {
    a.Add(G::kDns, options.domain, CheckLevel::kUnknown,
          fmt::format("could not check anything that needs DNS: no answer for {} ({}{}); MX, "
                      "SPF, DKIM, DMARC{} not checked",
                      options.domain, DnsStatusName(soa.status),
                      soa.error.empty() ? "" : ": " + soa.error,
                      options.host.empty() ? ", PTR, blocklists, relay and TLS" : ""),
          "check the resolver (--resolver) and the domain's name servers, then rerun");
    if (!options.host.empty()) {
      // The named host lives elsewhere, perhaps: its checks still run, and
      // say for themselves what could not be checked.
      MailHostReport h;
      h.host = options.host;
      a.AuditHost(h);
      r.hosts.push_back(std::move(h));
    }
  } else {
    std::vector<std::string> hosts;
    if (a.Start("the mail hosts of " + o.domain)) hosts = a.MailHosts();
    for (const auto& host : hosts) {
      MailHostReport h;
      h.host = host;
      a.AuditHost(h);
      r.hosts.push_back(std::move(h));
    }
    a.AuditDomain();
    // Judged from the findings above: with some of them missing it would
    // fail requirements that were never checked.
    if (a.Start("the bulk-sender requirements")) a.BulkSender();
  }
  a.ReportDeadline();
  // Grouped by rule for the report, in the order of CheckGroup; what the
  // deadline left unchecked comes first.
  std::stable_sort(r.findings.begin(), r.findings.end(),
                   [](const CheckFinding& x, const CheckFinding& y) { return x.group < y.group; });
  return r;
}

}  // namespace cloudkeep::mail
