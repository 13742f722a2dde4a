#include "mail/dns_wire.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace cloudkeep::mail {

namespace {

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U8(uint8_t* v) {
    if (pos_ + 1 > d_.size()) return false;
    *v = static_cast<uint8_t>(d_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v) {
    uint8_t a, b;
    if (!U8(&a) || !U8(&b)) return false;
    *v = static_cast<uint16_t>((a << 8) | b);
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t a, b;
    if (!U16(&a) || !U16(&b)) return false;
    *v = (static_cast<uint32_t>(a) << 16) | b;
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (n > d_.size() - pos_) return false;
    *out = d_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // An uncompressed domain name (libunbound decompresses rdata names).
  // Presentation escaping per RFC 1035 §5.1 keeps a label holding a dot
  // from being read back as two labels.
  bool Name(std::string* out) {
    out->clear();
    size_t total = 0;
    for (;;) {
      uint8_t len;
      if (!U8(&len)) return false;
      if (len == 0) break;
      if (len > 63) return false;  // compression pointers and extended labels are not valid here
      total += len + 1;
      if (total > 255) return false;
      std::string_view label;
      if (!Bytes(len, &label)) return false;
      if (!out->empty()) out->push_back('.');
      for (char ch : label) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == ' ') {
          out->push_back('\\');
          out->push_back(static_cast<char>(c));
        } else if (c < 0x21 || c > 0x7e) {
          *out += fmt::format("\\{:03d}", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
      }
    }
    // The root. push_back, not `*out = "."`: assigning a one-character literal
    // goes through basic_string::_M_replace, which GCC 12 at -O3 cannot bound
    // and reports as a memcpy of 2^63 bytes (-Wstringop-overflow, -Wrestrict;
    // GCC PR 105329).
    if (out->empty()) out->push_back('.');
    return true;
  }
  bool AtEnd() const { return pos_ == d_.size(); }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<std::string> RdataToText(RrType type, std::string_view rdata) {
  Reader r(rdata);
  std::string out;
  switch (type) {
    case RrType::kA: {
      if (rdata.size() != 4) return std::nullopt;
      char buf[INET_ADDRSTRLEN];
      if (!inet_ntop(AF_INET, rdata.data(), buf, sizeof buf)) return std::nullopt;
      return std::string(buf);
    }
    case RrType::kAAAA: {
      if (rdata.size() != 16) return std::nullopt;
      char buf[INET6_ADDRSTRLEN];
      if (!inet_ntop(AF_INET6, rdata.data(), buf, sizeof buf)) return std::nullopt;
      return std::string(buf);
    }
    case RrType::kNS:
    case RrType::kCNAME:
    case RrType::kPTR:
      if (!r.Name(&out)) return std::nullopt;
      break;
    case RrType::kMX: {
      uint16_t pref;
      std::string host;
      if (!r.U16(&pref) || !r.Name(&host)) return std::nullopt;
      out = fmt::format("{} {}", pref, host);
      break;
    }
    case RrType::kTXT: {
      // RFC 7208 §3.3: the strings are joined without anything between. A
      // record with no strings at all (rdlength 0) is legal on the wire and
      // is the empty text, not a malformed answer.
      while (!r.AtEnd()) {
        uint8_t len;
        std::string_view s;
        if (!r.U8(&len) || !r.Bytes(len, &s)) return std::nullopt;
        out.append(s);
      }
      break;
    }
    case RrType::kSOA: {
      std::string mname, rname;
      uint32_t v[5];
      if (!r.Name(&mname) || !r.Name(&rname)) return std::nullopt;
      for (auto& x : v)
        if (!r.U32(&x)) return std::nullopt;
      out = fmt::format("{} {} {} {} {} {} {}", mname, rname, v[0], v[1], v[2], v[3], v[4]);
      break;
    }
  }
  if (!r.AtEnd()) return std::nullopt;
  return out;
}

Result<std::string> ForwarderAddress(const std::string& server) {
  std::string addr = server;
  std::string port = "53";
  if (!server.empty() && server.front() == '[') {
    auto close = server.find(']');
    if (close == std::string::npos)
      return Status::Usage(fmt::format("bad resolver address '{}'", server));
    addr = server.substr(1, close - 1);
    std::string rest = server.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Status::Usage(fmt::format("bad resolver address '{}'", server));
      port = rest.substr(1);
    }
  } else if (std::count(server.begin(), server.end(), ':') == 1) {
    auto colon = server.find(':');
    addr = server.substr(0, colon);
    port = server.substr(colon + 1);
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) != 1 && inet_pton(AF_INET6, addr.c_str(), buf) != 1)
    return Status::Usage(
        fmt::format("resolver '{}' is not an IP address (ADDR or ADDR:PORT)", server));
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535)
    return Status::Usage(fmt::format("bad port in resolver '{}'", server));
  return addr + "@" + std::to_string(std::stoi(port));
}

}  // namespace cloudkeep::mail
