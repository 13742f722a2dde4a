// Registration of the mail command families, one file each.
#pragma once

#include "cli/app.h"

namespace cloudkeep::cli {
// mail spf, mail dmarc (mail_auth_cmd.cpp)
void AddMailAuthCommands(CLI::App* group, Context& ctx);
// mail dkim keygen|sign|verify|check (mail_dkim_cmd.cpp)
void AddMailDkimCommands(CLI::App* group, Context& ctx);
// mail check, mail relay, mail rbl, mail ptr (mail_audit_cmd.cpp)
void AddMailAuditCommands(CLI::App* group, Context& ctx);
}  // namespace cloudkeep::cli
