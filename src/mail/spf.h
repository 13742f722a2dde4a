// SPF: the RFC 7208 check_host() function, the parser of SPF records and
// the macro language (§7), behind the Resolver interface so the same code
// runs against libunbound and against in-process zone data in tests.
//
// An SpfEvaluator holds only its options and a Resolver reference; each
// CheckHost call keeps its own state (lookup counters), so one evaluator may
// be used from several threads if its Resolver may.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mail/resolver.h"

namespace cloudkeep::mail {

// RFC 7208 §2.6.
enum class SpfResult { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };
// The RFC's lower-case name: "pass", "softfail", "permerror"…
const char* SpfResultName(SpfResult r);

// An IPv4 or IPv6 address; IPv4-mapped IPv6 addresses are IPv4 (§5).
struct IpAddress {
  bool v6 = false;
  uint8_t bytes[16] = {};
  static std::optional<IpAddress> Parse(const std::string& text);
  std::string ToString() const;
  // Whether the first `bits` bits equal those of `other` (same family).
  bool InPrefix(const IpAddress& other, int bits) const;
  // The reverse-lookup name: "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles.
  std::string ReverseName() const;
};

// One term of a record, as parsed (§4.6.1, §5, §6).
struct SpfTerm {
  enum class Kind { kMechanism, kModifier };
  Kind kind = Kind::kMechanism;
  char qualifier = '+';     // + - ~ ?
  std::string name;         // lower-case: "all", "include", "a", … or the modifier name
  std::string domain_spec;  // the unexpanded macro-string ("" when absent)
  IpAddress network;        // ip4/ip6
  int cidr4 = 32;
  int cidr6 = 128;
  std::string text;  // the term as written
};

struct SpfRecord {
  std::vector<SpfTerm> terms;  // mechanisms and unknown modifiers, in order
  std::optional<std::string> redirect;
  std::optional<std::string> exp;
};

// Parses "v=spf1 …" (the version tag included). Syntax errors anywhere make
// the record a permerror (§4.6); `error` names the offending term.
bool ParseSpfRecord(const std::string& text, SpfRecord* out, std::string* error);

// Whether a TXT string is an SPF record: "v=spf1" then a space or the end (§4.5).
bool IsSpfRecord(const std::string& txt);

struct SpfOptions {
  int max_dns_terms = 10;  // §4.6.4: mechanisms and modifiers that query DNS
  int max_void_lookups = 2;
  int max_mx_ptr_names = 10;
  // Used when a fail has no exp= (or the exp= cannot be used); macro-expanded.
  std::string default_explanation = "%{d} does not designate %{i} as a permitted sender";
  std::string receiving_host = "unknown";  // the %{r} macro
  std::time_t now = 0;                     // the %{t} macro; 0: the current time
};

struct SpfOutcome {
  SpfResult result = SpfResult::kNone;
  std::string
      mechanism;  // the term that decided ("-all", "include:…", "default" when none matched)
  std::string explanation;  // for fail
  std::string domain;       // the domain whose record decided
  std::string record;       // that record's text
  std::string problem;      // why temperror/permerror/none, in words
  int dns_lookups = 0;      // terms counted against the 10-lookup limit
  int void_lookups = 0;
};

class SpfEvaluator {
 public:
  SpfEvaluator(Resolver& resolver, SpfOptions options = {});
  // check_host(<ip>, <domain>, <sender>) of §4 for the MAIL FROM identity;
  // `helo` feeds the %{h} macro. With an empty `sender` the HELO identity
  // is checked: sender postmaster@helo, domain helo (§2.3).
  SpfOutcome Check(const std::string& ip, const std::string& sender, const std::string& helo);
  SpfOutcome CheckHost(const IpAddress& ip, const std::string& domain, const std::string& sender,
                       const std::string& helo);

 private:
  Resolver& resolver_;
  SpfOptions options_;
};

// Expands a macro-string (§7). `exp` allows the c, r and t letters. Returns
// false on a syntax error. Exposed for tests and the lint.
struct MacroContext {
  std::string sender, local, sender_domain, domain, helo, validated_ptr = "unknown",
                                                          receiving_host = "unknown";
  IpAddress ip;
  std::time_t now = 0;
  // The %{p} macro resolves lazily (it costs DNS lookups); unset: validated_ptr.
  std::function<std::string()> ptr;
};
bool ExpandMacros(const std::string& in, const MacroContext& ctx, bool exp, std::string* out);

// A domain-spec after expansion: dropped leading labels past 253 chars (§7.3).
std::string TruncateDomain(std::string name);

// §4.3: whether a name is a syntactically valid multi-label domain.
bool IsValidDomain(const std::string& name);

}  // namespace cloudkeep::mail
