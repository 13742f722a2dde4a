// Registration of the mail command families, one file each.
#pragma once

#include "cli/app.h"
#include "core/deadline.h"
#include "mail/egress.h"
#include "mail/resolver.h"

namespace cloudkeep::cli {

// --resolver and --timeout, shared by the mail commands that ask DNS.
struct DnsFlags {
  std::string resolver;
  std::string timeout = "5s";
  // `mail check` also has an SMTP timeout, so its DNS one is --dns-timeout.
  std::string timeout_flag = "--timeout";
  // Queries in flight; blocklist scans of whole blocks want more.
  int max_in_flight = 256;
};
void AddDnsFlags(CLI::App* cmd, DnsFlags* flags);
// A DUR flag ("10s", "500ms"; a bare number is seconds) as whole milliseconds, at least 1.
Result<int> TimeoutMillis(const std::string& text, const std::string& flag);
// --deadline DUR ("2m"; a bare number is seconds): the whole command's
// deadline, counted from now; kUsage naming the flag and value unless > 0.
Result<Deadline> DeadlineFlag(const std::string& text, const std::string& flag);
// The libunbound resolver those flags describe, its waits clamped to
// `deadline`; kUsage for a bad value.
Result<std::unique_ptr<mail::Resolver>> MakeResolver(const DnsFlags& flags,
                                                     Deadline deadline = Deadline::Never());
// `mail ptr HOST --set|--reset [--address EIP] [--wait] [--dry-run]`: the
// reverse DNS of an Elastic IP set through EC2 (mail_cmd.cpp; `mail ptr`
// itself is in mail_audit_cmd.cpp and hands over when one of these is given).
struct PtrChangeFlags {
  bool set = false, reset = false, wait = false, dry_run = false;
  std::string address;
  bool requested() const { return set || reset; }
};
void AddPtrChangeFlags(CLI::App* ptr, PtrChangeFlags* flags);
// `timeout_given`: --timeout was on the command line (then it bounds the
// wait; DNS queries keep their own 5s unless it is shorter).
Status RunPtrChange(Context& ctx, const std::string& host, const std::vector<std::string>& ips,
                    const PtrChangeFlags& flags, const DnsFlags& dns, bool timeout_given);
// The cloud this host runs on, through IMDSv2 (AWS_EC2_METADATA_DISABLED
// and AWS_EC2_METADATA_SERVICE_ENDPOINT honoured): for the egress advice.
mail::CloudInfo DetectCloud();
// mail spf, mail dmarc (mail_auth_cmd.cpp)
void AddMailAuthCommands(CLI::App* group, Context& ctx);
// mail dkim keygen|sign|verify|check (mail_dkim_cmd.cpp)
void AddMailDkimCommands(CLI::App* group, Context& ctx);
// mail check, mail relay, mail rbl, mail ptr (mail_audit_cmd.cpp)
void AddMailAuditCommands(CLI::App* group, Context& ctx);
}  // namespace cloudkeep::cli
