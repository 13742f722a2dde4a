#include "mail/check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

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
    case CheckLevel::kFail:
      return "FAIL";
  }
  return "?";
}

int MailCheckReport::count(CheckLevel level) const {
  return static_cast<int>(std::count_if(findings.begin(), findings.end(),
                                        [&](const CheckFinding& f) { return f.level == level; }));
}

namespace {

using S = LintFinding::Severity;

CheckLevel FromLint(S s) {
  return s == S::kFail ? CheckLevel::kFail : s == S::kWarn ? CheckLevel::kWarn : CheckLevel::kPass;
}

CheckLevel FromDkim(DkimSeverity s) {
  switch (s) {
    case DkimSeverity::kFail:
      return CheckLevel::kFail;
    case DkimSeverity::kWarn:
      return CheckLevel::kWarn;
    default:
      return CheckLevel::kPass;
  }
}

std::string IpMechanism(const std::string& ip) {
  return (IsIpv6(ip) ? "ip6:" : "ip4:") + ip;
}

class Auditor {
 public:
  Auditor(Resolver& resolver, const MailCheckOptions& o, MailCheckReport& r)
      : res_(resolver), o_(o), r_(r) {}

  void Add(std::string group, std::string subject, CheckLevel level, std::string message,
           std::string fix = "") {
    if (level == CheckLevel::kPass) fix.clear();
    r_.findings.push_back(
        {std::move(group), std::move(subject), level, std::move(message), std::move(fix)});
  }

  // The hosts to audit: --host, else the MX hosts (RFC 5321 §5.1: no MX
  // means the domain itself is the implicit MX).
  std::vector<std::string> MailHosts() {
    if (!o_.host.empty()) return {o_.host};
    DnsAnswer mx = res_.Query(o_.domain, RrType::kMX);
    std::vector<std::pair<int, std::string>> sorted;
    for (const auto& rec : mx.records) {
      auto sp = rec.find(' ');
      if (sp == std::string::npos) continue;
      std::string name = rec.substr(sp + 1);
      while (!name.empty() && name.back() == '.') name.pop_back();
      sorted.emplace_back(std::atoi(rec.substr(0, sp).c_str()), name);
      r_.mx.push_back(rec);
    }
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::string> hosts;
    for (const auto& [pref, name] : sorted) {
      // RFC 7505: "0 ." is a null MX, the domain accepts no mail.
      if (name.empty()) continue;
      hosts.push_back(name);
    }
    if (mx.status == DnsStatus::kServFail || mx.status == DnsStatus::kTimeout) {
      Add("MX", o_.domain, CheckLevel::kFail,
          fmt::format("MX lookup failed: {}", DnsStatusName(mx.status)),
          "make the domain's name servers answer");
    } else if (hosts.empty()) {
      Add("MX", o_.domain, CheckLevel::kWarn,
          fmt::format("{} has no MX record; the domain itself is used", o_.domain),
          fmt::format("publish {}. MX 10 mail.{}. (your mail host)", o_.domain, o_.domain));
      hosts.push_back(o_.domain);
    } else {
      Add("MX", o_.domain, CheckLevel::kPass, fmt::format("MX: {}", fmt::join(hosts, ", ")));
    }
    return hosts;
  }

  void AuditHost(MailHostReport& h) {
    // Rule 3: forward and reverse DNS.
    h.ptr = CheckPtr(res_, h.host, o_.ips);
    for (const auto& a : h.ptr.addresses) h.addresses.push_back(a.address);
    if (!h.ptr.error.empty())
      Add("3 PTR", h.host, CheckLevel::kFail, h.ptr.error,
          fmt::format("publish an A record: {}. A <the server's public IPv4>", h.host));
    for (const auto& a : h.ptr.addresses) {
      std::string rev = ReverseName(a.address).ok() ? *ReverseName(a.address) : a.address;
      if (!a.error.empty() && a.names.empty()) {
        Add("3 PTR", a.address, CheckLevel::kWarn, a.error,
            "retry; make the reverse zone's servers answer");
      } else if (a.names.empty()) {
        Add("3 PTR", a.address, CheckLevel::kFail, fmt::format("{} has no PTR record", a.address),
            fmt::format("ask the owner of {} (your cloud provider) to set: {}. PTR {}.", a.address,
                        rev, h.host));
      } else if (a.matches_host) {
        Add("3 PTR", a.address, CheckLevel::kPass,
            fmt::format("PTR {} resolves back to {}", h.host, a.address));
      } else if (a.fcrdns) {
        std::string names;
        for (const auto& n : a.names) names += (names.empty() ? "" : ", ") + n.name;
        Add("3 PTR", a.address, CheckLevel::kFail,
            fmt::format("PTR is {} (resolves back) but the mail host is {}", names, h.host),
            fmt::format("set the PTR to the mail hostname: {}. PTR {}.", rev, h.host));
      } else {
        std::string detail;
        for (const auto& n : a.names)
          detail += fmt::format("{}{} -> {}", detail.empty() ? "" : "; ", n.name,
                                n.forward.empty() ? DnsStatusName(n.forward_status)
                                                  : fmt::format("{}", fmt::join(n.forward, ",")));
        Add("3 PTR", a.address, CheckLevel::kFail,
            fmt::format("PTR of {} does not resolve back to it ({})", a.address, detail),
            fmt::format("publish {}. {} {} and set {}. PTR {}.", h.host,
                        IsIpv6(a.address) ? "AAAA" : "A", a.address, rev, h.host));
      }
    }
    // Rule 2 (SPF) for this host's addresses: would the domain's SPF let it send?
    SpfEvaluator spf(res_);
    for (const auto& ip : h.addresses) {
      SpfOutcome out = spf.Check(ip, "postmaster@" + o_.domain, h.host);
      std::string msg =
          fmt::format("SPF of {} for {}: {}{}", o_.domain, ip, SpfResultName(out.result),
                      out.problem.empty() ? "" : " (" + out.problem + ")");
      switch (out.result) {
        case SpfResult::kPass:
          Add("2 SPF", ip, CheckLevel::kPass, msg);
          break;
        case SpfResult::kNone:
          Add("2 SPF", ip, CheckLevel::kFail, msg,
              fmt::format("publish {}. TXT \"v=spf1 mx {} -all\"", o_.domain, IpMechanism(ip)));
          break;
        case SpfResult::kNeutral:
        case SpfResult::kTempError:
          Add("2 SPF", ip, CheckLevel::kWarn, msg,
              fmt::format("add {} before the all term of {}'s SPF record and end it with -all",
                          IpMechanism(ip), o_.domain));
          break;
        default:
          Add("2 SPF", ip, CheckLevel::kFail, msg,
              out.result == SpfResult::kPermError
                  ? fmt::format("repair {}'s SPF record: {}", o_.domain, out.problem)
                  : fmt::format("add {} to {}'s SPF record (before -all)", IpMechanism(ip),
                                o_.domain));
      }
      h.spf.push_back(std::move(out));
    }
    // Rule 4: blocklists, the address and (with --block-prefix) its block.
    for (const auto& ip : h.addresses) {
      auto rbl = CheckRbl(res_, ip, o_.rbl);
      if (!rbl.ok()) {
        Add("4 RBL", ip, CheckLevel::kWarn, rbl.status().message());
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
      if (!listed.empty())
        Add("4 RBL", ip, CheckLevel::kFail, fmt::format("listed on {}", fmt::join(listed, ", ")),
            "find and stop the cause (open relay, compromised account, bot), then request removal "
            "from each list");
      else
        Add("4 RBL", ip, CheckLevel::kPass,
            fmt::format("not listed on {} of {} lists",
                        rep.zones.size() - unusable.size() - errors.size(), rep.zones.size()));
      if (!unusable.empty())
        Add("4 RBL", ip, CheckLevel::kWarn,
            fmt::format("refused to answer: {}", fmt::join(unusable, ", ")),
            "query the lists through your own resolver, not a public one (Spamhaus refuses those)");
      if (!errors.empty())
        Add("4 RBL", ip, CheckLevel::kWarn,
            fmt::format("no answer from: {}", fmt::join(errors, ", ")),
            "retry; check the resolver");
      if (rep.block_prefix > 0) {
        std::vector<std::string> dirty;
        for (const auto& z : rep.zones)
          if (z.block_listed > 0) dirty.push_back(fmt::format("{} on {}", z.block_listed, z.zone));
        if (dirty.empty())
          Add("4 RBL", rep.block, CheckLevel::kPass,
              fmt::format("no address of {} is listed", rep.block));
        else
          Add("4 RBL", rep.block, CheckLevel::kWarn,
              fmt::format("neighbours listed: {} (of {} addresses)", fmt::join(dirty, ", "),
                          rep.block_size),
              "receivers that score whole blocks will distrust this address: ask the provider for "
              "an address in a "
              "clean block, or relay through a reputable smarthost");
      }
      h.rbl.push_back(rep);
    }
    // Rule 1, the greeting and TLS: SMTP to the first address.
    if (!o_.smtp) {
      Add("1 relay", h.host, CheckLevel::kSkip, "not tested (--no-smtp)");
      Add("TLS", h.host, CheckLevel::kSkip, "not tested (--no-smtp)");
      return;
    }
    if (h.addresses.empty()) return;
    SmtpEndpoint ep{h.host, h.addresses[0], o_.smtp_port};
    auto probe = o_.relay_test ? ProbeRelay(ep, o_.relay) : ProbeGreeting(ep, o_.relay);
    if (!probe.ok()) {
      h.smtp_error = probe.status().message();
      Add("1 relay", h.host, CheckLevel::kWarn, "SMTP: " + h.smtp_error,
          fmt::format("make {} port {} reachable, or rerun with --no-smtp", h.addresses[0],
                      o_.smtp_port));
      return;
    }
    h.smtp = std::move(probe).value();
    const RelayReport& rr = *h.smtp;
    if (!o_.relay_test)
      Add("1 relay", h.host, CheckLevel::kSkip, "not tested (--no-relay-test)");
    else if (rr.open_relay()) {
      std::vector<std::string> tricks;
      for (const auto& a : rr.attempts)
        if (a.accepted) tricks.push_back(a.name);
      Add("1 relay", h.host, CheckLevel::kFail,
          fmt::format("OPEN RELAY: {} of {} forms relayed ({})", rr.accepted(), rr.attempts.size(),
                      fmt::join(tricks, ", ")),
          "Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
          "reject_unauth_destination with mynetworks = 127.0.0.0/8 [::1]/128");
    } else if (!rr.error.empty()) {
      Add("1 relay", h.host, CheckLevel::kWarn, "relay probe incomplete: " + rr.error,
          "rerun the test");
    } else {
      Add("1 relay", h.host, CheckLevel::kPass,
          fmt::format("not an open relay: all {} relay forms refused", rr.attempts.size()));
    }
    // The name in the greeting and EHLO is what receivers compare with the PTR.
    for (auto [what, name] : {std::pair<const char*, std::string>{"greeting", rr.greeting_name},
                              std::pair<const char*, std::string>{"EHLO", rr.ehlo_name}}) {
      if (SameHostname(name, h.host))
        Add("3 PTR", h.host, CheckLevel::kPass, fmt::format("{} name is {}", what, name));
      else
        Add("3 PTR", h.host, CheckLevel::kWarn,
            fmt::format("{} name is '{}', not {}", what, name, h.host),
            fmt::format("Postfix: myhostname = {} (smtpd_banner = $myhostname ESMTP)", h.host));
    }
    const TlsResult& t = rr.tls;
    if (!t.offered)
      Add("TLS", h.host, CheckLevel::kFail, "STARTTLS not offered",
          "Postfix: smtpd_tls_security_level = may, smtpd_tls_cert_file/smtpd_tls_key_file from a "
          "CA (e.g. Let's Encrypt)");
    else if (!t.established)
      Add("TLS", h.host, CheckLevel::kFail, "STARTTLS failed: " + t.error,
          "check the server's TLS key and certificate");
    else if (!t.certificate_valid)
      Add("TLS", h.host, CheckLevel::kWarn,
          fmt::format("{}, but the certificate is not valid for {}: {}", t.version, h.host,
                      t.certificate_error),
          fmt::format("install a CA-signed certificate whose name is {}", h.host));
    else if (t.version == "TLSv1" || t.version == "TLSv1.1")
      Add("TLS", h.host, CheckLevel::kWarn, t.version + " is obsolete",
          "Postfix: smtpd_tls_protocols = >=TLSv1.2");
    else
      Add("TLS", h.host, CheckLevel::kPass,
          fmt::format("STARTTLS {} with a certificate valid for {}", t.version, h.host));
  }

  void AuditDomain() {
    r_.spf_lint = LintSpf(res_, o_.domain);
    for (const auto& f : r_.spf_lint.findings)
      if (f.severity != S::kOk && !r_.spf_lint.records.empty())
        Add("2 SPF", o_.domain, FromLint(f.severity), f.message,
            "edit the SPF record as the message says");
    if (r_.spf_lint.records.empty() && !r_.spf_lint.findings.empty())
      Add("2 SPF", o_.domain, CheckLevel::kFail, r_.spf_lint.findings[0].message,
          fmt::format("publish {}. TXT \"v=spf1 mx -all\"", o_.domain));

    r_.dkim = CheckDkimSelectors(res_, o_.domain, o_.dkim_selectors);
    for (const auto& f : r_.dkim.findings)
      Add("2 DKIM", f.selector.empty() ? o_.domain : f.selector + "._domainkey." + o_.domain,
          FromDkim(f.severity), f.message, f.fix);

    r_.dmarc = LookupDmarc(res_, o_.domain);
    const std::string fix_dmarc = fmt::format(
        "publish _dmarc.{}. TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{}\"", o_.domain,
        o_.domain);
    if (!r_.dmarc.record) {
      Add("DMARC", o_.domain, r_.dmarc.dns_error ? CheckLevel::kWarn : CheckLevel::kFail,
          r_.dmarc.problem.empty() ? "no DMARC record" : r_.dmarc.problem,
          fmt::format("publish _dmarc.{}. TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{}\" "
                      "(then tighten to "
                      "quarantine)",
                      o_.domain, o_.domain));
    } else {
      for (const auto& f : r_.dmarc.findings)
        Add("DMARC", o_.domain, FromLint(f.severity), f.message,
            f.severity == S::kOk ? "" : fix_dmarc);
    }
  }

  // Gmail and Yahoo's 2024 requirements for bulk senders, from the findings above.
  void BulkSender() {
    auto worst = [&](const std::string& group) {
      CheckLevel w = CheckLevel::kPass;
      bool any = false;
      for (const auto& f : r_.findings)
        if (f.group == group) {
          any = true;
          if (f.level > w) w = f.level;
        }
      return any ? w : CheckLevel::kSkip;
    };
    auto req = [&](const std::string& what, CheckLevel level, const std::string& see) {
      Add("bulk", o_.domain, level == CheckLevel::kWarn ? CheckLevel::kWarn : level, what,
          level == CheckLevel::kPass || level == CheckLevel::kSkip
              ? ""
              : "see the " + see + " findings");
    };
    bool spf_pass = false;
    for (const auto& h : r_.hosts)
      for (const auto& s : h.spf) spf_pass = spf_pass || s.result == SpfResult::kPass;
    bool spf_all = !r_.hosts.empty();
    for (const auto& h : r_.hosts) {
      if (h.spf.empty()) spf_all = false;
      for (const auto& s : h.spf) spf_all = spf_all && s.result == SpfResult::kPass;
    }
    bool dkim_key = false;
    for (const auto& s : r_.dkim.selectors)
      dkim_key = dkim_key || (s.found && !s.revoked && s.severity != DkimSeverity::kFail);
    req("SPF authorizes every mail host", spf_all ? CheckLevel::kPass : CheckLevel::kFail, "2 SPF");
    req("a usable DKIM key is published", dkim_key ? CheckLevel::kPass : CheckLevel::kFail,
        "2 DKIM");
    req("DMARC record with at least p=none",
        r_.dmarc.record ? CheckLevel::kPass : CheckLevel::kFail, "DMARC");
    // The From domain is the audited domain: SPF is aligned when it passes
    // for that domain, DKIM when the key lives under it (RFC 7489 §3.1).
    req("From domain aligned with SPF or DKIM",
        (spf_pass || dkim_key) ? CheckLevel::kPass : CheckLevel::kFail, "2 SPF and 2 DKIM");
    CheckLevel ptr = worst("3 PTR");
    req("valid forward and reverse DNS",
        ptr == CheckLevel::kFail ? CheckLevel::kFail : CheckLevel::kPass, "3 PTR");
    req("TLS for SMTP", worst("TLS"), "TLS");
  }

 private:
  Resolver& res_;
  const MailCheckOptions& o_;
  MailCheckReport& r_;
};

}  // namespace

Result<MailCheckReport> RunMailCheck(Resolver& resolver, const MailCheckOptions& options) {
  if (!IsValidDomain(options.domain))
    return Status::Usage(fmt::format("'{}' is not a domain name", options.domain));
  for (const auto& ip : options.ips)
    if (!IsIpAddress(ip)) return Status::Usage(fmt::format("bad --ip '{}': not an IP address", ip));
  MailCheckReport r;
  r.domain = options.domain;
  Auditor a(resolver, options, r);
  for (const auto& host : a.MailHosts()) {
    MailHostReport h;
    h.host = host;
    a.AuditHost(h);
    r.hosts.push_back(std::move(h));
  }
  a.AuditDomain();
  a.BulkSender();
  // Grouped by rule for the report: the order of the groups as the audit defines them.
  static const std::vector<std::string> kOrder = {"MX",    "1 relay", "2 SPF", "2 DKIM", "3 PTR",
                                                  "4 RBL", "DMARC",   "TLS",   "bulk"};
  std::stable_sort(r.findings.begin(), r.findings.end(),
                   [](const CheckFinding& x, const CheckFinding& y) {
                     auto rank = [](const std::string& g) {
                       return std::find(kOrder.begin(), kOrder.end(), g) - kOrder.begin();
                     };
                     return rank(x.group) < rank(y.group);
                   });
  return r;
}

Json MailCheckToJson(const MailCheckReport& r) {
  Json j = {{"domain", r.domain},
            {"failed", r.failed()},
            {"counts",
             {{"pass", r.count(CheckLevel::kPass)},
              {"warn", r.count(CheckLevel::kWarn)},
              {"fail", r.count(CheckLevel::kFail)},
              {"skip", r.count(CheckLevel::kSkip)}}},
            {"mx", r.mx},
            {"findings", Json::array()},
            {"hosts", Json::array()}};
  for (const auto& f : r.findings) {
    Json jf = {{"group", f.group},
               {"subject", f.subject},
               {"level", CheckLevelName(f.level)},
               {"message", f.message}};
    if (!f.fix.empty()) jf["fix"] = f.fix;
    j["findings"].push_back(jf);
  }
  for (const auto& h : r.hosts) {
    Json jh = {{"host", h.host},
               {"addresses", h.addresses},
               {"ptr", PtrReportToJson(h.ptr)},
               {"spf", Json::array()},
               {"rbl", Json::array()}};
    for (size_t i = 0; i < h.spf.size(); ++i)
      jh["spf"].push_back({{"address", i < h.addresses.size() ? h.addresses[i] : ""},
                           {"result", SpfResultName(h.spf[i].result)},
                           {"mechanism", h.spf[i].mechanism},
                           {"problem", h.spf[i].problem}});
    for (const auto& rb : h.rbl) jh["rbl"].push_back(RblReportToJson(rb));
    if (h.smtp) jh["smtp"] = RelayReportToJson(*h.smtp);
    if (!h.smtp_error.empty()) jh["smtp_error"] = h.smtp_error;
    j["hosts"].push_back(jh);
  }
  j["spf_records"] = r.spf_lint.records;
  j["spf_dns_lookups"] = r.spf_lint.dns_lookups;
  j["dmarc"] = {{"record", r.dmarc.text},
                {"found_at", r.dmarc.record_domain},
                {"policy", r.dmarc.record ? r.dmarc.effective_policy() : ""}};
  j["dkim"] = DkimCheckToJson(r.dkim);
  return j;
}

}  // namespace cloudkeep::mail
