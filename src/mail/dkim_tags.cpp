#include "mail/dkim_tags.h"

#include <fmt/format.h>

#include <cctype>

namespace cloudkeep::mail {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsDkimFws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsDkimFws(s.back())) s.remove_suffix(1);
  return s;
}

bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// tag-name = ALPHA *ALNUMPUNC; ALNUMPUNC = ALPHA / DIGIT / "_"
bool ValidTagName(std::string_view n) {
  if (n.empty() || !IsAlpha(n[0])) return false;
  for (char c : n)
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') return false;
  return true;
}

// tag-value: VALCHAR (%x21-3A / %x3C-7E) separated by WSP or FWS. A CRLF
// must be followed by WSP, or the header field would have ended there.
bool ValidTagValue(std::string_view v) {
  for (size_t i = 0; i < v.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c == ' ' || c == '\t') continue;
    if (c == '\r') {
      if (i + 2 >= v.size() || v[i + 1] != '\n' || (v[i + 2] != ' ' && v[i + 2] != '\t'))
        return false;
      ++i;
      continue;
    }
    if (c == '\n') {
      // A bare LF fold (message read with Unix line endings) counts as CRLF.
      if (i + 1 >= v.size() || (v[i + 1] != ' ' && v[i + 1] != '\t')) return false;
      continue;
    }
    if (c < 0x21 || c == ';' || c > 0x7e) return false;
  }
  return true;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

Result<DkimTagList> ParseDkimTagList(std::string_view text) {
  DkimTagList out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t semi = text.find(';', pos);
    std::string_view spec =
        text.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    pos = semi == std::string_view::npos ? text.size() + 1 : semi + 1;
    std::string_view trimmed = Trim(spec);
    // The grammar allows one trailing ";"; empty specs elsewhere are tolerated
    // as dkimpy and OpenDKIM do, since they carry nothing.
    if (trimmed.empty()) continue;
    size_t eq = trimmed.find('=');
    if (eq == std::string_view::npos)
      return Status::Failure(
          fmt::format("tag-list: '{}' has no '='", std::string(trimmed.substr(0, 40))));
    std::string_view name = Trim(trimmed.substr(0, eq));
    std::string_view value = Trim(trimmed.substr(eq + 1));
    if (!ValidTagName(name))
      return Status::Failure(
          fmt::format("tag-list: bad tag name '{}'", std::string(name.substr(0, 40))));
    if (!ValidTagValue(value))
      return Status::Failure(
          fmt::format("tag-list: bad characters in the value of tag '{}'", std::string(name)));
    for (const auto& t : out)
      if (t.name == name)
        return Status::Failure(fmt::format("tag-list: duplicate tag '{}'", std::string(name)));
    out.push_back({std::string(name), std::string(value)});
  }
  return out;
}

const std::string* FindDkimTag(const DkimTagList& tags, std::string_view name) {
  for (const auto& t : tags)
    if (t.name == name) return &t.value;
  return nullptr;
}

Result<std::string> DecodeDkimBase64(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  int pad = 0;
  size_t chars = 0;
  for (char c : text) {
    if (IsDkimFws(c)) continue;
    if (c == '=') {
      ++pad;
      ++chars;
      continue;
    }
    int v = Base64Value(c);
    if (v < 0 || pad > 0) return Status::Failure("bad base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++chars;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (pad > 2 || chars % 4 != 0) return Status::Failure("bad base64 length");
  return out;
}

std::string EncodeBase64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::vector<std::string> SplitDkimList(std::string_view value) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t colon = value.find(':', pos);
    std::string_view part = Trim(
        value.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
    out.emplace_back(part);
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  return out;
}

}  // namespace cloudkeep::mail
