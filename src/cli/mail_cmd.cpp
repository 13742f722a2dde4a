// `cloudkeep mail …`: the group; each family of commands has its own file.
#include "cli/mail_cmd.h"

#include <fmt/format.h>

#include <chrono>

#include "core/fs.h"
#include "mail/egress.h"
#include "mail/ptr_check.h"
#include "providers/aws/aws_provider.h"
#include "providers/aws/eip_reverse_dns.h"

namespace cloudkeep::cli {

void AddDnsFlags(CLI::App* cmd, DnsFlags* f) {
  cmd->add_option(
      "--resolver", f->resolver,
      "Ask this DNS server (ADDR[:PORT], IPv6 as [ADDR]:PORT) instead of /etc/resolv.conf's");
  cmd->add_option(f->timeout_flag, f->timeout, "Give up on one DNS query after this long")
      ->capture_default_str();
}

Result<int> TimeoutMillis(const std::string& text, const std::string& flag) {
  CK_ASSIGN_OR_RETURN(Micros timeout, DurationFlag(text, BareNumber::kSeconds, flag));
  if (timeout.count() <= 0 || timeout > std::chrono::minutes(10))
    return Status::Usage(fmt::format("{} '{}' must be more than 0 and at most 10m", flag, text));
  return static_cast<int>(std::max<int64_t>(1, timeout.count() / 1000));
}

Result<Deadline> DeadlineFlag(const std::string& text, const std::string& flag) {
  CK_ASSIGN_OR_RETURN(Micros budget, DurationFlag(text, BareNumber::kSeconds, flag));
  if (budget.count() <= 0)
    return Status::Usage(fmt::format("{} '{}' must be more than 0", flag, text));
  return Deadline::After(budget);
}

Result<std::unique_ptr<mail::Resolver>> MakeResolver(const DnsFlags& f, Deadline deadline) {
  mail::ResolverOptions o;
  o.deadline = deadline;
  CK_ASSIGN_OR_RETURN(o.timeout_ms, TimeoutMillis(f.timeout, f.timeout_flag));
  o.server = f.resolver;
  o.max_in_flight = f.max_in_flight;
  return mail::MakeUnboundResolver(o);
}

void AddPtrChangeFlags(CLI::App* cmd, PtrChangeFlags* f) {
  cmd->add_flag("--set", f->set,
                "With --provider aws: set the PTR of this instance's Elastic IP to HOST through "
                "EC2 (ModifyAddressAttribute), once HOST's A record points at it");
  cmd->add_flag("--reset", f->reset,
                "With --provider aws: give the Elastic IP back AWS's default PTR "
                "(ResetAddressAttribute)");
  cmd->add_option("--address", f->address,
                  "With --set/--reset: this Elastic IP instead of the one on this instance");
  cmd->add_flag("--wait", f->wait,
                "With --set/--reset: wait until AWS reports the change done, then verify "
                "forward-confirmed reverse DNS");
  cmd->add_flag("--dry-run", f->dry_run,
                "With --set/--reset: check the forward record and the IAM permission (DryRun), "
                "change nothing");
}

namespace {

// HOST's A record through the mail resolver, for aws::CheckForwardRecord
// (AWS refuses a PTR whose name does not resolve to the address).
aws::ForwardLookup LookUpForward(mail::Resolver& resolver, const std::string& host) {
  mail::DnsAnswer a = resolver.Query(host, mail::RrType::kA);
  aws::ForwardLookup f;
  f.failed = a.status == mail::DnsStatus::kServFail || a.status == mail::DnsStatus::kTimeout;
  f.status = mail::DnsStatusName(a.status);
  f.error = a.error;
  if (a.ok()) f.addresses = a.records;
  return f;
}

}  // namespace

Status RunPtrChange(Context& ctx, const std::string& host, const std::vector<std::string>& ips,
                    const PtrChangeFlags& f, const DnsFlags& dns, bool timeout_given) {
  if (f.set && f.reset) return Status::Usage("give one of --set and --reset, not both");
  if (ctx.global.provider != "aws")
    return Status::Usage(fmt::format(
        "mail ptr --{} needs --provider aws (the provider is '{}'): only EC2's API sets reverse "
        "DNS here; elsewhere ask the provider for the PTR",
        f.set ? "set" : "reset", ctx.global.provider));
  if (!ips.empty())
    return Status::Usage(
        "--ip is for checking; with --set/--reset name the Elastic IP as --address");
  if (!f.address.empty() && (!mail::IsIpAddress(f.address) || mail::IsIpv6(f.address)))
    return Status::Usage(
        fmt::format("bad --address '{}': not an IPv4 address (Elastic IPs are IPv4)", f.address));
  // --timeout bounds the wait when given; DNS queries keep 5s unless it is shorter.
  Micros wait_budget = std::chrono::minutes(10);
  DnsFlags query = dns;
  if (timeout_given) {
    CK_ASSIGN_OR_RETURN(wait_budget, DurationFlag(dns.timeout, BareNumber::kSeconds, "--timeout"));
    if (wait_budget.count() <= 0)
      return Status::Usage(fmt::format("--timeout '{}' must be more than 0", dns.timeout));
    if (wait_budget > std::chrono::seconds(5)) query.timeout = "5s";
  }
  CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(query));
  const bool quiet = ctx.global.quiet;
  auto say = [quiet](const std::string& line) {
    if (!quiet) fmt::print(stderr, "{}\n", line);
  };

  aws::AwsProviderOptions opts;
  opts.region = ctx.global.region;
  opts.profile = ctx.global.profile;
  opts.endpoint_url = ctx.global.endpoint_url;
  aws::AwsProvider provider(opts);
  CK_ASSIGN_OR_RETURN(aws::Ec2Client * ec2, provider.Client());
  std::string instance;
  if (f.address.empty()) {
    auto id = provider.imds().Get("/latest/meta-data/instance-id");
    if (!id.ok())
      return Status::Usage(fmt::format(
          "cannot tell which EC2 instance this is ({}): pass --address with the Elastic IP",
          id.status().message()));
    instance = *id;
  }
  CK_ASSIGN_OR_RETURN(aws::Ec2Address eip, aws::FindElasticIp(*ec2, f.address, instance));
  const std::string target = f.set ? host : "";
  // Said before EC2 is asked (RequestPtrChange and DryRunPtrChange check it again).
  aws::ForwardLookup forward;
  if (f.set) {
    forward = LookUpForward(*resolver, host);
    CK_RETURN_IF_ERROR(aws::CheckForwardRecord(host, eip.public_ip, forward));
  }

  Json doc = {{"action", f.set ? "set" : "reset"},
              {"hostname", host},
              {"address", eip.public_ip},
              {"allocation_id", eip.allocation_id},
              {"dry_run", f.dry_run}};
  std::vector<std::pair<std::string, std::string>> rows = {
      {"address", fmt::format("{} ({})", eip.public_ip, eip.allocation_id)},
      {"hostname", f.set ? host : "(AWS default)"}};
  auto finish = [&](Status st) -> Status {
    if (ctx.global.json) {
      PrintJson(doc);
    } else {
      size_t w = 0;
      for (const auto& [k, v] : rows) w = std::max(w, k.size());
      std::string out;
      for (const auto& [k, v] : rows) out += fmt::format("{:<{}}  {}\n", k, w, v);
      PrintText(out);
    }
    return st;
  };

  if (f.dry_run) {
    CK_RETURN_IF_ERROR(aws::DryRunPtrChange(*ec2, eip, target, forward));
    const char* action = f.set ? "ModifyAddressAttribute" : "ResetAddressAttribute";
    rows.push_back({"dry run", fmt::format("ec2:{} allowed{}; nothing changed", action,
                                           f.set ? ", forward record in place" : "")});
    doc["verdict"] = "would succeed";
    return finish(Status::Ok());
  }

  CK_ASSIGN_OR_RETURN(aws::Ec2AddressAttribute before,
                      ec2->DescribeAddressDomainName(eip.allocation_id));
  rows.push_back({"ptr before", before.ptr_record});
  doc["ptr_before"] = before.ptr_record;
  aws::Ec2AddressAttribute now = before;
  // Setting the name it has already is a no-op; a reset is always sent (EC2 accepts it twice).
  const bool already = f.set && aws::PtrIs(before, host);
  if (already) {
    say(fmt::format("{}: the PTR is {} already; nothing to change", eip.public_ip,
                    before.ptr_record));
  } else {
    CK_ASSIGN_OR_RETURN(now, aws::RequestPtrChange(*ec2, eip, target, forward));
    say(fmt::format("{}: PTR update to {} requested: {}", eip.public_ip,
                    now.update_value.empty() ? "AWS's default" : now.update_value,
                    now.update_status.empty() ? "accepted" : now.update_status));
    if (f.wait) {
      auto waited = aws::WaitForPtrChange(
          *ec2, eip.allocation_id, Deadline::After(wait_budget), std::chrono::milliseconds(500),
          [&](const aws::Ec2AddressAttribute& a) {
            say(fmt::format("{}: PTR {} (update {}: {})", a.public_ip, a.ptr_record, a.update_value,
                            a.update_status.empty() ? "done" : a.update_status));
          });
      if (!waited.ok()) {
        doc["update_status"] = "PENDING";
        doc["verdict"] = "not done";
        rows.push_back({"update", waited.status().message()});
        return finish(waited.status());
      }
      now = *waited;
    }
  }
  rows.push_back({"ptr now", now.ptr_record});
  rows.push_back({"update", now.update_status.empty() ? "-" : now.update_status});
  doc["ptr_record"] = now.ptr_record;
  doc["update_status"] = now.update_status;
  if (!already && !f.wait) {
    doc["verdict"] = "requested";
    rows.push_back({"next", fmt::format("AWS applies it within minutes; follow it and verify with "
                                        "'cloudkeep --provider aws mail ptr {} --{} --wait'",
                                        host, f.set ? "set" : "reset")});
    return finish(Status::Ok());
  }
  if (!f.set) {
    doc["verdict"] = "reset";
    return finish(Status::Ok());
  }
  // What receivers will see: forward-confirmed reverse DNS through DNS.
  mail::PtrReport r = mail::CheckPtr(*resolver, host, {eip.public_ip});
  doc["fcrdns"] = mail::PtrReportToJson(r);
  doc["verdict"] = r.ok() ? "in order" : r.incomplete() ? "unknown" : "not in order";
  std::string names;
  for (const auto& a : r.addresses)
    for (const auto& n : a.names) names += (names.empty() ? "" : ", ") + n.name;
  rows.push_back({"fcrdns", fmt::format("{} -> {} -> {}: {}", eip.public_ip,
                                        names.empty() ? "(no PTR)" : names, host,
                                        r.ok()           ? "confirmed"
                                        : r.incomplete() ? "UNKNOWN (a lookup failed)"
                                                         : "NOT confirmed")});
  if (r.ok()) return finish(Status::Ok());
  if (r.incomplete())
    return finish(Status::Failure(
        fmt::format("AWS reports the PTR of {} done, but a DNS lookup failed: could not verify it",
                    eip.public_ip)));
  return finish(Status::Failure(fmt::format(
      "AWS reports the PTR of {} as {}, but DNS does not confirm {} yet (caches hold the old "
      "answer for its TTL): check again with 'cloudkeep mail ptr {} --ip {}'",
      eip.public_ip, now.ptr_record, host, host, eip.public_ip)));
}

mail::CloudInfo DetectCloud() {
  mail::CloudInfo c;
  aws::ImdsOptions o = aws::ImdsOptions::FromEnvironment();
  if (o.disabled) return c;
  // The link-local metadata address only on EC2 hardware (or where the
  // endpoint was named): another cloud or a laptop gets no packet to it.
  if (!std::getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
    bool amazon = false;
    for (const char* path :
         {"/sys/devices/virtual/dmi/id/sys_vendor", "/sys/devices/virtual/dmi/id/board_vendor"}) {
      auto text = ReadFile(path);
      amazon |= text.ok() && text->find("Amazon") != std::string::npos;
    }
    if (!amazon) return c;
  }
  aws::Imds imds(o);
  auto id = imds.Get("/latest/meta-data/instance-id");
  if (!id.ok()) return c;
  c.provider = "aws";
  c.instance_id = *id;
  if (auto region = imds.Get("/latest/meta-data/placement/region"); region.ok()) c.region = *region;
  return c;
}

namespace {

void AddEgress(CLI::App* group, Context& ctx) {
  struct Flags {
    std::vector<std::string> targets;
    std::string smtp_timeout = "10s", deadline = "3m", helo = "egress-check.cloudkeep.invalid";
    int hosts = 2;
    DnsFlags dns;
  };
  auto f = std::make_shared<Flags>();
  f->dns.timeout_flag = "--dns-timeout";
  auto* cmd = group->add_subcommand(
      "egress", "Can this host send on port 25 at all? SMTP sessions to the outside, and 587/465");
  cmd->add_option("TARGET", f->targets,
                  "DOMAIN (its MX hosts), HOST, or HOST:PORT; default: a few large mailbox "
                  "providers (CLOUDKEEP_MAIL_EGRESS_TARGETS overrides the list)");
  cmd->add_option("--smtp-timeout", f->smtp_timeout,
                  "Give up on a connection attempt or a reply after this long")
      ->capture_default_str();
  cmd->add_option("--deadline", f->deadline, "Stop probing after this long in all")
      ->capture_default_str();
  cmd->add_option("--mx-hosts", f->hosts, "MX hosts tried per domain, lowest preference first")
      ->check(CLI::Range(1, 10))
      ->capture_default_str();
  cmd->add_option("--helo", f->helo, "The name sent with EHLO")->capture_default_str();
  AddDnsFlags(cmd, &f->dns);
  cmd->footer(
      "Opens one TCP connection per target host and port, reads the greeting, sends EHLO and\n"
      "QUIT, never MAIL FROM or DATA. A target without a port is tried on 25, 587 and 465 (TLS);\n"
      "HOST:PORT only on that port. Each try is one of: open (the target's own greeting), proxy\n"
      "(a greeting naming another host: something on the path answers for it), dropped (the\n"
      "connect timed out: a provider's silent block), refused (RST), unreachable (ICMP), reset\n"
      "(closed after connect), silent (no greeting), rejected (a non-220 greeting: open path,\n"
      "client refused), tls failed, not run (no address, or the deadline passed).\n\n"
      "Port 25 is 'open' when some target greeted genuinely (a HOST:PORT target on a port other\n"
      "than 587/465 counts as port 25). On EC2 (found through IMDSv2;\n"
      "AWS_EC2_METADATA_DISABLED=true turns that off) the advice names the request that lifts\n"
      "the email sending limitation; elsewhere a smarthost on 587. Exit 0 when port 25 is open\n"
      "and nothing intercepts it, 1 when it is blocked, intercepted or could not be checked\n"
      "(never a pass), 2 for bad input.\n\n"
      "Examples:\n"
      "  cloudkeep mail egress\n"
      "  cloudkeep mail egress gmail.com outlook.com\n"
      "  cloudkeep --json mail egress mx.example.net:25 smtp.example.net:587");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    std::vector<std::string> texts = f->targets.empty() ? mail::DefaultEgressTargets() : f->targets;
    std::vector<mail::EgressTarget> targets;
    for (const auto& t : texts) {
      CK_ASSIGN_OR_RETURN(mail::EgressTarget target, mail::ParseEgressTarget(t));
      targets.push_back(target);
    }
    if (f->helo.empty() || f->helo.find_first_of(" \r\n") != std::string::npos)
      return Status::Usage(fmt::format("bad --helo '{}': one host name", f->helo));
    CK_ASSIGN_OR_RETURN(Deadline deadline, DeadlineFlag(f->deadline, "--deadline"));
    mail::EgressOptions o;
    CK_ASSIGN_OR_RETURN(o.timeout_ms, TimeoutMillis(f->smtp_timeout, "--smtp-timeout"));
    o.helo = f->helo;
    o.max_hosts_per_domain = f->hosts;
    o.deadline = deadline;
    CK_ASSIGN_OR_RETURN(auto resolver, MakeResolver(f->dns, deadline));
    mail::CloudInfo cloud = DetectCloud();
    mail::EgressReport r = mail::ProbeEgress(*resolver, targets, o);
    if (ctx.global.json)
      PrintJson(mail::EgressReportToJson(r, cloud));
    else
      PrintText(mail::EgressReportToText(r, cloud));
    bool proxy = false;
    for (const auto& p : r.probes)
      proxy |= !mail::IsRelayPort(p.port) && p.result == mail::EgressResult::kProxy;
    if (r.port25 == mail::EgressVerdict::kOpen && !proxy) return Status::Ok();
    if (r.port25 == mail::EgressVerdict::kOpen)
      return Status::Failure(
          "outbound port 25 works, but something on the path answers for some targets");
    // Only a proxy answered: port 25 is not open to the world, and "blocked"
    // would hide why.
    if (proxy)
      return Status::Failure(
          "outbound port 25 is intercepted: something on the path answers SMTP for the targets "
          "(a transparent proxy)");
    if (r.port25 == mail::EgressVerdict::kBlocked)
      return Status::Failure("outbound port 25 is blocked from this host");
    return Status::Failure("could not check outbound port 25 (UNKNOWN): no target could be tried");
  }));
}

}  // namespace

void AddMailCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "mail", "Will the world trust this mail server? SPF, DKIM, DMARC, PTR, relay, RBLs");
  group->require_subcommand(0, 1);
  group->fallthrough();
  group->footer(
      "A cloud mail server is trusted only if (1) it is not an open relay, (2) it publishes and "
      "follows\n"
      "SPF and DKIM, (3) the PTR record of its IP resolves back exactly to its hostname, and (4) "
      "neither\n"
      "its IP nor its address block is on a DNS blocklist. 'cloudkeep mail check DOMAIN' audits "
      "all of it.");
  AddMailAuthCommands(group, ctx);
  AddMailDkimCommands(group, ctx);
  AddMailAuditCommands(group, ctx);
  AddEgress(group, ctx);
  // `mail ptr` (mail_audit_cmd.cpp) checks; --set/--reset change the PTR on
  // AWS. The group's callback runs after the subcommand's (CLI11 runs
  // children first), so it can take over the action when they are given,
  // reading HOST and the DNS flags from the ptr command's own options.
  CLI::App* ptr = nullptr;
  for (CLI::App* sub : group->get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == "ptr") ptr = sub;
  if (ptr) {
    auto change = std::make_shared<PtrChangeFlags>();
    AddPtrChangeFlags(ptr, change.get());
    group->callback([&ctx, ptr, change]() {
      if (!ptr->parsed()) return;
      auto str = [ptr](const char* name) {
        CLI::Option* o = ptr->get_option_no_throw(name);
        return o && o->count() ? o->as<std::string>() : std::string();
      };
      const bool extras = change->wait || change->dry_run || !change->address.empty();
      if (!change->requested() && !extras) return;
      DnsFlags dns;
      dns.resolver = str("--resolver");
      CLI::Option* timeout = ptr->get_option_no_throw("--timeout");
      const bool timeout_given = timeout && timeout->count() > 0;
      if (timeout_given) dns.timeout = timeout->as<std::string>();
      std::vector<std::string> ips;
      if (CLI::Option* ip = ptr->get_option_no_throw("--ip"); ip && ip->count())
        ips = ip->as<std::vector<std::string>>();
      std::string host = str("HOST");
      Action(ctx, [&ctx, change, dns, ips, host, timeout_given]() -> Status {
        if (!change->requested())
          return Status::Usage("--address, --wait and --dry-run go with --set or --reset");
        return RunPtrChange(ctx, host, ips, *change, dns, timeout_given);
      })();
    });
  }
  for (auto* sub : group->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
