// RFC 7208 §7: the macro language of domain-specs and explanations.
// ExpandMacros walks the string; each %{...} is a letter (§7.3), optional
// transformers (digits, "r") and delimiters (§7.1), and an upper-case letter
// URL-escapes its value (§7.3).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>

#include "mail/spf.h"
#include "mail/spf_chars.h"

namespace cloudkeep::mail {

namespace {

using spf_detail::IsAlnum;
using spf_detail::IsDigit;

// §7.3: upper-case macro letters are URL-escaped, unreserved characters kept.
std::string UrlEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (IsAlnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// §7.3: %{i} of an IPv6 address is its 32 nibbles, dot-separated, upper-case
// as in the §7.4 examples.
std::string IpNibbles(const IpAddress& ip) {
  static const char* kHex = "0123456789ABCDEF";
  std::string value;
  for (int b = 0; b < 16; ++b) {
    if (b) value.push_back('.');
    value.push_back(kHex[ip.bytes[b] >> 4]);
    value.push_back('.');
    value.push_back(kHex[ip.bytes[b] & 0xf]);
  }
  return value;
}

// §7.2/§7.3: the value of one macro letter (lower-cased); nullopt for an
// unknown letter or for c, r, t outside an explanation (`exp`).
std::optional<std::string> LetterValue(char l, const MacroContext& ctx, bool exp) {
  switch (l) {
    case 's':
      return ctx.sender;
    case 'l':
      return ctx.local;
    case 'o':
      return ctx.sender_domain;
    case 'd':
      return ctx.domain;
    case 'h':
      return ctx.helo;
    case 'v':
      return std::string(ctx.ip.v6 ? "ip6" : "in-addr");
    case 'p':
      return ctx.ptr ? ctx.ptr() : ctx.validated_ptr;
    case 'i':
      return ctx.ip.v6 ? IpNibbles(ctx.ip) : ctx.ip.ToString();
    case 'c':
      if (exp) return ctx.ip.ToString();
      return std::nullopt;
    case 'r':
      if (exp) return ctx.receiving_host;
      return std::nullopt;
    case 't':
      if (exp) return std::to_string(ctx.now);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

// §7.1: transformers = *DIGIT [ "r" ], then delimiters. `spec` is what
// follows the letter. Splits `value` on the delimiters, reverses and keeps
// the right-most parts as asked, and joins with dots. False on bad syntax.
bool Transform(std::string_view spec, std::string* value) {
  size_t p = 0;
  while (p < spec.size() && IsDigit(spec[p])) ++p;
  int keep = -1;
  if (p > 0) {
    if (p > 3) return false;
    keep = std::stoi(std::string(spec.substr(0, p)));
    if (keep == 0) return false;
  }
  bool reverse = false;
  if (p < spec.size() && (spec[p] == 'r' || spec[p] == 'R')) {
    reverse = true;
    ++p;
  }
  std::string_view delims = spec.substr(p);
  for (char d : delims)
    if (std::strchr(".-+,/_=", d) == nullptr) return false;
  if (delims.empty()) delims = ".";
  if (keep < 0 && !reverse && delims == ".") return true;
  std::vector<std::string> parts(1);
  for (char ch : *value) {
    if (delims.find(ch) != std::string::npos)
      parts.emplace_back();
    else
      parts.back().push_back(ch);
  }
  if (reverse) std::reverse(parts.begin(), parts.end());
  if (keep >= 0 && static_cast<size_t>(keep) < parts.size())
    parts.erase(parts.begin(), parts.end() - keep);
  value->clear();
  for (size_t k = 0; k < parts.size(); ++k) *value += (k ? "." : "") + parts[k];
  return true;
}

// One %{...} body (without the braces), appended to `out`.
bool ExpandMacro(std::string_view body, const MacroContext& ctx, bool exp, std::string* out) {
  if (body.empty()) return false;
  char letter = body[0];
  bool upper = letter >= 'A' && letter <= 'Z';
  char l = upper ? static_cast<char>(letter - 'A' + 'a') : letter;
  std::optional<std::string> value = LetterValue(l, ctx, exp);
  if (!value || !Transform(body.substr(1), &*value)) return false;
  out->append(upper ? UrlEscape(*value) : *value);
  return true;
}

}  // namespace

bool ExpandMacros(const std::string& in, const MacroContext& ctx, bool exp, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    // macro-expand = ( "%{" ... "}" ) / "%%" / "%_" / "%-" (§7.1)
    if (++i >= in.size()) return false;
    char n = in[i];
    if (n == '%' || n == '_' || n == '-') {
      out->append(n == '%' ? "%" : n == '_' ? " " : "%20");
      continue;
    }
    if (n != '{') return false;
    auto close = in.find('}', i);
    if (close == std::string::npos) return false;
    if (!ExpandMacro(std::string_view(in).substr(i + 1, close - i - 1), ctx, exp, out))
      return false;
    i = close;
  }
  return true;
}

}  // namespace cloudkeep::mail
