// DKIM verification (RFC 6376 §6) of every DKIM-Signature in a message,
// with the key looked up through the Resolver at
// <selector>._domainkey.<domain> (§3.6.2) or supplied by the caller.
//
// Results use the RFC 8601 §2.7.1 names: pass, fail (the body hash or the
// signature does not match), permerror (a signature or key that cannot be
// used), temperror (DNS failed; try later), none (no signature).
//
// Thread safety: DkimVerify keeps no state; it is as thread-safe as the
// Resolver passed in (all Resolvers are).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_key.h"
#include "mail/dkim_signature.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

enum class DkimResult { kNone, kPass, kFail, kPermError, kTempError };
const char* DkimResultName(DkimResult r);

struct DkimVerdict {
  DkimResult result = DkimResult::kNone;
  std::string reason;  // why it is not a pass; empty on pass
  std::string domain, selector, identity, algorithm;
  std::string canonicalization;  // "relaxed/simple"
  std::string key_type;
  int key_bits = 0;
  bool testing = false;  // the key has t=y: receivers treat failures as unsigned
};

struct DkimVerifyOptions {
  int64_t now = 0;  // Unix seconds for the x= check; 0 skips it
  // Signatures beyond this many are not checked (§6.1: verifiers may limit
  // the work an attacker can make them do).
  size_t max_signatures = 10;
  // Key record text used instead of DNS for every signature, when not empty.
  std::string key_record;
};

// Verifies each DKIM-Signature, top first. kUsage when the message cannot be
// parsed; a message without signatures gives one verdict "none".
Result<std::vector<DkimVerdict>> DkimVerify(std::string_view message, Resolver* resolver,
                                            const DkimVerifyOptions& options);

// "<selector>._domainkey.<domain>"
std::string DkimKeyName(std::string_view selector, std::string_view domain);

// A selector (RFC 6376 §3.1) or signing domain (d=) that can be published and
// looked up: dot-separated labels of 1..63 letters, digits, '-' and '_' (no
// '-' at either end of a label), and <selector>._domainkey.<domain> within
// 253 characters. kUsage naming `what` and quoting the value otherwise.
Status CheckDkimSelector(std::string_view selector, std::string_view what = "selector");
Status CheckDkimDomain(std::string_view domain, std::string_view what = "domain");
Status CheckDkimKeyName(std::string_view selector, std::string_view domain);

// §3.7 body hash input: the canonical body cut to l= when given; kFailure
// when l= is longer than the canonical body.
Result<std::string> DkimCanonicalBody(const MailMessage& msg, DkimCanon canon,
                                      std::optional<uint64_t> length);

// §3.7 / §5.4.2: the data the signature covers: the fields named in h=, each
// taken from the bottom up (a name listed more times than present adds
// nothing), then the DKIM-Signature field itself with b= emptied and no
// trailing CRLF, all canonicalized with `canon`.
std::string DkimHeaderData(const MailMessage& msg, const std::vector<std::string>& signed_headers,
                           std::string_view raw_signature_field, DkimCanon canon);

Json DkimVerdictToJson(const DkimVerdict& v);

}  // namespace cloudkeep::mail
