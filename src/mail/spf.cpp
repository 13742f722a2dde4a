// SPF's value types (RFC 7208 §2.6 results, client addresses) and domain
// names (§4.3, §7.3). The rest of the RFC is split by section:
// spf_macro.cpp (§7), spf_record.cpp (§4.5, §4.6, §12) and spf_check.cpp
// (check_host, §4, §5, §6).
#include "mail/spf.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/strings.h"
#include "mail/ptr_check.h"

namespace cloudkeep::mail {

const char* SpfResultName(SpfResult r) {
  switch (r) {
    case SpfResult::kNone:
      return "none";
    case SpfResult::kNeutral:
      return "neutral";
    case SpfResult::kPass:
      return "pass";
    case SpfResult::kFail:
      return "fail";
    case SpfResult::kSoftFail:
      return "softfail";
    case SpfResult::kTempError:
      return "temperror";
    case SpfResult::kPermError:
      return "permerror";
  }
  return "?";
}

std::optional<IpAddress> IpAddress::Parse(const std::string& text) {
  IpAddress a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) return a;
  uint8_t b[16];
  if (inet_pton(AF_INET6, text.c_str(), b) != 1) return std::nullopt;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMapped, 12) == 0) {
    std::memcpy(a.bytes, b + 12, 4);
    return a;
  }
  a.v6 = true;
  std::memcpy(a.bytes, b, 16);
  return a;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
  return buf;
}

bool IpAddress::InPrefix(const IpAddress& other, int bits) const {
  if (v6 != other.v6) return false;
  int full = bits / 8, rest = bits % 8;
  if (std::memcmp(bytes, other.bytes, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (other.bytes[full] & mask);
}

std::string IpAddress::ReverseName() const {
  return ReverseNameOf(bytes, v6);
}

bool IsValidDomain(const std::string& name_in) {
  std::string name = name_in;
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.size() > 253) return false;
  auto labels = Split(name, '.');
  if (labels.size() < 2) return false;
  for (const auto& l : labels)
    if (l.empty() || l.size() > 63) return false;
  return true;
}

std::string TruncateDomain(std::string name) {
  while (name.size() > 253) {
    auto dot = name.find('.');
    if (dot == std::string::npos) break;
    name.erase(0, dot + 1);
  }
  return name;
}

}  // namespace cloudkeep::mail
