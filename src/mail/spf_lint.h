// SPF lint: what is wrong with a domain's published SPF policy, short of
// evaluating it for a client — the DNS-lookup count (RFC 7208 §4.6.4)
// followed statically through include and redirect, the deprecated ptr
// mechanism (§5.5), +all / ?all, a missing "all", several SPF records.
//
// Stateless functions; thread-safe if the Resolver is.
#pragma once

#include <string>
#include <vector>

#include "mail/resolver.h"

namespace cloudkeep::mail {

struct LintFinding {
  enum class Severity { kOk, kWarn, kFail };
  Severity severity = Severity::kOk;
  std::string message;
};
const char* SeverityName(LintFinding::Severity s);  // "ok", "warn", "fail"

struct SpfLintReport {
  std::string domain;
  std::vector<std::string> records;  // the SPF records found at the domain
  // Terms that query DNS, counted through literal include/redirect targets;
  // a target that holds macros counts once and is not followed.
  int dns_lookups = 0;
  std::vector<LintFinding> findings;
  bool failed() const;
};

SpfLintReport LintSpf(Resolver& resolver, const std::string& domain);

}  // namespace cloudkeep::mail
