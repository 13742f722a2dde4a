#include "mail/ptr_check.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <strings.h>

#include <cstring>

namespace cloudkeep::mail {

bool IsIpv6(const std::string& text) {
  in6_addr a;
  return inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

bool IsIpAddress(const std::string& text) {
  in_addr a;
  return inet_pton(AF_INET, text.c_str(), &a) == 1 || IsIpv6(text);
}

std::string ReverseLabelsOf(const uint8_t* bytes, bool v6) {
  if (!v6) return fmt::format("{}.{}.{}.{}", bytes[3], bytes[2], bytes[1], bytes[0]);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 15; i >= 0; --i) {
    out += kHex[bytes[i] & 0xf];
    out += '.';
    out += kHex[bytes[i] >> 4];
    if (i > 0) out += '.';
  }
  return out;
}

std::string ReverseNameOf(const uint8_t* bytes, bool v6) {
  return ReverseLabelsOf(bytes, v6) + (v6 ? ".ip6.arpa" : ".in-addr.arpa");
}

Result<std::string> ReverseLabels(const std::string& ip) {
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1)
    return ReverseLabelsOf(reinterpret_cast<const uint8_t*>(&a4), false);
  if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) return ReverseLabelsOf(a6.s6_addr, true);
  return Status::Usage(fmt::format("'{}' is not an IP address", ip));
}

Result<std::string> ReverseName(const std::string& ip) {
  CK_ASSIGN_OR_RETURN(std::string labels, ReverseLabels(ip));
  return labels + (IsIpv6(ip) ? ".ip6.arpa" : ".in-addr.arpa");
}

bool SameAddress(const std::string& a, const std::string& b) {
  in6_addr x6, y6;
  in_addr x4, y4;
  if (inet_pton(AF_INET, a.c_str(), &x4) == 1 && inet_pton(AF_INET, b.c_str(), &y4) == 1)
    return x4.s_addr == y4.s_addr;
  if (inet_pton(AF_INET6, a.c_str(), &x6) == 1 && inet_pton(AF_INET6, b.c_str(), &y6) == 1)
    return std::memcmp(&x6, &y6, sizeof x6) == 0;
  return false;
}

bool SameHostname(const std::string& a, const std::string& b) {
  auto strip = [](std::string s) {
    while (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  std::string x = strip(a), y = strip(b);
  return !x.empty() && x.size() == y.size() && strcasecmp(x.c_str(), y.c_str()) == 0;
}

bool PtrReport::ok() const {
  if (!error.empty() || addresses.empty()) return false;
  for (const auto& a : addresses)
    if (!a.fcrdns || (!host.empty() && !a.matches_host)) return false;
  return true;
}

bool PtrReport::incomplete() const {
  if (lookup_failed) return true;
  for (const auto& a : addresses) {
    if (!a.error.empty()) return true;
    if (!a.fcrdns)
      for (const auto& n : a.names)
        if (n.forward_status == DnsStatus::kServFail || n.forward_status == DnsStatus::kTimeout)
          return true;
  }
  return false;
}

PtrReport CheckPtr(Resolver& resolver, const std::string& host,
                   std::vector<std::string> addresses) {
  PtrReport r;
  r.host = host;
  if (addresses.empty()) {
    for (RrType t : {RrType::kA, RrType::kAAAA}) {
      DnsAnswer a = resolver.Query(host, t);
      if (a.ok()) addresses.insert(addresses.end(), a.records.begin(), a.records.end());
      if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
        r.error =
            fmt::format("{} {} lookup failed: {}", host, RrTypeName(t), DnsStatusName(a.status));
        r.lookup_failed = true;
      }
    }
    if (addresses.empty() && r.error.empty())
      r.error = fmt::format("{} has no A or AAAA record", host);
  }
  for (const auto& ip : addresses) {
    PtrAddress pa;
    pa.address = ip;
    auto rev = ReverseName(ip);
    if (!rev.ok()) {
      pa.error = rev.status().message();
      r.addresses.push_back(pa);
      continue;
    }
    DnsAnswer ptr = resolver.Query(*rev, RrType::kPTR);
    pa.ptr_status = ptr.status;
    if (ptr.status == DnsStatus::kServFail || ptr.status == DnsStatus::kTimeout)
      pa.error = fmt::format("PTR {}: {}", *rev, DnsStatusName(ptr.status));
    for (const auto& name : ptr.records) {
      PtrName pn;
      pn.name = name;
      while (!pn.name.empty() && pn.name.back() == '.') pn.name.pop_back();
      DnsAnswer fwd = resolver.Query(pn.name, IsIpv6(ip) ? RrType::kAAAA : RrType::kA);
      pn.forward_status = fwd.status;
      pn.forward = fwd.records;
      for (const auto& f : fwd.records) pn.confirmed = pn.confirmed || SameAddress(f, ip);
      pn.matches_host = !host.empty() && SameHostname(pn.name, host);
      pa.fcrdns = pa.fcrdns || pn.confirmed;
      pa.matches_host = pa.matches_host || (pn.confirmed && pn.matches_host);
      pa.names.push_back(std::move(pn));
    }
    r.addresses.push_back(std::move(pa));
  }
  return r;
}

Json PtrReportToJson(const PtrReport& r) {
  Json j = {{"host", r.host},
            {"ok", r.ok()},
            {"complete", !r.incomplete()},
            {"verdict", r.ok()           ? "ok"
                        : r.incomplete() ? "unknown"
                                         : "not ok"},
            {"addresses", Json::array()}};
  for (const auto& a : r.addresses) {
    Json ja = {{"address", a.address},
               {"ptr_status", DnsStatusName(a.ptr_status)},
               {"fcrdns", a.fcrdns},
               {"matches_host", a.matches_host},
               {"names", Json::array()}};
    for (const auto& n : a.names)
      ja["names"].push_back({{"name", n.name},
                             {"forward", n.forward},
                             {"forward_status", DnsStatusName(n.forward_status)},
                             {"resolves_back", n.confirmed},
                             {"matches_host", n.matches_host}});
    if (!a.error.empty()) ja["error"] = a.error;
    j["addresses"].push_back(ja);
  }
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace cloudkeep::mail
