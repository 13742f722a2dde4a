#include "mail/rbl.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

#include "mail/ptr_check.h"

namespace cloudkeep::mail {

const std::vector<DnsblInfo>& BuiltinDnsbls() {
  // Return codes as each list documents them on its own site; lists that
  // only say "listed" use 127.0.0.2 (RFC 5782 §2.1).
  static const std::vector<DnsblInfo> kLists = {
      {"zen.spamhaus.org",
       "Spamhaus ZEN",
       true,
       {{"127.0.0.2", "SBL: Spamhaus Block List, known spam source"},
        {"127.0.0.3", "SBL CSS: snowshoe spam / low-reputation sender"},
        {"127.0.0.4", "XBL: exploited host (CBL, botnet or malware)"},
        {"127.0.0.5", "XBL: exploited host"},
        {"127.0.0.6", "XBL: exploited host"},
        {"127.0.0.7", "XBL: exploited host"},
        {"127.0.0.9", "SBL DROP: hijacked or criminal netblock"},
        {"127.0.0.10", "PBL: ISP-maintained policy block (end-user range, should not send direct)"},
        {"127.0.0.11",
         "PBL: Spamhaus-maintained policy block (end-user range, should not send direct)"}},
       "https://check.spamhaus.org/"},
      {"bl.spamcop.net",
       "SpamCop",
       false,
       {{"127.0.0.2", "listed: reported spam source"}},
       "https://www.spamcop.net/bl.shtml"},
      {"b.barracudacentral.org",
       "Barracuda Reputation Block List",
       false,
       {{"127.0.0.2", "listed: poor sender reputation"}},
       "https://www.barracudacentral.org/rbl/removal-request"},
      {"psbl.surriel.com",
       "Passive Spam Block List",
       false,
       {{"127.0.0.2", "listed: sent to spam traps"}},
       "https://psbl.org/"},
      {"dnsbl-1.uceprotect.net",
       "UCEPROTECT level 1",
       false,
       {{"127.0.0.2", "listed: this address sent to spam traps"}},
       "https://www.uceprotect.net/en/rblcheck.php"},
      {"dnsbl-2.uceprotect.net",
       "UCEPROTECT level 2",
       false,
       {{"127.0.0.2", "listed: too many listed addresses in this allocation"}},
       "https://www.uceprotect.net/en/rblcheck.php"},
      {"ix.dnsbl.manitu.net",
       "NiX Spam",
       false,
       {{"127.0.0.2", "listed: sent spam to NiX Spam traps"}},
       "https://www.nixspam.net/"},
      {"dnsbl.dronebl.org",
       "DroneBL",
       true,
       {{"127.0.0.3", "IRC drone"},
        {"127.0.0.5", "bottler"},
        {"127.0.0.6", "unknown spambot or drone"},
        {"127.0.0.7", "DDoS drone"},
        {"127.0.0.8", "SOCKS proxy"},
        {"127.0.0.9", "HTTP proxy"},
        {"127.0.0.10", "proxy chain"},
        {"127.0.0.13", "brute force attacker"},
        {"127.0.0.14", "open Wingate proxy"},
        {"127.0.0.15", "compromised router or gateway"},
        {"127.0.0.17", "automatically determined botnet address"}},
       "https://dronebl.org/lookup"},
      {"bl.mailspike.net",
       "Mailspike",
       false,
       {{"127.0.0.2", "listed: spam source"}},
       "https://mailspike.org/"},
      {"truncate.gbudb.net",
       "GBUdb Truncate",
       false,
       {{"127.0.0.2", "listed: high-confidence spam source"}},
       "https://www.gbudb.com/"},
  };
  return kLists;
}

const DnsblInfo* FindDnsbl(const std::string& zone) {
  for (const auto& l : BuiltinDnsbls())
    if (strcasecmp(l.zone.c_str(), zone.c_str()) == 0) return &l;
  return nullptr;
}

DnsblVerdict DecodeDnsblAnswer(const std::string& zone, const std::string& answer,
                               std::string* meaning) {
  in_addr a;
  if (inet_pton(AF_INET, answer.c_str(), &a) != 1) {
    *meaning = "answer is not an IPv4 address";
    return DnsblVerdict::kMeaningless;
  }
  uint32_t v = ntohl(a.s_addr);
  if ((v >> 24) != 127) {
    *meaning =
        "answer outside 127.0.0.0/8: a resolver is rewriting NXDOMAIN, or the zone is wildcarded";
    return DnsblVerdict::kMeaningless;
  }
  if ((v & 0xffffff00u) == 0x7fffff00u) {
    // Spamhaus documents these as errors, not listings.
    switch (v & 0xff) {
      case 252:
        *meaning = "list refused: typing error in the DNSBL name";
        break;
      case 254:
        *meaning = "list refused: query came through a public/open resolver; use your own resolver";
        break;
      case 255:
        *meaning = "list refused: excessive number of queries";
        break;
      default:
        *meaning = "list refused the query (127.255.255.x error code)";
        break;
    }
    return DnsblVerdict::kUnusable;
  }
  if (v == 0x7f000001u) {
    *meaning = "list refused the query (127.0.0.1 is never a listing, RFC 5782 §2.1)";
    return DnsblVerdict::kUnusable;
  }
  if (const DnsblInfo* info = FindDnsbl(zone)) {
    for (const auto& [code, text] : info->codes)
      if (code == answer) {
        *meaning = text;
        return DnsblVerdict::kListed;
      }
  }
  *meaning = v == 0x7f000002u ? "listed" : fmt::format("listed (code {})", answer);
  return DnsblVerdict::kListed;
}

bool RblReport::listed() const {
  return listed_count() > 0;
}
int RblReport::listed_count() const {
  return static_cast<int>(
      std::count_if(zones.begin(), zones.end(), [](const ZoneResult& z) { return z.listed; }));
}
int RblReport::unusable_count() const {
  return static_cast<int>(
      std::count_if(zones.begin(), zones.end(), [](const ZoneResult& z) { return z.unusable; }));
}
int RblReport::answered_count() const {
  return static_cast<int>(std::count_if(zones.begin(), zones.end(), [](const ZoneResult& z) {
    return !z.skipped && !z.unusable && z.error.empty();
  }));
}
int RblReport::applicable_count() const {
  return static_cast<int>(
      std::count_if(zones.begin(), zones.end(), [](const ZoneResult& z) { return !z.skipped; }));
}
bool RblReport::complete() const {
  for (const auto& z : zones)
    if (z.block_errors > 0) return false;
  return answered_count() == applicable_count();
}
int RblReport::block_listed_zones() const {
  return static_cast<int>(std::count_if(zones.begin(), zones.end(),
                                        [](const ZoneResult& z) { return z.block_listed > 0; }));
}

namespace {

Status CheckZone(const std::string& zone) {
  if (zone.empty() || zone.size() > 200 || zone.front() == '.' ||
      zone.find("..") != std::string::npos)
    return Status::Usage(fmt::format("bad blocklist zone '{}'", zone));
  for (char c : zone)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
      return Status::Usage(fmt::format("bad blocklist zone '{}'", zone));
  return Status::Ok();
}

std::string Strip(std::string z) {
  while (!z.empty() && z.back() == '.') z.pop_back();
  return z;
}

}  // namespace

Result<std::vector<std::string>> BlockAddresses(const std::string& address, int prefix,
                                                std::string* cidr) {
  in_addr a4;
  in6_addr a6;
  std::vector<std::string> out;
  char buf[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, address.c_str(), &a4) == 1) {
    // A /16 is 65,536 addresses per zone — as far as a scan should go.
    if (prefix < 16 || prefix > 32)
      return Status::Usage(fmt::format("bad --block-prefix '{}' for IPv4: use 16..32", prefix));
    uint32_t mask = prefix == 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
    uint32_t base = ntohl(a4.s_addr) & mask;
    uint32_t n = prefix == 32 ? 1 : (1u << (32 - prefix));
    for (uint32_t i = 0; i < n; ++i) {
      in_addr x{htonl(base + i)};
      inet_ntop(AF_INET, &x, buf, sizeof buf);
      out.emplace_back(buf);
    }
    in_addr b{htonl(base)};
    inet_ntop(AF_INET, &b, buf, sizeof buf);
    if (cidr) *cidr = fmt::format("{}/{}", buf, prefix);
    return out;
  }
  if (inet_pton(AF_INET6, address.c_str(), &a6) == 1) {
    if (prefix < 112 || prefix > 128)
      return Status::Usage(fmt::format("bad --block-prefix '{}' for IPv6: use 112..128", prefix));
    // Only the last 16 bits vary at most.
    uint32_t host_bits = 128 - prefix;
    uint32_t low = (a6.s6_addr[14] << 8) | a6.s6_addr[15];
    uint32_t base = host_bits == 0 ? low : (low & ~((1u << host_bits) - 1) & 0xffff);
    uint32_t n = 1u << host_bits;
    for (uint32_t i = 0; i < n; ++i) {
      in6_addr x = a6;
      x.s6_addr[14] = static_cast<uint8_t>((base + i) >> 8);
      x.s6_addr[15] = static_cast<uint8_t>((base + i) & 0xff);
      inet_ntop(AF_INET6, &x, buf, sizeof buf);
      out.emplace_back(buf);
    }
    in6_addr b = a6;
    b.s6_addr[14] = static_cast<uint8_t>(base >> 8);
    b.s6_addr[15] = static_cast<uint8_t>(base & 0xff);
    inet_ntop(AF_INET6, &b, buf, sizeof buf);
    if (cidr) *cidr = fmt::format("{}/{}", buf, prefix);
    return out;
  }
  return Status::Usage(fmt::format("'{}' is not an IP address", address));
}

Result<RblReport> CheckRbl(Resolver& resolver, const std::string& address,
                           const RblOptions& options) {
  if (!IsIpAddress(address))
    return Status::Usage(fmt::format("'{}' is not an IP address", address));
  RblReport report;
  // One spelling of the address, so the block entry that is "it" is found.
  CK_ASSIGN_OR_RETURN(auto canonical, BlockAddresses(address, IsIpv6(address) ? 128 : 32, nullptr));
  report.address = canonical[0];
  report.block_prefix = options.block_prefix;
  bool v6 = IsIpv6(address);
  std::vector<std::string> zones;
  for (const auto& z : options.zones) {
    CK_RETURN_IF_ERROR(CheckZone(Strip(z)));
    zones.push_back(Strip(z));
  }
  bool builtin = zones.empty();
  if (builtin)
    for (const auto& l : BuiltinDnsbls()) zones.push_back(l.zone);

  std::vector<std::string> block{report.address};
  if (options.block_prefix > 0) {
    CK_ASSIGN_OR_RETURN(block, BlockAddresses(report.address, options.block_prefix, &report.block));
    report.block_size = static_cast<int>(block.size());
  }
  std::vector<std::string> labels;
  labels.reserve(block.size());
  for (const auto& ip : block) {
    CK_ASSIGN_OR_RETURN(std::string l, ReverseLabels(ip));
    labels.push_back(std::move(l));
  }
  CK_ASSIGN_OR_RETURN(std::string self_labels, ReverseLabels(address));

  // One A question per (zone, address); the address itself is among them.
  std::vector<DnsQuestion> questions;
  std::vector<std::pair<size_t, size_t>> index;  // (zone, block entry)
  for (size_t z = 0; z < zones.size(); ++z) {
    ZoneResult zr;
    zr.zone = zones[z];
    const DnsblInfo* info = FindDnsbl(zones[z]);
    if (info) {
      zr.name = info->name;
      zr.removal = info->removal;
    }
    zr.query = self_labels + "." + zones[z];
    // A built-in IPv4-only list is not asked about IPv6 addresses; a zone the
    // user names explicitly is always asked.
    if (builtin && v6 && info && !info->ipv6) zr.skipped = true;
    report.zones.push_back(std::move(zr));
    if (report.zones.back().skipped) continue;
    for (size_t b = 0; b < block.size(); ++b) {
      questions.push_back({labels[b] + "." + zones[z], RrType::kA});
      index.emplace_back(z, b);
    }
  }
  std::vector<DnsAnswer> answers = resolver.QueryMany(questions, options.concurrency);
  report.queries = questions.size();

  std::vector<DnsQuestion> txt_questions;
  std::vector<size_t> txt_zone;
  for (size_t q = 0; q < answers.size(); ++q) {
    auto [z, b] = index[q];
    ZoneResult& zr = report.zones[z];
    const DnsAnswer& a = answers[q];
    bool self = block[b] == report.address;
    bool listed = false;
    std::vector<std::string> meanings;
    bool unusable = false;
    if (a.ok()) {
      for (const auto& code : a.records) {
        std::string meaning;
        DnsblVerdict v = DecodeDnsblAnswer(zr.zone, code, &meaning);
        meanings.push_back(meaning);
        if (v == DnsblVerdict::kListed)
          listed = true;
        else
          unusable = true;
      }
      // A refusal code beside a listing code is still not trustworthy.
      if (unusable) listed = false;
    } else if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
      ++zr.block_errors;
    }
    if (listed) {
      ++zr.block_listed;
      zr.block_listed_addresses.push_back(block[b]);
    }
    if (!self) continue;
    zr.status = a.status;
    if (a.ok()) {
      zr.codes = a.records;
      zr.meanings = meanings;
    }
    zr.listed = listed;
    zr.unusable = unusable;
    if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout)
      zr.error = a.error.empty() ? DnsStatusName(a.status) : a.error;
    if (listed && options.fetch_txt) {
      txt_questions.push_back({zr.query, RrType::kTXT});
      txt_zone.push_back(z);
    }
  }
  if (!txt_questions.empty()) {
    auto txts = resolver.QueryMany(txt_questions, options.concurrency);
    for (size_t i = 0; i < txts.size(); ++i)
      if (txts[i].ok() && !txts[i].records.empty())
        report.zones[txt_zone[i]].txt = txts[i].records[0];
    report.queries += txt_questions.size();
  }
  return report;
}

Json RblReportToJson(const RblReport& r) {
  Json j = {{"address", r.address},
            {"listed", r.listed()},
            {"listed_zones", r.listed_count()},
            {"unusable_zones", r.unusable_count()},
            {"answered_zones", r.answered_count()},
            {"applicable_zones", r.applicable_count()},
            {"complete", r.complete()},
            {"verdict", r.listed()     ? "listed"
                        : r.complete() ? "not listed"
                                       : "unknown"},
            {"queries", r.queries}};
  if (r.block_prefix > 0) {
    j["block"] = r.block;
    j["block_size"] = r.block_size;
    j["block_listed_zones"] = r.block_listed_zones();
  }
  j["zones"] = Json::array();
  for (const auto& z : r.zones) {
    Json jz = {{"zone", z.zone}};
    if (!z.name.empty()) jz["name"] = z.name;
    jz["query"] = z.query;
    jz["listed"] = z.listed;
    jz["unusable"] = z.unusable;
    if (z.skipped) jz["skipped"] = "the list does not serve IPv6";
    jz["status"] = DnsStatusName(z.status);
    jz["codes"] = Json::array();
    for (size_t i = 0; i < z.codes.size(); ++i)
      jz["codes"].push_back(
          {{"code", z.codes[i]}, {"meaning", i < z.meanings.size() ? z.meanings[i] : ""}});
    if (!z.txt.empty()) jz["txt"] = z.txt;
    if (!z.error.empty()) jz["error"] = z.error;
    if (z.listed && !z.removal.empty()) jz["removal"] = z.removal;
    if (r.block_prefix > 0) {
      jz["block_listed"] = z.block_listed;
      jz["block_errors"] = z.block_errors;
      jz["block_listed_addresses"] = z.block_listed_addresses;
    }
    j["zones"].push_back(jz);
  }
  return j;
}

}  // namespace cloudkeep::mail
