// SPF lint: what is wrong with a domain's published SPF policy — the
// DNS-lookup count (RFC 7208 §4.6.4) followed statically through include and
// redirect, the deprecated ptr mechanism (§5.5), +all / ?all, a missing
// "all", several SPF records — and, so that the lint agrees with the
// evaluator, check_host() itself for two senders the record does not list
// (TEST-NET addresses): a permerror there (include or redirect loops, too
// many lookups, void lookups or MX names) is a failure with the reason.
//
// Stateless functions; thread-safe if the Resolver is.
#pragma once

#include <string>
#include <vector>

#include "mail/resolver.h"

namespace cloudkeep::mail {

struct LintFinding {
  // kUnknown: could not check (a lookup timed out or failed): never ok.
  enum class Severity { kOk, kWarn, kUnknown, kFail };
  Severity severity = Severity::kOk;
  std::string message;
};
const char* SeverityName(LintFinding::Severity s);  // "ok", "warn", "unknown", "fail"

struct SpfLintReport {
  std::string domain;
  std::vector<std::string> records;  // the SPF records found at the domain
  // Terms that query DNS, counted through literal include/redirect targets;
  // a target that holds macros counts once and is not followed.
  int dns_lookups = 0;
  std::vector<LintFinding> findings;
  // The domain's own TXT lookup failed: nothing about the record is known.
  bool dns_error = false;
  bool failed() const;
  bool incomplete() const;  // some finding is kUnknown
};

SpfLintReport LintSpf(Resolver& resolver, const std::string& domain);

}  // namespace cloudkeep::mail
