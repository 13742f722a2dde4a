// RFC 7208 §4.5, §4.6 and §12: recognising an SPF record and parsing it
// into terms. Any syntax error anywhere makes the whole record a permerror
// (§4.6), so the parser stops at the first bad term and names it.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>

#include "core/strings.h"
#include "mail/spf.h"
#include "mail/spf_chars.h"

namespace cloudkeep::mail {

namespace {

using spf_detail::IsAlnum;
using spf_detail::IsAlpha;
using spf_detail::IsDigit;

// toplabel of §7.1: not all-numeric, alphanumerics and inner hyphens.
bool IsTopLabel(const std::string& l) {
  if (l.empty()) return false;
  if (!IsAlnum(l.front()) || !IsAlnum(l.back())) return false;
  bool alpha = false, dash = false;
  for (char c : l) {
    if (IsAlpha(c))
      alpha = true;
    else if (c == '-')
      dash = true;
    else if (!IsDigit(c))
      return false;
  }
  return alpha || dash;
}

// CIDR length of §5.6: "0" or no leading zero, at most `max`.
bool ParseCidr(const std::string& s, int max, int* out) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s)
    if (!IsDigit(c)) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  int v = std::stoi(s);
  if (v > max) return false;
  *out = v;
  return true;
}

bool Printable(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  return true;
}

// macro-string syntax only (§7.1): every '%' starts a valid macro.
bool ValidMacroString(const std::string& s, bool exp) {
  MacroContext dummy;
  std::string ignored;
  return ExpandMacros(s, dummy, exp, &ignored);
}

// domain-spec = macro-string domain-end (§7.1). The domain-end is checked on
// the text as written: a toplabel, or a macro at the end.
bool ValidDomainSpec(const std::string& s) {
  if (s.empty() || !ValidMacroString(s, false) || !Printable(s)) return false;
  if (s.back() == '}') {
    auto open = s.rfind("%{");
    if (open != std::string::npos && (open == 0 || s[open - 1] != '%')) return true;
  }
  std::string t = s;
  if (t.back() == '.') t.pop_back();
  auto dot = t.rfind('.');
  if (dot == std::string::npos) return false;  // needs "." toplabel
  // A trailing macro-expand like %_ / %- / %% is not a domain-end.
  return IsTopLabel(t.substr(dot + 1));
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) (§12).
bool ValidModifierName(const std::string& n) {
  if (n.empty() || !IsAlpha(n[0])) return false;
  for (char c : n)
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// Why a term is bad, or "" when it is good.
using Why = std::string;

// modifier = redirect / explanation / unknown-modifier (§4.6.1, §6): `sep`
// is the position of the '='. redirect and exp are stored in the record.
Why ParseModifier(const std::string& term, size_t sep, SpfRecord* out) {
  std::string name = term.substr(0, sep);
  std::string value = term.substr(sep + 1);
  if (!ValidModifierName(name)) return "invalid modifier name";
  std::string lname = AsciiLower(name);
  if (lname == "redirect" || lname == "exp") {
    // §6: each at most once; their value is a domain-spec.
    auto& slot = lname == "redirect" ? out->redirect : out->exp;
    if (slot) return "repeated " + lname + " modifier";
    if (!ValidDomainSpec(value)) return "invalid domain-spec";
    slot = value;
    return "";
  }
  if (!ValidMacroString(value, false)) return "invalid macro-string";
  SpfTerm t;
  t.text = term;
  t.kind = SpfTerm::Kind::kModifier;
  t.name = lname;
  t.domain_spec = value;
  out->terms.push_back(t);
  return "";
}

// dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] (§5.6),
// as the whole of `c` ("/24", "//64", "/24//64").
bool ParseDualCidr(const std::string& c, SpfTerm* t) {
  if (c.rfind("//", 0) == 0) return ParseCidr(c.substr(2), 128, &t->cidr6);
  auto second = c.find("//", 1);
  if (second == std::string::npos) return ParseCidr(c.substr(1), 32, &t->cidr4);
  return ParseCidr(c.substr(1, second - 1), 32, &t->cidr4) &&
         ParseCidr(c.substr(second + 2), 128, &t->cidr6);
}

// Where a trailing "/" DIGITs starts in `s`, if it ends in one.
bool DigitsSuffix(const std::string& s, size_t* at) {
  size_t i = s.size();
  while (i > 0 && IsDigit(s[i - 1])) --i;
  if (i == s.size() || i == 0 || s[i - 1] != '/') return false;
  *at = i - 1;
  return true;
}

// The domain-spec of a or mx may itself hold '/' (a:foo:bar/baz.example.com):
// only a trailing "/N", "//N" or "/N//N" of digits is the cidr. Takes it off
// `r` into `t`.
Why TakeTrailingCidr(std::string* r, SpfTerm* t) {
  size_t at;
  if (!DigitsSuffix(*r, &at)) return "";
  bool v6 = at > 0 && (*r)[at - 1] == '/';
  std::string c = r->substr(at + 1);
  if (v6) --at;
  if (!ParseCidr(c, v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4)) return "invalid CIDR length";
  r->erase(at);
  if (v6 && DigitsSuffix(*r, &at) && !(at > 0 && (*r)[at - 1] == '/')) {
    if (!ParseCidr(r->substr(at + 1), 32, &t->cidr4)) return "invalid CIDR length";
    r->erase(at);
  }
  return "";
}

// a / mx / ptr (§5.3, §5.4, §5.5): [ ":" domain-spec ] [ dual-cidr-length ],
// no cidr for ptr.
Why ParseHostMechanism(const std::string& rest, SpfTerm* t) {
  if (rest.empty()) return "";
  if (rest[0] == ':') {
    std::string r = rest.substr(1);
    if (t->name != "ptr") {
      Why why = TakeTrailingCidr(&r, t);
      if (!why.empty()) return why;
    }
    if (!ValidDomainSpec(r)) return "invalid domain-spec";
    t->domain_spec = r;
    return "";
  }
  if (t->name == "ptr" || rest[0] != '/') return "unexpected text after " + t->name;
  if (!ParseDualCidr(rest, t)) return "invalid CIDR length";
  return "";
}

// ip4 / ip6 (§5.6): ":" address [ "/" cidr ].
Why ParseIpMechanism(const std::string& rest, SpfTerm* t) {
  if (rest.size() < 2 || rest[0] != ':') return t->name + " needs ':address'";
  std::string r = rest.substr(1);
  std::string c;
  auto slash = r.find('/');
  if (slash != std::string::npos) {
    c = r.substr(slash + 1);
    r.erase(slash);
  }
  bool v6 = t->name == "ip6";
  uint8_t buf[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, r.c_str(), buf) != 1) return "invalid address";
  t->network.v6 = v6;
  std::memcpy(t->network.bytes, buf, v6 ? 16 : 4);
  if (slash != std::string::npos && !ParseCidr(c, v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4))
    return "invalid CIDR length";
  return "";
}

// directive = [ qualifier ] mechanism (§4.6.1, §5).
Why ParseMechanism(const std::string& term, SpfTerm* t) {
  t->text = term;
  std::string body = term;
  if (!body.empty() && std::strchr("+-~?", body[0])) {
    t->qualifier = body[0];
    body.erase(0, 1);
  }
  size_t nend = body.find_first_of(":/");
  t->name = AsciiLower(body.substr(0, nend));
  std::string rest = nend == std::string::npos ? "" : body.substr(nend);
  const std::string& name = t->name;
  if (name == "all") return rest.empty() ? "" : "'all' takes no argument";
  if (name == "include" || name == "exists") {
    if (rest.size() < 2 || rest[0] != ':') return name + " needs ':domain'";
    t->domain_spec = rest.substr(1);
    return ValidDomainSpec(t->domain_spec) ? "" : "invalid domain-spec";
  }
  if (name == "a" || name == "mx" || name == "ptr") return ParseHostMechanism(rest, t);
  if (name == "ip4" || name == "ip6") return ParseIpMechanism(rest, t);
  return "unknown mechanism";
}

// One space-separated term, into `out`.
Why ParseTerm(const std::string& term, SpfRecord* out) {
  if (!Printable(term)) return "characters outside printable ASCII";
  size_t sep = term.find_first_of(":/=");
  if (sep != std::string::npos && term[sep] == '=') return ParseModifier(term, sep, out);
  SpfTerm t;
  Why why = ParseMechanism(term, &t);
  if (why.empty()) out->terms.push_back(t);
  return why;
}

}  // namespace

bool IsSpfRecord(const std::string& txt) {
  if (txt.size() < 6 || AsciiLower(txt.substr(0, 6)) != "v=spf1") return false;
  return txt.size() == 6 || txt[6] == ' ';
}

bool ParseSpfRecord(const std::string& text, SpfRecord* out, std::string* error) {
  *out = SpfRecord{};
  if (!IsSpfRecord(text)) {
    *error = "not an SPF record";
    return false;
  }
  for (const std::string& term : Split(std::string_view(text).substr(6), ' ')) {
    if (term.empty()) continue;  // terms are separated by one or more spaces
    Why why = ParseTerm(term, out);
    if (!why.empty()) {
      *error = fmt::format("'{}': {}", term, why);
      return false;
    }
  }
  return true;
}

}  // namespace cloudkeep::mail
