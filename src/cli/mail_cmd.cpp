// `cloudkeep mail …`: the group; each family of commands has its own file.
#include "cli/mail_cmd.h"

#include <fmt/format.h>

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
  for (auto* sub : group->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
