// DNS blocklists (rule 4): is this address — or its address block — listed?
//
// RFC 5782: a list publishes "reversed-address.zone" A records for listed
// addresses (IPv4 octets reversed, §2.1; IPv6 as 32 reversed nibbles, §2.4)
// and an optional TXT with the reason. The A record's value is a code that
// some lists document (Spamhaus ZEN: 127.0.0.2 SBL, .3 CSS, .4 XBL, .9 DROP,
// .10/.11 PBL); those are decoded. An answer in 127.255.255.0/24 (Spamhaus's
// 127.255.255.254 for queries through a public resolver), 127.0.0.1 (never a
// listing, §2.1, used by some lists to refuse), or outside 127.0.0.0/8 (a
// resolver rewriting NXDOMAIN) means the list did not really answer: the
// zone is reported as unusable, never as a listing.
//
// In clouds the neighbours matter: with block_prefix set, every address of
// the surrounding block is checked against every zone, concurrently with a
// bound, and the count of listed neighbours is reported per zone.
//
// Thread safety: functions only; the Resolver must be thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

struct DnsblInfo {
  std::string zone;
  std::string name;                                        // "Spamhaus ZEN"
  bool ipv6 = false;                                       // the list answers for IPv6 addresses
  std::vector<std::pair<std::string, std::string>> codes;  // "127.0.0.2" -> "SBL: …"
  std::string removal;                                     // where to ask for delisting
};

// The built-in set (docs/dnsbl.md), used when no --rbl zone is given.
const std::vector<DnsblInfo>& BuiltinDnsbls();
// The built-in entry for a zone, or nullptr.
const DnsblInfo* FindDnsbl(const std::string& zone);

enum class DnsblVerdict { kListed, kUnusable, kMeaningless };
// What an A answer from `zone` means: `meaning` is filled with the decoded text.
DnsblVerdict DecodeDnsblAnswer(const std::string& zone, const std::string& answer,
                               std::string* meaning);

struct RblOptions {
  std::vector<std::string> zones;  // empty: the built-in set
  int block_prefix = 0;   // 0: the address alone; else e.g. 24 (IPv4 16..32, IPv6 112..128)
  int concurrency = 64;   // queries in flight
  bool fetch_txt = true;  // ask for the list's TXT reason for a listed address
};

struct ZoneResult {
  std::string zone;
  std::string name;  // the list's name when built in
  bool listed = false;
  bool unusable = false;  // the list refused or the answer is not a listing code
  bool skipped = false;   // the list does not serve this address family
  std::string query;
  DnsStatus status = DnsStatus::kNxDomain;
  std::vector<std::string> codes;     // A answers
  std::vector<std::string> meanings;  // decoded, one per code
  std::string txt;
  std::string error;  // SERVFAIL / timeout
  std::string removal;
  // Block scan: listed neighbours (the address itself included).
  int block_listed = 0;
  int block_errors = 0;
  std::vector<std::string> block_listed_addresses;
};

struct RblReport {
  std::string address;
  int block_prefix = 0;
  std::string block;  // "192.0.2.0/24"
  int block_size = 0;
  size_t queries = 0;
  std::vector<ZoneResult> zones;
  bool listed() const;
  int listed_count() const;
  int unusable_count() const;
  // Zones that gave a usable answer for the address (listed or not); zones
  // that failed, refused or were skipped are not counted.
  int answered_count() const;
  int applicable_count() const;  // zones not skipped for the address family
  // Every applicable zone answered (and every neighbour lookup, in a block scan).
  bool complete() const;
  int block_listed_zones() const;  // zones listing some neighbour
};

// kUsage for a bad address, zone or prefix.
Result<RblReport> CheckRbl(Resolver& resolver, const std::string& address,
                           const RblOptions& options);
// The addresses of the block around `address` (for block scans and tests).
Result<std::vector<std::string>> BlockAddresses(const std::string& address, int prefix,
                                                std::string* cidr);

Json RblReportToJson(const RblReport& report);

}  // namespace cloudkeep::mail
