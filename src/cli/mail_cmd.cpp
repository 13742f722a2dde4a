// `cloudkeep mail …`: the group; each family of commands has its own file.
#include "cli/mail_cmd.h"

namespace cloudkeep::cli {

void AddMailCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("mail", "Will the world trust this mail server? SPF, DKIM, DMARC, PTR, relay, RBLs");
  group->require_subcommand(0, 1);
  group->fallthrough();
  group->footer(
      "A cloud mail server is trusted only if (1) it is not an open relay, (2) it publishes and follows\n"
      "SPF and DKIM, (3) the PTR record of its IP resolves back exactly to its hostname, and (4) neither\n"
      "its IP nor its address block is on a DNS blocklist. 'cloudkeep mail check DOMAIN' audits all of it.");
  AddMailAuthCommands(group, ctx);
  AddMailDkimCommands(group, ctx);
  AddMailAuditCommands(group, ctx);
  for (auto* sub : group->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
