// `cloudkeep mail relay|rbl|ptr|check`: the mail server audit. Flags in,
// module calls, output out; the logic lives in src/mail (relay_probe, rbl,
// ptr_check, check) and so does the rendering (check_render).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/mail_cmd.h"
#include "core/log.h"
#include "mail/check.h"
#include "mail/check_render.h"
#include "mail/dkim_verify.h"
#include "mail/ptr_check.h"
#include "mail/rbl.h"
#include "mail/relay_probe.h"
#include "mail/resolver.h"

namespace cloudkeep::cli {

namespace {

Status CheckPrefix(int prefix) {
  if (prefix != 0 && (prefix < 16 || prefix > 128))
    return Status::Usage(
        fmt::format("bad --block-prefix '{}': use 16..32 for IPv4, 112..128 for IPv6", prefix));
  return Status::Ok();
}

void AddRelay(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string target, ip, helo, to_domain, ca_file;
    std::string timeout = "10s";
    // A well-behaved server answers the 57-odd commands in a second or two;
    // 2m leaves room for one that is slow on every reply while keeping a
    // server that answers each just inside --timeout from holding the probe
    // for 19 x 3 timeouts (about 10 minutes at 10s).
    std::string deadline = "2m";
    bool no_tls = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "relay", "Test whether an SMTP server is an open relay (never sends DATA)");
  cmd->add_option("HOST", f->target,
                  "Server as HOST, HOST:PORT or [IPv6]:PORT (port 25 by default)")
      ->required();
  cmd->add_option("--ip", f->ip, "Connect to this address instead of resolving HOST");
  cmd->add_option("--helo", f->helo, "Our EHLO name (default relay-probe.example.org)");
  cmd->add_option("--to-domain", f->to_domain,
                  "Outside recipient domain to ask for (default example.net)");
  cmd->add_option("--ca-file", f->ca_file,
                  "Trust these CA certificates when checking the server's certificate");
  cmd->add_option("--timeout", f->timeout, "Give up waiting for one reply after this long")
      ->capture_default_str();
  cmd->add_option("--deadline", f->deadline,
                  "Stop the whole probe after this long; forms not tried by then are untested")
      ->capture_default_str();
  cmd->add_flag("--no-starttls", f->no_tls, "Stay in plain text even when STARTTLS is offered");
  cmd->footer(
      "Tries 19 ways of asking the server to pass mail from an outside sender to an outside "
      "recipient\n"
      "(nmap smtp-open-relay's 16 plus three). A form counts as relayed when MAIL and RCPT both "
      "get 2xx.\n"
      "No message is ever sent: every attempt ends in RSET, the session in QUIT. Exit 1 when any "
      "form relays,\n"
      "and exit 1 (UNKNOWN, never \"not an open relay\") when not every form was answered: the "
      "server\n"
      "could not be reached, hung up or timed out, or the deadline passed.\n\n"
      "--timeout bounds each reply (and the connect, greeting and TLS handshake); --deadline "
      "bounds the\n"
      "whole probe, whose 19 forms take some 60 replies: a server that answers each just inside "
      "the\n"
      "timeout cannot hold it longer. The default 2m is ample for a slow but honest server. When "
      "it\n"
      "passes the probe stops at once and says how many forms it tested (\"7 of 19\"); a form "
      "that\n"
      "relayed before then is still an open relay.\n\n"
      "Examples:\n"
      "  cloudkeep mail relay mx.example.com\n"
      "  cloudkeep mail relay mx.example.com:587 --ip 192.0.2.25\n"
      "  cloudkeep --json mail relay [2001:db8::25]:25");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    // The deadline counts from the start of the command.
    CK_ASSIGN_OR_RETURN(Deadline deadline, DeadlineFlag(f->deadline, "--deadline"));
    CK_ASSIGN_OR_RETURN(mail::SmtpEndpoint ep, mail::ParseSmtpEndpoint(f->target));
    if (!f->ip.empty()) {
      if (!mail::IsIpAddress(f->ip))
        return Status::Usage(fmt::format("bad --ip '{}': not an IP address", f->ip));
      ep.address = f->ip;
    }
    mail::RelayOptions o;
    if (!f->helo.empty()) o.helo = f->helo;
    if (!f->to_domain.empty()) o.external_domain = f->to_domain;
    o.starttls = !f->no_tls;
    CK_ASSIGN_OR_RETURN(o.smtp.timeout_ms, TimeoutMillis(f->timeout, "--timeout"));
    o.smtp.ca_file = f->ca_file;
    o.smtp.deadline = deadline;
    auto probe = mail::ProbeRelay(ep, o);
    if (!probe.ok() && probe.status().code() == Status::Code::kUsage) return probe.status();
    // No session at all: nothing was tested, which is a report too ("0 of 19").
    mail::RelayReport r = probe.ok() ? std::move(probe).value()
                                     : mail::NothingTested(ep, o, probe.status().message());
    if (ctx.global.json)
      PrintJson(mail::RelayReportToJson(r));
    else
      PrintText(mail::RelayReportToText(r));
    if (r.open_relay())
      return Status::Failure(
          fmt::format("{} is an open relay ({} of {} forms relayed{})", ep.host, r.accepted(),
                      r.attempts.size(),
                      r.complete() ? "" : fmt::format("; {} tested: {}", r.tested(), r.error)));
    if (!r.complete())
      return Status::Failure(fmt::format("could not check {}: {} of {} relay forms tested{}",
                                         ep.host, r.tested(), r.attempts.size(),
                                         r.error.empty() ? "" : " (" + r.error + ")"));
    return Status::Ok();
  }));
}

void AddRbl(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string address;
    DnsFlags dns;
    std::vector<std::string> zones;
    int prefix = 0, concurrency = 64;
  };
  auto f = std::make_shared<Flags>();
  f->dns.max_in_flight = 512;  // a /24 scan asks 256 names per list
  auto* cmd = group->add_subcommand("rbl", "Look an address (and its block) up in DNS blocklists");
  cmd->add_option("ADDRESS", f->address, "IPv4 or IPv6 address")->required();
  cmd->add_option("--rbl", f->zones,
                  "Blocklist zone to ask (repeatable; default: the built-in set)");
  cmd->add_option("--block-prefix", f->prefix,
                  "Also check every address of the surrounding /N block");
  cmd->add_option("--concurrency", f->concurrency, "DNS queries in flight")
      ->check(CLI::Range(1, 1024));
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "The built-in lists and their return codes are in docs/dnsbl.md. Answers in "
      "127.255.255.0/24\n"
      "(e.g. Spamhaus refusing queries from public resolvers) mark a list UNUSABLE, not a "
      "listing.\n"
      "Exit 1 when the address is listed anywhere, and exit 1 when some list could not be "
      "checked\n"
      "(no answer, SERVFAIL, refused): \"N of M blocklists answered\" says how much was.\n\n"
      "Examples:\n"
      "  cloudkeep mail rbl 192.0.2.25\n"
      "  cloudkeep mail rbl 192.0.2.25 --block-prefix 24\n"
      "  cloudkeep --json mail rbl 2001:db8::25 --rbl zen.spamhaus.org --resolver 127.0.0.1");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    if (!mail::IsIpAddress(f->address))
      return Status::Usage(fmt::format("'{}' is not an IP address", f->address));
    CK_RETURN_IF_ERROR(CheckPrefix(f->prefix));
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns));
    mail::RblOptions o;
    o.zones = f->zones;
    o.block_prefix = f->prefix;
    o.concurrency = f->concurrency;
    CK_ASSIGN_OR_RETURN(mail::RblReport r, mail::CheckRbl(*resolver, f->address, o));
    if (ctx.global.json)
      PrintJson(mail::RblReportToJson(r));
    else
      PrintText(mail::RblReportToText(r));
    if (r.listed())
      return Status::Failure(
          fmt::format("{} is listed on {} blocklist(s)", r.address, r.listed_count()));
    if (!r.complete())
      return Status::Failure(
          fmt::format("could not check {} everywhere: {} of {} blocklists "
                      "answered",
                      r.address, r.answered_count(), r.applicable_count()));
    return Status::Ok();
  }));
}

void AddPtr(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string host;
    std::vector<std::string> ips;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "ptr", "Check that each address's PTR resolves back to the mail hostname");
  cmd->add_option("HOST", f->host,
                  "Mail hostname (its A/AAAA records are checked unless --ip is given)")
      ->required();
  cmd->add_option("--ip", f->ips, "Check this address instead (repeatable)");
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Exit 1 unless every address has a PTR name that resolves back to it and equals HOST;\n"
      "a lookup that fails (timeout, SERVFAIL) is UNKNOWN, exit 1, never \"in order\".\n\n"
      "Examples:\n"
      "  cloudkeep mail ptr mx.example.com\n"
      "  cloudkeep mail ptr mx.example.com --ip 192.0.2.25");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    for (const auto& ip : f->ips)
      if (!mail::IsIpAddress(ip))
        return Status::Usage(fmt::format("bad --ip '{}': not an IP address", ip));
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns));
    mail::PtrReport r = mail::CheckPtr(*resolver, f->host, f->ips);
    if (ctx.global.json)
      PrintJson(mail::PtrReportToJson(r));
    else
      PrintText(mail::PtrReportToText(r));
    if (!r.ok() && r.incomplete())
      return Status::Failure(
          fmt::format("could not check the reverse DNS of {}: a lookup failed", f->host));
    if (!r.ok()) return Status::Failure(fmt::format("reverse DNS of {} is not in order", f->host));
    return Status::Ok();
  }));
}

void AddCheck(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string domain, host, ca_file, smtp_timeout = "10s";
    // The relay probe's 2m (see mail relay) plus DNS: SPF, ~30 DKIM
    // selectors, blocklists and their block scans, for a few MX hosts. A
    // healthy domain audits in seconds; 5m keeps a daily cron run bounded
    // when every server answers just inside its timeout.
    std::string deadline = "5m";
    DnsFlags dns;
    std::vector<std::string> ips, selectors, zones, egress_targets;
    int prefix = 0, port = 25;
    bool no_relay = false, no_smtp = false, no_egress = false;
  };
  auto f = std::make_shared<Flags>();
  f->dns.timeout_flag = "--dns-timeout";  // --smtp-timeout is the other one
  f->dns.max_in_flight = 512;
  auto* cmd = group->add_subcommand(
      "check", "Audit a domain's mail servers: relay, SPF/DKIM, PTR, blocklists, DMARC, TLS");
  cmd->add_option("DOMAIN", f->domain, "The mail domain (its MX hosts are audited)")->required();
  cmd->add_option("--host", f->host, "Audit this mail host instead of the MX hosts");
  cmd->add_option("--ip", f->ips,
                  "Use this address for the host instead of its A/AAAA records (repeatable)");
  cmd->add_option("--dkim-selector", f->selectors,
                  "DKIM selector to check (repeatable; default: common ones)");
  cmd->add_option("--rbl", f->zones, "Blocklist zone (repeatable; default: the built-in set)");
  cmd->add_option("--block-prefix", f->prefix,
                  "Also check the surrounding /N block on the blocklists");
  cmd->add_option("--smtp-port", f->port, "SMTP port of the mail hosts")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--smtp-timeout", f->smtp_timeout,
                  "Give up waiting for one SMTP reply after this long")
      ->capture_default_str();
  cmd->add_option("--ca-file", f->ca_file,
                  "Trust these CA certificates when checking STARTTLS certificates");
  cmd->add_option("--deadline", f->deadline,
                  "Stop the whole audit after this long; checks not run by then are UNKNOWN")
      ->capture_default_str();
  cmd->add_flag("--no-relay-test", f->no_relay,
                "Connect only for the greeting and STARTTLS, send no MAIL/RCPT");
  cmd->add_flag("--no-smtp", f->no_smtp,
                "Make no SMTP connection at all (no egress, relay, greeting or TLS check)");
  cmd->add_option("--egress-target", f->egress_targets,
                  "Probe outbound port 25 to this DOMAIN, HOST or HOST:PORT (repeatable; "
                  "default: as 'mail egress')");
  cmd->add_flag("--no-egress", f->no_egress,
                "Do not check outbound port 25 from this host (when not run on the mail host)");
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Each finding is PASS, WARN, FAIL, UNKNOWN or SKIP with a one-line fix. UNKNOWN means could "
      "not\n"
      "check (a lookup timed out or failed, a server did not answer or hung up, a test ran in "
      "part):\n"
      "it is never a pass. Exit 1 when anything fails or could not be checked.\n"
      "The first group asks whether this host can open an SMTP session on port 25 to the "
      "outside\n"
      "at all ('mail egress': EHLO and QUIT to a few large providers' MX hosts, or "
      "--egress-target;\n"
      "587/465 too when 25 fails). Run the audit on the mail host itself, or give "
      "--no-egress.\n"
      "With --provider aws, the fix of a PTR failure is the 'mail ptr --set' command that "
      "repairs it.\n"
      "The relay test never sends DATA: every attempt ends in RSET, the session in QUIT.\n"
      "--smtp-timeout and --dns-timeout bound each reply and query; --deadline bounds the whole "
      "audit\n"
      "(default 5m: the relay probe's 2m plus the DNS checks of a few MX hosts), so servers that "
      "answer\n"
      "each step just inside its timeout cannot stretch it. When it passes the audit stops at "
      "once:\n"
      "one UNKNOWN finding names what was not checked, and a failure found before then still "
      "fails.\n\n"
      "Examples:\n"
      "  cloudkeep mail check example.com\n"
      "  cloudkeep mail check example.com --host mx.example.com --ip 192.0.2.25 --block-prefix 24\n"
      "  cloudkeep --json mail check example.com --dkim-selector s2024 --no-smtp");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    // The deadline counts from the start of the command.
    CK_ASSIGN_OR_RETURN(Deadline deadline, DeadlineFlag(f->deadline, "--deadline"));
    CK_RETURN_IF_ERROR(CheckPrefix(f->prefix));
    if (!f->ips.empty() && f->host.empty())
      return Status::Usage("--ip needs --host (the name the addresses belong to)");
    for (const auto& s : f->selectors) {
      CK_RETURN_IF_ERROR(mail::CheckDkimSelector(s, "--dkim-selector"));
      CK_RETURN_IF_ERROR(mail::CheckDkimKeyName(s, f->domain));
    }
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns, deadline));
    mail::MailCheckOptions o;
    o.deadline = deadline;
    o.domain = f->domain;
    o.host = f->host;
    o.ips = f->ips;
    o.dkim_selectors = f->selectors;
    o.rbl.zones = f->zones;
    o.rbl.block_prefix = f->prefix;
    o.smtp_port = static_cast<uint16_t>(f->port);
    o.smtp = !f->no_smtp;
    o.relay_test = !f->no_relay;
    CK_ASSIGN_OR_RETURN(o.relay.smtp.timeout_ms, TimeoutMillis(f->smtp_timeout, "--smtp-timeout"));
    o.relay.smtp.ca_file = f->ca_file;
    o.provider = ctx.global.provider;
    o.egress = !f->no_egress;
    for (const auto& t : f->egress_targets) {
      // The error names the value ("bad egress target 'x': ...").
      CK_ASSIGN_OR_RETURN(mail::EgressTarget target, mail::ParseEgressTarget(t));
      o.egress_targets.push_back(target);
    }
    o.egress_options.timeout_ms = o.relay.smtp.timeout_ms;
    o.egress_options.max_hosts_per_domain = 1;
    if (o.egress && o.smtp) o.cloud = DetectCloud();
    CK_ASSIGN_OR_RETURN(mail::MailCheckReport r, mail::RunMailCheck(*resolver, o));
    if (ctx.global.json)
      PrintJson(mail::MailCheckToJson(r));
    else
      PrintText(mail::MailCheckToText(r));
    if (r.failed() || r.incomplete())
      return Status::Failure(fmt::format(
          "{}: {} check(s) failed, {} could not be checked{}", r.domain,
          r.count(mail::CheckLevel::kFail), r.count(mail::CheckLevel::kUnknown),
          r.deadline_reached
              ? fmt::format(" (the deadline of {} was reached)", FormatDuration(deadline.budget()))
              : ""));
    return Status::Ok();
  }));
}

}  // namespace

void AddMailAuditCommands(CLI::App* group, Context& ctx) {
  AddCheck(group, ctx);
  AddRelay(group, ctx);
  AddRbl(group, ctx);
  AddPtr(group, ctx);
}

}  // namespace cloudkeep::cli
