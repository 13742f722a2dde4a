// The DKIM part of rule 2 of a trusted mail server: does the domain publish
// usable DKIM keys? For each selector, the key record at
// <selector>._domainkey.<domain> is looked up and judged: key type, key
// size (RSA under 1024 bits fails, RFC 8301 §3.2; under 2048 warns, as
// the big mailbox providers require 2048 for new keys), the t=y testing
// flag, a revoked key (empty p=), services and hashes that exclude email or
// SHA-256, several records at one name, and a missing record.
//
// A selector is not discoverable from DNS; with none given, a list of
// selectors that common software and providers use is tried, and only the
// ones found are reported.
//
// Thread safety: stateless; as thread-safe as the Resolver (all are).
#pragma once

#include <string>
#include <vector>

#include "core/output.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

// kUnknown: could not check (the key lookup timed out or SERVFAILed); never
// a pass, never "missing".
enum class DkimSeverity { kPass, kInfo, kWarn, kUnknown, kFail };
const char* DkimSeverityName(DkimSeverity s);  // "pass", "info", "warn", "unknown", "fail"

struct DkimFinding {
  DkimSeverity severity = DkimSeverity::kPass;
  std::string selector;  // empty for findings about the domain as a whole
  std::string message;   // what was found
  std::string fix;       // how to fix it; empty on pass
};

struct DkimSelectorReport {
  std::string selector;
  std::string name;            // <selector>._domainkey.<domain>
  std::string dns_status;      // DnsStatusName of the TXT lookup
  bool found = false;          // a TXT record exists at the name
  bool lookup_failed = false;  // SERVFAIL / timeout: neither found nor missing
  std::string record;          // the record judged (first DKIM-looking one)
  std::string key_type;        // "rsa" | "ed25519" | "" when unreadable
  int key_bits = 0;
  bool testing = false;
  bool revoked = false;
  DkimSeverity severity = DkimSeverity::kPass;  // worst of its findings
};

struct DkimCheckReport {
  std::string domain;
  bool guessed = false;                       // selectors came from CommonDkimSelectors
  std::vector<DkimSelectorReport> selectors;  // when guessed: only those found
  std::vector<DkimFinding> findings;
  DkimSeverity severity = DkimSeverity::kPass;  // worst finding
  int checked = 0;                              // selectors whose lookup was answered (of `tried`)
  int tried = 0;
};

// Selectors tried when none is given (default, google, selector1, k1, …).
const std::vector<std::string>& CommonDkimSelectors();

// Judges the selectors' key records; with `selectors` empty, tries the
// common ones. Never fails: DNS errors become one kUnknown finding naming the
// selectors that could not be checked (one root cause, one finding).
DkimCheckReport CheckDkimSelectors(Resolver& resolver, const std::string& domain,
                                   const std::vector<std::string>& selectors);

Json DkimCheckToJson(const DkimCheckReport& report);

}  // namespace cloudkeep::mail
