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
#include "mail/egress.h"
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
// by group, and what the deadline left unchecked comes first; then the
// check before the four rules, whether this host can send on port 25 at
// all. A new group goes here, in CheckGroupName and in CheckGroupTitle
// (check_render.cpp).
enum class CheckGroup {
  kDeadline,
  kEgress,  // outbound port 25 from this host (mail egress)
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
// The stable name in --json: "deadline", "egress", "DNS", "MX", "1 relay", "2 SPF",
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
  // Outbound port 25 from the host running the audit (the group before the
  // rules): probed unless `egress` is false or `smtp` is (SKIP then). The
  // targets as `mail egress` takes them; empty: DefaultEgressTargets().
  bool egress = true;
  std::vector<EgressTarget> egress_targets;
  EgressOptions egress_options;  // its deadline is set from `deadline`
  // Where this host runs (IMDSv2, found by the caller): the egress advice.
  CloudInfo cloud;
  // The provider the command was given (--provider): "aws" makes the fix of
  // a rule-3 failure the `mail ptr --set` command that repairs it.
  std::string provider;
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
  std::optional<EgressReport> egress;  // not set when the egress check did not run
  CloudInfo cloud;
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

// The fix of a rule-3 (PTR) failure for `address` of mail host `host`.
// With provider "aws" and an IPv4 address: the command that sets it through
// EC2, exact arguments included ("... cloudkeep --provider aws mail ptr
// mx.example.com --set --address 192.0.2.25"; that command itself first
// checks that the A record points at the address). Otherwise `otherwise`
// (the record to ask the address's owner for).
std::string PtrFix(const std::string& provider, const std::string& host, const std::string& address,
                   const std::string& otherwise);

// The egress findings of `report` (group kEgress): one for port 25 (PASS
// only when a target's own server greeted and nothing intercepted; FAIL
// blocked or intercepted, with EgressAdvice as the fix; UNKNOWN when no
// target could be tried), one for the relay ports 587/465.
std::vector<CheckFinding> EgressFindings(const EgressReport& report, const CloudInfo& cloud);

// kUsage for a bad domain or address; everything found is a finding.
Result<MailCheckReport> RunMailCheck(Resolver& resolver, const MailCheckOptions& options);

// The text and JSON renderings are in mail/check_render.h.

}  // namespace cloudkeep::mail
