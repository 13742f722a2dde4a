// PTR / forward-confirmed reverse DNS (rule 3) and the reverse names it needs.
//
// Receivers trust a sending IP only when its PTR name resolves back to the
// same address (FCrDNS) and — what the large mailbox providers check — that
// name is the mail server's own hostname, the one it uses in its greeting and
// EHLO. CheckPtr looks at every A/AAAA of the host (or the addresses given),
// every PTR name of each, and every address of each PTR name.
//
// Thread safety: functions only; the Resolver must be thread-safe (it is).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

// "192.0.2.1" -> "1.2.0.192"; "2001:db8::1" -> "1.0.0.0…8.b.d.0.1.0.0.2" (32
// nibbles). RFC 1035 §3.5, RFC 3596 §2.5, and the DNSBL names of RFC 5782 §2.1/§2.4.
// kUsage naming the value when it is not an IP address.
Result<std::string> ReverseLabels(const std::string& ip);
// The PTR query name: ReverseLabels + ".in-addr.arpa" or ".ip6.arpa".
Result<std::string> ReverseName(const std::string& ip);
// The same from an address's bytes in network order (4, or 16 when `v6`):
// the one place the reverse names are built (SPF's IpAddress uses it too).
std::string ReverseLabelsOf(const uint8_t* bytes, bool v6);
std::string ReverseNameOf(const uint8_t* bytes, bool v6);
// True when both are IP addresses and equal (so "2001:db8::1" equals "2001:DB8:0::1").
bool SameAddress(const std::string& a, const std::string& b);
bool IsIpAddress(const std::string& text);
bool IsIpv6(const std::string& text);
// Case-insensitive, trailing dot ignored.
bool SameHostname(const std::string& a, const std::string& b);

struct PtrName {
  std::string name;
  std::vector<std::string> forward;  // its A or AAAA records (same family as the address)
  DnsStatus forward_status = DnsStatus::kNxDomain;
  bool confirmed = false;     // one of `forward` is the address
  bool matches_host = false;  // equals the mail hostname
};

struct PtrAddress {
  std::string address;
  DnsStatus ptr_status = DnsStatus::kNxDomain;
  std::vector<PtrName> names;
  bool fcrdns = false;        // some PTR name resolves back to the address
  bool matches_host = false;  // ... and that name is the mail hostname
  std::string error;          // resolver trouble (SERVFAIL, timeout)
};

struct PtrReport {
  std::string host;  // the mail hostname ("" when only --ip was given)
  std::vector<PtrAddress> addresses;
  std::string error;           // the host has no address, or the lookup failed
  bool lookup_failed = false;  // `error` is a failed lookup (not "no address")
  // Every address has a PTR that resolves back to it and equals the host.
  bool ok() const;
  // Some lookup failed (SERVFAIL, timeout), so a "no" may be unchecked.
  bool incomplete() const;
};

// Addresses empty: the host's A and AAAA records.
PtrReport CheckPtr(Resolver& resolver, const std::string& host, std::vector<std::string> addresses);

Json PtrReportToJson(const PtrReport& report);

}  // namespace cloudkeep::mail
