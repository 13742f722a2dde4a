// Outbound SMTP from this host: can it open a session on port 25 to the
// outside at all? The problem before all four rules of a trusted mail
// server, since several clouds block or throttle port 25 by default.
//
// For each target (a domain: its MX hosts; a host; HOST:PORT) and port (25,
// and 587 and 465 so that advice can offer a relay), one TCP connection and
// at most EHLO and QUIT — never MAIL FROM, RCPT or DATA — classified as:
//   open         the target's own greeting (and EHLO reply)
//   proxy        a greeting whose name is not the target's (a transparent
//                proxy or an intercepting firewall answering for it)
//   dropped      connect timed out: SYNs silently dropped, typical of a
//                provider's port-25 block
//   refused      RST on connect (nothing listens, or a firewall rejects)
//   unreachable  ICMP unreachable / administratively prohibited
//   reset        accepted, then reset or closed before a greeting
//   silent       accepted, no greeting in time
//   rejected     a 554 (or other non-220) greeting: the path is open, the
//                server refuses this client
//   tls failed   port 465: the TLS handshake failed
//   not run      no address to try (DNS failed), or the deadline passed
// The proxy test compares the greeting's and EHLO reply's host names with
// the target's name: same name, same parent domain (mx.google.com for
// gmail-smtp-in.l.google.com), or a name that resolves to the address
// connected to, is the target's own. An address target (no name) is never
// called a proxy.
//
// Thread safety: functions only; the Resolver must be thread-safe (it is).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/deadline.h"
#include "core/output.h"
#include "core/status.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

enum class EgressResult {
  kOpen,
  kProxy,
  kDropped,
  kRefused,
  kUnreachable,
  kReset,
  kSilent,
  kRejected,
  kTlsFailed,
  kNotRun,
};
const char* EgressResultName(EgressResult r);

struct EgressTarget {
  std::string text;        // as given
  std::string name;        // domain or host name, or an address
  bool is_domain = false;  // no port given and not an address: try MX first
  uint16_t port = 0;       // 0: ports 25, 587 and 465
};
// "DOMAIN", "HOST", "HOST:PORT", "ADDRESS", "[V6]:PORT"; kUsage naming the value.
Result<EgressTarget> ParseEgressTarget(const std::string& text);

// The well-known providers probed when no target is given, overridable with
// CLOUDKEEP_MAIL_EGRESS_TARGETS (targets separated by spaces or commas).
std::vector<std::string> DefaultEgressTargets();

struct EgressOptions {
  int timeout_ms = 10000;  // connect, and each reply
  std::string helo = "egress-check.cloudkeep.invalid";
  int max_hosts_per_domain = 2;  // MX hosts tried per domain, lowest preference first
  // A target without a port is tried on 587 and 465 only when port 25 got
  // no genuine greeting from any target (mail check: a host that sends on
  // 25 does not wait for the MX hosts' closed submission ports). The probes
  // of port 25 then come first, those of 587/465 after.
  bool relay_ports_when_needed = false;
  Deadline deadline = Deadline::Never();
};

struct EgressProbe {
  std::string target;  // the target as given
  std::string host;    // the host name tried ("" for an address target)
  std::string address;
  uint16_t port = 25;
  bool implicit_tls = false;  // 465
  EgressResult result = EgressResult::kNotRun;
  std::string banner;  // the greeting's text
  std::string detail;  // one line: why this result
  int64_t elapsed_ms = 0;
};

// 587 (submission) and 465 (submissions): the ports of a relay. Every other
// port — 25, or the port of a HOST:PORT target such as a test's server on
// 2525 — is a direct SMTP session to a mail exchanger, judged as port 25.
inline bool IsRelayPort(uint16_t port) {
  return port == 587 || port == 465;
}

// port25: the direct SMTP ports (25, or a target's own port that is not
// 587/465); relay: 587 and 465.
enum class EgressVerdict { kOpen, kBlocked, kUnknown, kNotTested };
const char* EgressVerdictName(EgressVerdict v);

struct EgressReport {
  std::vector<EgressProbe> probes;
  EgressVerdict port25 = EgressVerdict::kNotTested;
  EgressVerdict relay = EgressVerdict::kNotTested;  // 587 or 465
  bool deadline_reached = false;
};

// Runs every probe (one at a time: a blocked port costs one timeout each).
EgressReport ProbeEgress(Resolver& resolver, const std::vector<EgressTarget>& targets,
                         const EgressOptions& options);

// Where the host runs, for the advice: "aws" (IMDSv2 answered), or "" when
// no metadata service answered.
struct CloudInfo {
  std::string provider;
  std::string region, instance_id;
};
// One paragraph: what the result means and what to do about it.
std::string EgressAdvice(const EgressReport& report, const CloudInfo& cloud);

Json EgressReportToJson(const EgressReport& report, const CloudInfo& cloud);
std::string EgressReportToText(const EgressReport& report, const CloudInfo& cloud);

}  // namespace cloudkeep::mail
