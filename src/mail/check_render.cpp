#include "mail/check_render.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mail/dkim_check.h"
#include "mail/spf.h"

namespace cloudkeep::mail {

const char* CheckGroupTitle(CheckGroup group) {
  switch (group) {
    case CheckGroup::kDeadline:
      return "Deadline";
    case CheckGroup::kEgress:
      return "Before the rules: outbound port 25 from this host";
    case CheckGroup::kDns:
      return "DNS";
    case CheckGroup::kMx:
      return "Mail hosts";
    case CheckGroup::kRelay:
      return "Rule 1: not an open relay";
    case CheckGroup::kSpf:
      return "Rule 2: SPF";
    case CheckGroup::kDkim:
      return "Rule 2: DKIM";
    case CheckGroup::kPtr:
      return "Rule 3: PTR resolves back to the hostname";
    case CheckGroup::kRbl:
      return "Rule 4: DNS blocklists";
    case CheckGroup::kDmarc:
      return "DMARC";
    case CheckGroup::kTls:
      return "TLS";
    case CheckGroup::kBulk:
      return "Bulk-sender requirements (Gmail, Yahoo, 2024)";
  }
  return CheckGroupName(group);
}

std::string MailCheckToText(const MailCheckReport& r) {
  std::string out = fmt::format("domain {}", r.domain);
  if (!r.mx.empty()) out += fmt::format(", MX {}", fmt::join(r.mx, ", "));
  out += "\n\n";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const CheckFinding& f = r.findings[i];
    if (i == 0 || f.group != r.findings[i - 1].group)
      out += std::string(i == 0 ? "" : "\n") + CheckGroupTitle(f.group) + "\n";
    out += fmt::format("  {:<7}  {:<22} {}\n", CheckLevelName(f.level), f.subject, f.message);
    if (!f.fix.empty()) out += fmt::format("           {:<22} fix: {}\n", "", f.fix);
  }
  out += fmt::format("\n{} passed, {} warnings, {} failed, {} could not be checked, {} skipped\n",
                     r.count(CheckLevel::kPass), r.count(CheckLevel::kWarn),
                     r.count(CheckLevel::kFail), r.count(CheckLevel::kUnknown),
                     r.count(CheckLevel::kSkip));
  return out;
}

Json MailCheckToJson(const MailCheckReport& r) {
  Json j = {{"domain", r.domain},
            {"failed", r.failed()},
            {"complete", !r.incomplete()},
            {"deadline_reached", r.deadline_reached},
            {"not_checked", r.not_checked},
            {"counts",
             {{"pass", r.count(CheckLevel::kPass)},
              {"warn", r.count(CheckLevel::kWarn)},
              {"fail", r.count(CheckLevel::kFail)},
              {"unknown", r.count(CheckLevel::kUnknown)},
              {"skip", r.count(CheckLevel::kSkip)}}},
            {"mx", r.mx},
            {"findings", Json::array()},
            {"hosts", Json::array()}};
  for (const auto& f : r.findings) {
    Json jf = {{"group", CheckGroupName(f.group)},
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
  // DKIM never looked up (no DNS, or the deadline passed first) has no
  // result at all: an empty report would read as "pass".
  j["dkim"] = r.dkim.domain.empty() ? Json(nullptr) : DkimCheckToJson(r.dkim);
  // Not run (--no-egress, --no-smtp, the deadline) is null, not an empty pass.
  j["egress"] = r.egress ? EgressReportToJson(*r.egress, r.cloud) : Json(nullptr);
  return j;
}

namespace {

std::string Code(int code) {
  return code == 0 ? "-" : std::to_string(code);
}

}  // namespace

std::string RelayReportToText(const RelayReport& r) {
  std::string out = fmt::format("server     {}:{} ({})\n", r.host, r.port, r.address);
  out += fmt::format("greeting   {} {}\n", r.greeting.code, r.greeting.text());
  out += fmt::format("ehlo name  {}\n", r.ehlo_name.empty() ? "-" : r.ehlo_name);
  if (r.tls.established)
    out += fmt::format(
        "starttls   {} {}, certificate {}\n", r.tls.version, r.tls.cipher,
        r.tls.certificate_valid ? "valid for " + r.host : "INVALID: " + r.tls.certificate_error);
  else
    out += fmt::format("starttls   {}\n",
                       r.tls.offered
                           ? "offered, failed: " + r.tls.error +
                                 (r.plaintext_fallback ? " (relaying tested in plain text)" : "")
                           : "not offered");
  out += "\n";
  Table t({"RESULT", "TRICK", "MAIL FROM", "RCPT TO", "MAIL", "RCPT", "REPLY"});
  for (const auto& a : r.attempts)
    t.AddRow({a.accepted ? "RELAYED" : (!a.tested() ? "untested" : "refused"), a.name,
              "<" + a.mail_from + ">", "<" + a.rcpt_to + ">", Code(a.mail_code), Code(a.rcpt_code),
              a.reply.substr(0, 60)});
  out += t.Render();
  out +=
      r.open_relay()
          ? fmt::format(
                "\nOPEN RELAY: {} of {} relay forms accepted. Restrict relaying to your own "
                "networks and\n"
                "authenticated users (Postfix: smtpd_relay_restrictions = permit_mynetworks,\n"
                "permit_sasl_authenticated, reject_unauth_destination; mynetworks = "
                "127.0.0.0/8).\n",
                r.accepted(), r.attempts.size()) +
                (r.complete() ? ""
                              : fmt::format("Only {} of {} relay forms tested: {}.\n", r.tested(),
                                            r.attempts.size(), r.error))
      : r.complete()
          ? fmt::format("\nnot an open relay: all {} relay forms refused{}\n", r.attempts.size(),
                        r.auth_required ? " (authentication required)" : "")
          : fmt::format("\nUNKNOWN: {} of {} relay forms tested, none relayed: not a verdict{}\n",
                        r.tested(), r.attempts.size(),
                        r.error.empty() ? "" : " (the probe stopped early: " + r.error + ")");
  return out;
}

std::string RblReportToText(const RblReport& r) {
  Table t({"ZONE", "RESULT", "CODES", "MEANING"});
  if (r.block_prefix > 0)
    t = Table({"ZONE", "RESULT", "CODES", "MEANING", "BLOCK LISTED"},
              {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft,
               Table::Align::kRight});
  for (const auto& z : r.zones) {
    std::string result = z.skipped          ? "skipped (IPv4 only)"
                         : z.unusable       ? "UNUSABLE"
                         : z.listed         ? "LISTED"
                         : !z.error.empty() ? "UNKNOWN: " + z.error
                                            : "clean";
    std::string codes, meanings;
    for (size_t i = 0; i < z.codes.size(); ++i) {
      codes += (i ? "," : "") + z.codes[i];
      meanings += (i ? "; " : "") + (i < z.meanings.size() ? z.meanings[i] : "");
    }
    if (!z.txt.empty()) meanings += (meanings.empty() ? "" : " — ") + z.txt;
    std::vector<std::string> row{z.zone, result, codes.empty() ? "-" : codes,
                                 meanings.empty() ? "-" : meanings};
    if (r.block_prefix > 0) row.push_back(fmt::format("{}/{}", z.block_listed, r.block_size));
    t.AddRow(row);
  }
  std::string out = fmt::format(
      "address {}{}\n\n", r.address,
      r.block_prefix > 0 ? fmt::format(", block {} ({} addresses)", r.block, r.block_size) : "");
  out += t.Render();
  out += "\n";
  if (r.listed())
    out += fmt::format(
        "LISTED on {} of {} lists. Find and stop the cause (open relay, compromised account, "
        "bot),\n"
        "then request removal from each list.\n",
        r.listed_count(), r.zones.size());
  else if (r.complete())
    out += fmt::format("not listed on any of {} lists\n", r.applicable_count());
  else if (r.answered_count() > 0)
    out += fmt::format("not listed on the {} of {} lists that answered\n", r.answered_count(),
                       r.applicable_count());
  out += fmt::format("{} of {} blocklists answered\n", r.answered_count(), r.applicable_count());
  if (r.unusable_count() > 0)
    out += fmt::format(
        "{} list(s) refused to answer (e.g. queried through a public resolver): their verdict is "
        "unknown\n",
        r.unusable_count());
  int block_errors = 0;
  for (const auto& z : r.zones) block_errors += z.block_errors;
  if (block_errors > 0)
    out += fmt::format("{} lookups of neighbours in {} failed: the block scan is incomplete\n",
                       block_errors, r.block);
  if (r.block_prefix > 0 && r.block_listed_zones() > 0)
    out += fmt::format(
        "neighbours in {} are listed on {} list(s): receivers that score by block will distrust "
        "this address\n",
        r.block, r.block_listed_zones());
  return out;
}

std::string PtrReportToText(const PtrReport& r) {
  Table t({"ADDRESS", "PTR", "RESOLVES BACK", "MATCHES HOST"});
  for (const auto& a : r.addresses) {
    if (a.names.empty())
      t.AddRow(
          {a.address,
           a.error.empty() ? std::string("(none: ") + DnsStatusName(a.ptr_status) + ")" : a.error,
           "-", "-"});
    for (const auto& n : a.names)
      t.AddRow({a.address, n.name, n.confirmed ? "yes" : "NO",
                r.host.empty() ? "-" : (n.matches_host ? "yes" : "NO")});
  }
  std::string out = t.Render();
  if (!r.error.empty()) out += "error: " + r.error + "\n";
  if (!r.ok() && r.incomplete()) {
    out +=
        "\nUNKNOWN: some lookups failed (timeout or SERVFAIL), so reverse DNS could not be "
        "checked\n"
        "fully; retry, or make the name servers answer\n";
    return out;
  }
  out += r.ok() ? "\nforward-confirmed reverse DNS is in order\n"
                : "\nfix: ask the owner of each address (your cloud provider) to set its PTR to "
                  "the mail hostname,\n"
                  "and publish an A/AAAA record for that hostname pointing back to the address\n";
  return out;
}

}  // namespace cloudkeep::mail
