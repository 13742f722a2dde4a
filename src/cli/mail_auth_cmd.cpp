// `cloudkeep mail spf` and `cloudkeep mail dmarc`: flags in, the SPF
// evaluator / lint and the DMARC lookup of src/mail, a table or one JSON
// document out.
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli/mail_cmd.h"
#include "core/log.h"
#include "core/strings.h"
#include "mail/dmarc.h"
#include "mail/resolver.h"
#include "mail/spf.h"
#include "mail/spf_batch.h"
#include "mail/spf_lint.h"

namespace cloudkeep::cli {

namespace {

Json FindingsJson(const std::vector<mail::LintFinding>& findings) {
  Json out = Json::array();
  for (const auto& f : findings)
    out.push_back({{"severity", mail::SeverityName(f.severity)}, {"message", f.message}});
  return out;
}

std::string FindingsText(const std::vector<mail::LintFinding>& findings) {
  Table t({"LEVEL", "FINDING"});
  for (const auto& f : findings) t.AddRow({mail::SeverityName(f.severity), f.message});
  return t.Render();
}

std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t w = 0;
  for (const auto& [k, v] : rows) w = std::max(w, k.size());
  std::string out;
  for (const auto& [k, v] : rows) out += fmt::format("{:<{}}  {}\n", k, w, v.empty() ? "-" : v);
  return out;
}

// `mail spf --batch`: one result line (or one JSON object per line) for
// each query line, in input order; output is written a block at a time.
Status RunBatch(Context& ctx, const std::string& path, int concurrency, const DnsFlags& dns) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file)
      return Status::Usage(
          fmt::format("--batch '{}': cannot open: {}", path, std::strerror(errno)));
  }
  std::istream& in = path == "-" ? std::cin : file;
  CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(dns));
  mail::SpfBatchOptions o;
  o.concurrency = concurrency;
  std::string out;
  auto flush = [&out] {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    out.clear();
  };
  const bool json = ctx.global.json;
  auto emit = [&](const mail::SpfBatchResult& r) {
    // JSON Lines: compact, one object a line (dump escapes control bytes);
    // the text goes through EscapeText as PrintText would.
    out += json ? mail::SpfBatchResultToJson(r).dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace)
                : EscapeText(mail::SpfBatchResultToText(r));
    out += '\n';
    if (out.size() >= 64 * 1024) flush();
  };
  auto stats = mail::RunSpfBatch(*resolver, in, o, emit);
  flush();
  CK_RETURN_IF_ERROR(stats.status());
  if (stats->errors > 0)
    log::Warn("{} of {} lines of the batch were not queries (their result is 'error')",
              stats->errors, stats->queries);
  return Status::Ok();
}

void AddSpf(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string ip, sender, domain, helo, batch;
    int concurrency = 32;
    bool no_lint = false;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "spf", "Evaluate SPF (RFC 7208) for a client IP and sender, and lint the record");
  cmd->add_option("--ip", f->ip,
                  "The connecting client's IPv4 or IPv6 address (required unless --batch)");
  cmd->add_option("--sender", f->sender,
                  "MAIL FROM address (local@domain) whose domain's SPF is checked");
  cmd->add_option("--domain", f->domain,
                  "Check this domain's SPF (as for MAIL FROM postmaster@DOMAIN)");
  cmd->add_option("--helo", f->helo,
                  "The HELO/EHLO name as the client sent it (the %{h} macro); alone, without "
                  "--sender/--domain, its own SPF record is checked (the HELO identity)");
  cmd->add_flag("--no-lint", f->no_lint, "Only evaluate; skip the lint of the domain's record");
  cmd->add_option("--batch", f->batch,
                  "Evaluate every query of FILE (- for stdin), one 'IP SENDER [HELO]' per line");
  cmd->add_option("--concurrency", f->concurrency, "With --batch: evaluations in flight")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Prints the RFC 7208 result (pass, fail, softfail, neutral, none, temperror, permerror), the "
      "term\n"
      "that decided, the explanation of a fail and the DNS lookups spent (10 allowed), then a lint "
      "of\n"
      "the domain's record. Exit 0 when the result is pass, 1 otherwise.\n\n"
      "--batch FILE|- evaluates many queries in one process, concurrently (--concurrency) over "
      "one\n"
      "resolver, without the lint. Each line is 'IP SENDER [HELO]' (spaces or tabs); SENDER is\n"
      "local@domain, a bare domain (postmaster@domain) or <> (the HELO identity, HELO required);\n"
      "blank lines and lines starting with # are skipped. One result per query line, in input\n"
      "order: 'RESULT<TAB>IP<TAB>SENDER<TAB>HELO<TAB>MECHANISM<TAB>DETAIL' (- when empty), or "
      "with\n"
      "--json one JSON object per line (line, ip, sender, helo, domain, result, mechanism,\n"
      "explanation, problem, dns_lookups, void_lookups). A line that is not a query gets the\n"
      "result 'error' naming the bad value and the batch goes on. Exit 0 once every line is\n"
      "answered, whatever the results; 2 when FILE cannot be opened.\n\n"
      "Examples:\n"
      "  cloudkeep mail spf --ip 192.0.2.10 --sender bounce@example.com\n"
      "  cloudkeep mail spf --ip 192.0.2.10 --helo mx.example.com   (the HELO identity)\n"
      "  cloudkeep --json mail spf --ip 2001:db8::25 --domain example.com --helo mx.example.com\n"
      "  cloudkeep mail spf --ip 192.0.2.10 --domain example.com --resolver 127.0.0.1:5353\n"
      "  cloudkeep --json mail spf --batch queries.txt --concurrency 64\n"
      "  printf '192.0.2.10 bounce@example.com mx.example.com\\n' | cloudkeep mail spf --batch -");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    if (!f->batch.empty()) {
      if (!f->ip.empty() || !f->sender.empty() || !f->domain.empty() || !f->helo.empty())
        return Status::Usage(
            "--batch reads the queries from its file: no --ip, --sender, "
            "--domain or --helo with it");
      // Each evaluation waits on its own queries: room for all of them.
      f->dns.max_in_flight = std::max(f->dns.max_in_flight, 4 * f->concurrency);
      return RunBatch(ctx, f->batch, f->concurrency, f->dns);
    }
    if (f->ip.empty()) return Status::Usage("give --ip ADDRESS (or --batch FILE)");
    if (!mail::IpAddress::Parse(f->ip))
      return Status::Usage(fmt::format("--ip '{}' is not an IP address", f->ip));
    if (!f->sender.empty() && !f->domain.empty())
      return Status::Usage("give one of --sender ADDR and --domain DOMAIN, not both");
    if (f->sender.empty() && f->domain.empty() && f->helo.empty())
      return Status::Usage(
          "give --sender ADDR or --domain DOMAIN (or only --helo NAME to check the HELO identity)");
    // SPF evaluates whatever the client sent (RFC 7208 §2.3, §4.3): a HELO
    // name that is not a host name, or a domain that is not valid, is SPF's
    // business ("none"), not a usage error. Only what no SMTP command can
    // carry (a line break, a NUL) is refused.
    for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--helo", f->helo},
                                      {"--sender", f->sender},
                                      {"--domain", f->domain}})
      if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos)
        return Status::Usage(fmt::format("{} '{}' contains a line break or NUL", flag, value));
    std::string sender = f->sender;
    std::string domain;
    bool helo_identity = false;
    if (!f->sender.empty()) {
      auto at = f->sender.rfind('@');
      if (at == std::string::npos)
        return Status::Usage(
            fmt::format("--sender '{}' is not an address (local@domain)", f->sender));
      domain = f->sender.substr(at + 1);
      if (domain.empty())
        return Status::Usage(fmt::format("--sender '{}' has no domain", f->sender));
    } else if (!f->domain.empty()) {
      domain = f->domain;
      sender = "postmaster@" + domain;
    } else {
      // The HELO identity (§2.3): the evaluator checks postmaster@HELO.
      domain = f->helo;
      helo_identity = true;
    }
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns));
    mail::SpfEvaluator eval(*resolver);
    mail::SpfOutcome o = eval.Check(f->ip, sender, f->helo.empty() ? domain : f->helo);
    if (helo_identity) sender = "postmaster@" + f->helo;
    std::optional<mail::SpfLintReport> lint;
    // A name that is not a domain has no record to lint (its result is "none").
    if (!f->no_lint && mail::IsValidDomain(domain)) lint = mail::LintSpf(*resolver, domain);
    if (ctx.global.json) {
      Json doc = {{"ip", f->ip},
                  {"sender", sender},
                  {"helo", f->helo},
                  {"domain", o.domain},
                  {"result", mail::SpfResultName(o.result)},
                  {"mechanism", o.mechanism},
                  {"explanation", o.explanation},
                  {"record", o.record},
                  {"problem", o.problem},
                  {"dns_lookups", o.dns_lookups},
                  {"void_lookups", o.void_lookups}};
      if (lint)
        doc["lint"] = {{"domain", lint->domain},
                       {"records", lint->records},
                       {"dns_lookups", lint->dns_lookups},
                       {"findings", FindingsJson(lint->findings)}};
      PrintJson(doc);
    } else {
      std::string text = KeyValues({{"Result", mail::SpfResultName(o.result)},
                                    {"Mechanism", o.mechanism},
                                    {"Explanation", o.explanation},
                                    {"Domain", o.domain},
                                    {"Record", o.record},
                                    {"DNS lookups", fmt::format("{} of 10", o.dns_lookups)},
                                    {"Problem", o.problem}});
      if (lint)
        text += fmt::format("\nLint of the SPF record of {}:\n{}", lint->domain,
                            FindingsText(lint->findings));
      PrintText(text);
    }
    if (o.result == mail::SpfResult::kPass) return Status::Ok();
    return Status::Failure(fmt::format("SPF {} for {} from {}{}", mail::SpfResultName(o.result),
                                       f->ip, domain, o.problem.empty() ? "" : ": " + o.problem));
  }));
}

void AddDmarc(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string domain;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "dmarc", "Show a domain's DMARC policy (RFC 7489) and what is wrong with it");
  cmd->add_option("DOMAIN", f->domain, "The From: domain")->required();
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Looks up _dmarc.DOMAIN and, when it has no record, _dmarc.<organizational domain> (RFC "
      "7489\n"
      "§6.6.3). Exit 0 when a valid record applies, 1 when there is none or it is invalid.\n\n"
      "Examples:\n"
      "  cloudkeep mail dmarc example.com\n"
      "  cloudkeep --json mail dmarc news.example.com --resolver 127.0.0.1:5353");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    if (!mail::IsValidDomain(f->domain))
      return Status::Usage(fmt::format("'{}' is not a domain name", f->domain));
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns));
    mail::DmarcLookup l = mail::LookupDmarc(*resolver, f->domain);
    const mail::DmarcRecord* r = l.record ? &*l.record : nullptr;
    auto mode = [](char c) { return c == 's' ? "strict" : "relaxed"; };
    if (ctx.global.json) {
      Json doc = {
          {"domain", l.domain},
          {"organizational_domain", l.org_domain},
          {"record_domain", l.record_domain.empty() ? Json() : Json("_dmarc." + l.record_domain)},
          {"record", l.text},
          {"valid", r != nullptr},
          {"policy", r ? Json(l.effective_policy()) : Json()},
          {"p", r ? Json(r->policy) : Json()},
          {"sp", r && !r->subdomain_policy.empty() ? Json(r->subdomain_policy) : Json()},
          {"pct", r ? Json(r->pct) : Json()},
          {"adkim", r ? Json(mode(r->adkim)) : Json()},
          {"aspf", r ? Json(mode(r->aspf)) : Json()},
          {"rua", r ? Json(r->rua) : Json::array()},
          {"ruf", r ? Json(r->ruf) : Json::array()},
          {"findings", FindingsJson(l.findings)}};
      PrintJson(doc);
    } else {
      std::vector<std::pair<std::string, std::string>> rows = {
          {"Domain", l.domain},
          {"Organizational domain", l.org_domain},
          {"Record at", l.record_domain.empty() ? "" : "_dmarc." + l.record_domain},
          {"Record", l.text}};
      if (r) {
        rows.insert(rows.end(),
                    {{"Policy (applies here)", l.effective_policy()},
                     {"p", r->policy},
                     {"sp", r->subdomain_policy.empty() ? "(as p)" : r->subdomain_policy},
                     {"pct", std::to_string(r->pct)},
                     {"DKIM alignment", mode(r->adkim)},
                     {"SPF alignment", mode(r->aspf)},
                     {"Aggregate reports (rua)", Join(r->rua, ", ")},
                     {"Failure reports (ruf)", Join(r->ruf, ", ")}});
      }
      PrintText(KeyValues(rows) + "\n" + FindingsText(l.findings));
    }
    if (r) return Status::Ok();
    return Status::Failure(l.problem);
  }));
}

}  // namespace

void AddMailAuthCommands(CLI::App* group, Context& ctx) {
  AddSpf(group, ctx);
  AddDmarc(group, ctx);
}

}  // namespace cloudkeep::cli
