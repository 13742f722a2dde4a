// DMARC (RFC 7489): the policy record of a From domain — found at
// _dmarc.<domain> or, failing that, at its organizational domain (§6.6.3)
// — parsed into policy, sp, pct, rua/ruf and the alignment modes, and the
// identifier alignment test (§3.1) that ties SPF and DKIM to the From domain.
//
// The organizational domain comes from the Public Suffix List of Debian's
// publicsuffix package (/usr/share/publicsuffix/public_suffix_list.dat);
// without it, the last two labels. The list is loaded once, thread-safely;
// everything else is stateless.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mail/resolver.h"
#include "mail/spf_lint.h"

namespace cloudkeep::mail {

struct DmarcRecord {
  std::string policy;            // p: none | quarantine | reject
  std::string subdomain_policy;  // sp; "" when absent (p applies)
  int pct = 100;
  std::vector<std::string> rua, ruf;
  char adkim = 'r', aspf = 'r';  // r relaxed, s strict
  std::string fo = "0";
  long ri = 86400;
};

// Parses a "v=DMARC1; p=…" record (§6.3, §6.4). false with `error` on an
// invalid record. A missing or bad p= with a valid rua is treated as p=none
// (§6.6.3 step 6).
bool ParseDmarcRecord(const std::string& text, DmarcRecord* out, std::string* error);

// The organizational domain of `domain` (RFC 7489 §3.2).
std::string OrganizationalDomain(const std::string& domain);

// Identifier alignment (§3.1): strict means equal; relaxed means the same
// organizational domain.
bool DmarcAligned(const std::string& identifier, const std::string& from_domain, bool strict);

struct DmarcLookup {
  std::string domain;
  std::string org_domain;
  std::string record_domain;  // where the record was found ("" if none)
  std::string text;
  std::optional<DmarcRecord> record;
  std::string problem;  // why there is no usable record
  bool dns_error = false;
  std::vector<LintFinding> findings;
  // The policy that applies to `domain`: sp for a subdomain found at the org domain.
  std::string effective_policy() const;
};

DmarcLookup LookupDmarc(Resolver& resolver, const std::string& domain);

// §6.6.2 / §4.2: DMARC passes when SPF passed for an aligned MAIL FROM
// domain or a valid DKIM signature has an aligned d= domain.
struct DmarcEvaluation {
  bool spf_aligned = false, dkim_aligned = false;
  bool pass() const { return spf_aligned || dkim_aligned; }
};
DmarcEvaluation EvaluateDmarc(const DmarcRecord& rec, const std::string& from_domain, bool spf_pass,
                              const std::string& spf_domain,
                              const std::vector<std::string>& dkim_pass_domains);

}  // namespace cloudkeep::mail
