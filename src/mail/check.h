// MailCheck: the whole deliverability audit of a domain's mail servers.
//
// Ties the four rules of a trusted cloud mail server together — (1) not an
// open relay, (2) SPF and DKIM, (3) PTR resolving back to the hostname,
// (4) no DNS blocklist listing of the IP or its block — plus DMARC, STARTTLS
// and the 2024 bulk-sender requirements of the large mailbox providers (SPF
// and DKIM, DMARC at least p=none, an aligned From, valid forward and reverse
// DNS, TLS). Every finding is PASS, WARN, FAIL (or SKIP when a check was
// turned off) with a one-line fix, e.g. the exact DNS record to publish.
// What could not be checked is UNKNOWN, never PASS: a lookup that failed, a
// server that did not answer, and the checks the deadline (--deadline) left
// unstarted, which one finding names.
//
// Rule 2 comes from the SPF, DMARC and DKIM modules; this file only judges.
//
// Thread safety: RunMailCheck is stateless; the Resolver must be thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/deadline.h"
#include "core/output.h"
#include "core/status.h"
#include "mail/dkim_check.h"
#include "mail/dmarc.h"
#include "mail/ptr_check.h"
#include "mail/rbl.h"
#include "mail/relay_probe.h"
#include "mail/resolver.h"
#include "mail/spf.h"
#include "mail/spf_lint.h"

namespace cloudkeep::mail {

// Ordered by weight: the worst of several is the largest.
enum class CheckLevel { kPass, kSkip, kWarn, kUnknown, kFail };
const char* CheckLevelName(CheckLevel level);  // "PASS", "SKIP", "WARN", "UNKNOWN", "FAIL"

// What a finding is about. The order is the report's: findings are sorted
// by group, and what the deadline left unchecked comes first. A new group
// goes here, in CheckGroupName and in CheckGroupTitle (check_render.cpp).
enum class CheckGroup {
  kDeadline,
  kDns,
  kMx,
  kRelay,  // rule 1
  kSpf,    // rule 2
  kDkim,   // rule 2
  kPtr,    // rule 3
  kRbl,    // rule 4
  kDmarc,
  kTls,
  kBulk,
};
// The stable name in --json: "deadline", "DNS", "MX", "1 relay", "2 SPF",
// "2 DKIM", "3 PTR", "4 RBL", "DMARC", "TLS", "bulk".
const char* CheckGroupName(CheckGroup group);

struct CheckFinding {
  CheckGroup group = CheckGroup::kDns;
  std::string subject;  // the host, address or domain it is about
  CheckLevel level = CheckLevel::kPass;
  std::string message;
  std::string fix;  // empty on PASS
};

struct MailCheckOptions {
  std::string domain;
  std::string host;                         // check this mail host instead of the MX hosts
  std::vector<std::string> ips;             // use these addresses instead of the host's A/AAAA
  std::vector<std::string> dkim_selectors;  // empty: the common ones are tried
  RblOptions rbl;
  uint16_t smtp_port = 25;
  bool smtp = true;        // false: no SMTP connection at all (--no-smtp)
  bool relay_test = true;  // false: greeting/TLS only (--no-relay-test)
  RelayOptions relay;      // its smtp.deadline is set from `deadline`
  // The whole audit ends by then. Make the Resolver with the same deadline
  // (ResolverOptions::deadline) so that its waits are clamped to it too.
  Deadline deadline = Deadline::Never();
};

struct MailHostReport {
  std::string host;
  std::vector<std::string> addresses;
  PtrReport ptr;
  std::vector<RblReport> rbl;       // one per address
  std::vector<SpfOutcome> spf;      // one per address: check_host(ip, domain)
  std::optional<RelayReport> smtp;  // the relay probe or the greeting probe
  std::string smtp_error;           // the SMTP connection failed
};

struct MailCheckReport {
  std::string domain;
  std::vector<std::string> mx;  // "10 mx.example.com"
  std::vector<MailHostReport> hosts;
  SpfLintReport spf_lint;
  DmarcLookup dmarc;
  DkimCheckReport dkim;
  std::vector<CheckFinding> findings;
  // The deadline passed before the audit was done; `not_checked` names the
  // steps that never started ("DKIM of example.com").
  bool deadline_reached = false;
  std::vector<std::string> not_checked;
  int count(CheckLevel level) const;
  bool failed() const { return count(CheckLevel::kFail) > 0; }
  // Something could not be checked: the audit is not a clean bill of health.
  bool incomplete() const { return count(CheckLevel::kUnknown) > 0; }
};

// kUsage for a bad domain or address; everything found is a finding.
Result<MailCheckReport> RunMailCheck(Resolver& resolver, const MailCheckOptions& options);

// The text and JSON renderings are in mail/check_render.h.

}  // namespace cloudkeep::mail
