// DNS wire helpers for the libunbound resolver: rdata in wire format to the
// presentation text the Resolver interface promises (resolver.h), and the
// `--resolver ADDR[:PORT]` value to libunbound's "ADDR@PORT" forwarder form.
//
// These parse bytes that come from the network, so they never trust a
// length: every read is bounds-checked and a malformed rdata yields nullopt
// (fuzz/fuzz_dns_rdata.cpp exercises them). Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

// Rdata of one record, uncompressed as libunbound hands it over, to text:
// A/AAAA addresses, names without the trailing dot (labels escaped as in
// RFC 1035 §5.1), MX "PREF HOST", TXT the character-strings concatenated
// (RFC 7208 §3.3), SOA "MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM".
std::optional<std::string> RdataToText(RrType type, std::string_view rdata);

// "192.0.2.1", "192.0.2.1:5353", "::1", "[::1]:5353" -> "ADDR@PORT".
// kUsage naming the value when it is not an IP address with a valid port.
Result<std::string> ForwarderAddress(const std::string& server);

}  // namespace cloudkeep::mail
