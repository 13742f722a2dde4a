#include "mail/spf.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace cloudkeep::mail {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsAlpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAlnum(char c) {
  return IsAlpha(c) || IsDigit(c);
}

std::vector<std::string> SplitLabels(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    out.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

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

// macro-string syntax only (§7.1): every '%' starts a valid macro.
bool ValidMacroString(const std::string& s, bool exp) {
  MacroContext dummy;
  std::string ignored;
  return ExpandMacros(s, dummy, exp, &ignored);
}

// domain-spec = macro-string domain-end (§7.1). The domain-end is checked on
// the text as written: a toplabel, or a macro at the end.
bool ValidDomainSpec(const std::string& s) {
  if (s.empty() || !ValidMacroString(s, false)) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  if (s.back() == '}') {
    auto open = s.rfind("%{");
    if (open != std::string::npos && (open == 0 || s[open - 1] != '%')) return true;
  }
  std::string t = s;
  if (t.back() == '.') t.pop_back();
  auto dot = t.rfind('.');
  if (dot == std::string::npos) return false;  // needs "." toplabel
  std::string top = t.substr(dot + 1);
  // A trailing macro-expand like %_ / %- / %% is not a domain-end.
  return IsTopLabel(top);
}

bool ValidModifierName(const std::string& n) {
  if (n.empty() || !IsAlpha(n[0])) return false;
  for (char c : n)
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

std::string UrlEscape(const std::string& s) {
  // §7.3: uppercase macro letters are URL-escaped, unreserved chars kept.
  std::string out;
  for (unsigned char c : s) {
    if (IsAlnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

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
  std::string out;
  if (!v6) return fmt::format("{}.{}.{}.{}.in-addr.arpa", bytes[3], bytes[2], bytes[1], bytes[0]);
  static const char* kHex = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out.push_back(kHex[bytes[i] & 0xf]);
    out.push_back('.');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back('.');
  }
  return out + "ip6.arpa";
}

bool IsValidDomain(const std::string& name_in) {
  std::string name = name_in;
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.size() > 253) return false;
  auto labels = SplitLabels(name);
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

bool IsSpfRecord(const std::string& txt) {
  if (txt.size() < 6 || Lower(txt.substr(0, 6)) != "v=spf1") return false;
  return txt.size() == 6 || txt[6] == ' ';
}

bool ExpandMacros(const std::string& in, const MacroContext& ctx, bool exp, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    if (++i >= in.size()) return false;
    char n = in[i];
    if (n == '%') {
      out->push_back('%');
      continue;
    }
    if (n == '_') {
      out->push_back(' ');
      continue;
    }
    if (n == '-') {
      out->append("%20");
      continue;
    }
    if (n != '{') return false;
    auto close = in.find('}', i);
    if (close == std::string::npos) return false;
    std::string body = in.substr(i + 1, close - i - 1);
    i = close;
    if (body.empty()) return false;
    char letter = body[0];
    bool upper = std::isupper(static_cast<unsigned char>(letter)) != 0;
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(letter)));
    std::string value;
    switch (l) {
      case 's':
        value = ctx.sender;
        break;
      case 'l':
        value = ctx.local;
        break;
      case 'o':
        value = ctx.sender_domain;
        break;
      case 'd':
        value = ctx.domain;
        break;
      case 'h':
        value = ctx.helo;
        break;
      case 'v':
        value = ctx.ip.v6 ? "ip6" : "in-addr";
        break;
      case 'p':
        value = ctx.ptr ? ctx.ptr() : ctx.validated_ptr;
        break;
      case 'i': {
        if (!ctx.ip.v6) {
          value = ctx.ip.ToString();
        } else {
          // §7.3: IPv6 as dot-separated nibbles, upper-case as in the §7.4 examples.
          static const char* kHex = "0123456789ABCDEF";
          for (int b = 0; b < 16; ++b) {
            if (b) value.push_back('.');
            value.push_back(kHex[ctx.ip.bytes[b] >> 4]);
            value.push_back('.');
            value.push_back(kHex[ctx.ip.bytes[b] & 0xf]);
          }
        }
        break;
      }
      case 'c':
        if (!exp) return false;
        value = ctx.ip.ToString();
        break;
      case 'r':
        if (!exp) return false;
        value = ctx.receiving_host;
        break;
      case 't':
        if (!exp) return false;
        value = std::to_string(ctx.now);
        break;
      default:
        return false;
    }
    // transformers = *DIGIT [ "r" ], then delimiters (§7.1).
    size_t p = 1;
    size_t digits_start = p;
    while (p < body.size() && IsDigit(body[p])) ++p;
    int keep = -1;
    if (p > digits_start) {
      std::string d = body.substr(digits_start, p - digits_start);
      if (d.size() > 3) return false;
      keep = std::stoi(d);
      if (keep == 0) return false;
    }
    bool reverse = false;
    if (p < body.size() && (body[p] == 'r' || body[p] == 'R')) {
      reverse = true;
      ++p;
    }
    std::string delims;
    for (; p < body.size(); ++p) {
      if (std::strchr(".-+,/_=", body[p]) == nullptr) return false;
      delims.push_back(body[p]);
    }
    if (delims.empty()) delims = ".";
    if (keep >= 0 || reverse || delims != ".") {
      std::vector<std::string> parts;
      std::string cur;
      for (char ch : value) {
        if (delims.find(ch) != std::string::npos) {
          parts.push_back(cur);
          cur.clear();
        } else {
          cur.push_back(ch);
        }
      }
      parts.push_back(cur);
      if (reverse) std::reverse(parts.begin(), parts.end());
      if (keep >= 0 && static_cast<size_t>(keep) < parts.size())
        parts.erase(parts.begin(), parts.end() - keep);
      value.clear();
      for (size_t k = 0; k < parts.size(); ++k) value += (k ? "." : "") + parts[k];
    }
    out->append(upper ? UrlEscape(value) : value);
  }
  return true;
}

bool ParseSpfRecord(const std::string& text, SpfRecord* out, std::string* error) {
  *out = SpfRecord{};
  if (!IsSpfRecord(text)) {
    *error = "not an SPF record";
    return false;
  }
  size_t pos = 6;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = text.find(' ', pos);
    std::string term = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? text.size() : end;
    auto bad = [&](const std::string& why) {
      *error = fmt::format("'{}': {}", term, why);
      return false;
    };
    for (char c : term)
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
        return bad("characters outside printable ASCII");
    SpfTerm t;
    t.text = term;
    size_t sep = term.find_first_of(":/=");
    if (sep != std::string::npos && term[sep] == '=') {
      // modifier = name "=" macro-string (§6, §4.6.1)
      std::string name = term.substr(0, sep);
      std::string value = term.substr(sep + 1);
      if (!ValidModifierName(name)) return bad("invalid modifier name");
      std::string lname = Lower(name);
      if (lname == "redirect" || lname == "exp") {
        // §6: each at most once; their value is a domain-spec.
        auto& slot = lname == "redirect" ? out->redirect : out->exp;
        if (slot) return bad("repeated " + lname + " modifier");
        if (!ValidDomainSpec(value)) return bad("invalid domain-spec");
        slot = value;
        continue;
      }
      if (!ValidMacroString(value, false)) return bad("invalid macro-string");
      t.kind = SpfTerm::Kind::kModifier;
      t.name = lname;
      t.domain_spec = value;
      out->terms.push_back(t);
      continue;
    }
    std::string body = term;
    if (!body.empty() && std::strchr("+-~?", body[0])) {
      t.qualifier = body[0];
      body.erase(0, 1);
    }
    size_t nend = body.find_first_of(":/");
    std::string name = Lower(body.substr(0, nend));
    std::string rest = nend == std::string::npos ? "" : body.substr(nend);
    t.name = name;
    auto parse_dual_cidr = [&](std::string* r) {
      // dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
      auto slash = r->find('/');
      if (slash == std::string::npos) return true;
      std::string c = r->substr(slash);
      r->erase(slash);
      if (c.rfind("//", 0) == 0) return ParseCidr(c.substr(2), 128, &t.cidr6);
      auto second = c.find("//", 1);
      if (second == std::string::npos) return ParseCidr(c.substr(1), 32, &t.cidr4);
      return ParseCidr(c.substr(1, second - 1), 32, &t.cidr4) &&
             ParseCidr(c.substr(second + 2), 128, &t.cidr6);
    };
    if (name == "all") {
      if (!rest.empty()) return bad("'all' takes no argument");
    } else if (name == "include" || name == "exists") {
      if (rest.size() < 2 || rest[0] != ':') return bad(name + " needs ':domain'");
      t.domain_spec = rest.substr(1);
      if (!ValidDomainSpec(t.domain_spec)) return bad("invalid domain-spec");
    } else if (name == "a" || name == "mx" || name == "ptr") {
      if (!rest.empty() && rest[0] == ':') {
        // The domain-spec may hold '/' inside macros only; the cidr is the
        // trailing "/N" or "//N".
        std::string r = rest.substr(1);
        if (name != "ptr") {
          // The domain-spec may itself hold '/' (a:foo:bar/baz.example.com):
          // only a trailing "/N", "//N" or "/N//N" of digits is the cidr.
          auto digits_suffix = [](const std::string& s, size_t* at) {
            size_t i = s.size();
            while (i > 0 && IsDigit(s[i - 1])) --i;
            if (i == s.size() || i == 0 || s[i - 1] != '/') return false;
            *at = i - 1;
            return true;
          };
          size_t at;
          if (digits_suffix(r, &at)) {
            bool v6 = at > 0 && r[at - 1] == '/';
            std::string c = r.substr(at + 1);
            if (v6) --at;
            if (!ParseCidr(c, v6 ? 128 : 32, v6 ? &t.cidr6 : &t.cidr4))
              return bad("invalid CIDR length");
            r.erase(at);
            if (v6 && digits_suffix(r, &at) && !(at > 0 && r[at - 1] == '/')) {
              if (!ParseCidr(r.substr(at + 1), 32, &t.cidr4)) return bad("invalid CIDR length");
              r.erase(at);
            }
          }
        }
        if (!ValidDomainSpec(r)) return bad("invalid domain-spec");
        t.domain_spec = r;
      } else if (!rest.empty()) {
        if (name == "ptr" || rest[0] != '/') return bad("unexpected text after " + name);
        std::string c = rest;
        if (!parse_dual_cidr(&c) || !c.empty()) return bad("invalid CIDR length");
      }
    } else if (name == "ip4" || name == "ip6") {
      if (rest.size() < 2 || rest[0] != ':') return bad(name + " needs ':address'");
      std::string r = rest.substr(1);
      std::string c;
      auto slash = r.find('/');
      if (slash != std::string::npos) {
        c = r.substr(slash + 1);
        r.erase(slash);
      }
      bool v6 = name == "ip6";
      uint8_t buf[16];
      if (inet_pton(v6 ? AF_INET6 : AF_INET, r.c_str(), buf) != 1) return bad("invalid address");
      t.network.v6 = v6;
      std::memcpy(t.network.bytes, buf, v6 ? 16 : 4);
      if (slash != std::string::npos && !ParseCidr(c, v6 ? 128 : 32, v6 ? &t.cidr6 : &t.cidr4))
        return bad("invalid CIDR length");
    } else {
      return bad("unknown mechanism");
    }
    out->terms.push_back(t);
  }
  return true;
}

// One check_host() evaluation with the counters it shares across include
// and redirect (§4.6.4 counts per top-level evaluation).
class SpfRun {
 public:
  SpfRun(Resolver& r, const SpfOptions& o, const IpAddress& ip, std::string sender,
         std::string helo)
      : resolver_(r), options_(o), ip_(ip), helo_(std::move(helo)) {
    auto at = sender.rfind('@');
    local_ = at == std::string::npos ? "" : sender.substr(0, at);
    sender_domain_ = at == std::string::npos ? sender : sender.substr(at + 1);
    // §4.3: without a local-part the sender is postmaster@domain.
    if (local_.empty()) local_ = "postmaster";
    sender_ = local_ + "@" + sender_domain_;
  }

  SpfOutcome Run(const std::string& domain, int depth) {
    SpfOutcome o;
    o.domain = domain;
    auto finish = [&](SpfOutcome x) {
      x.dns_lookups = lookups_;
      x.void_lookups = voids_;
      return x;
    };
    // §4.3: a malformed domain is "none".
    if (!IsValidDomain(domain)) {
      o.result = SpfResult::kNone;
      o.problem = fmt::format("'{}' is not a valid domain name", domain);
      return finish(o);
    }
    DnsAnswer txt = resolver_.Query(domain, RrType::kTXT);
    if (txt.status == DnsStatus::kServFail || txt.status == DnsStatus::kTimeout) {
      o.result = SpfResult::kTempError;
      o.problem = fmt::format("DNS error looking up TXT {}: {}", domain,
                              txt.error.empty() ? DnsStatusName(txt.status) : txt.error);
      return finish(o);
    }
    std::vector<std::string> records;
    for (const auto& r : txt.records)
      if (IsSpfRecord(r)) records.push_back(r);
    if (records.empty()) {
      o.result = SpfResult::kNone;
      o.problem = fmt::format("no SPF record at {}", domain);
      return finish(o);
    }
    if (records.size() > 1) {
      o.result = SpfResult::kPermError;
      o.problem = fmt::format("{} SPF records at {} (§4.5 allows one)", records.size(), domain);
      return finish(o);
    }
    o.record = records[0];
    SpfRecord rec;
    std::string err;
    if (!ParseSpfRecord(records[0], &rec, &err)) {
      o.result = SpfResult::kPermError;
      o.problem = fmt::format("syntax error in the SPF record of {}: {}", domain, err);
      return finish(o);
    }
    bool has_all = false;
    for (const auto& t : rec.terms) {
      if (t.kind == SpfTerm::Kind::kModifier) continue;
      if (t.name == "all") has_all = true;
      Match m = Evaluate(t, domain, depth);
      if (m.result) {  // an error ends the evaluation
        o.result = *m.result;
        o.mechanism = t.text;
        o.problem = m.problem;
        return finish(o);
      }
      if (!m.matched) continue;
      o.mechanism = t.text;
      switch (t.qualifier) {
        case '-':
          o.result = SpfResult::kFail;
          break;
        case '~':
          o.result = SpfResult::kSoftFail;
          break;
        case '?':
          o.result = SpfResult::kNeutral;
          break;
        default:
          o.result = SpfResult::kPass;
          break;
      }
      if (o.result == SpfResult::kFail) o.explanation = Explain(rec, domain);
      return finish(o);
    }
    // §6.1: redirect applies only when no mechanism matched and there is no "all".
    if (rec.redirect && !has_all) {
      if (!Count(&o)) return finish(o);
      std::string target;
      if (!Expand(*rec.redirect, domain, &target)) {
        o.result = SpfResult::kPermError;
        o.problem = "bad macro in redirect";
        return finish(o);
      }
      SpfOutcome r = Run(target, depth + 1);
      if (r.result == SpfResult::kNone) {
        r.result = SpfResult::kPermError;
        r.problem = fmt::format("redirect target {} has no SPF record", target);
      }
      if (r.mechanism.empty()) r.mechanism = "redirect=" + *rec.redirect;
      return finish(r);
    }
    o.result = SpfResult::kNeutral;  // §4.7: the default
    o.mechanism = "default";
    return finish(o);
  }

 private:
  struct Match {
    bool matched = false;
    std::optional<SpfResult> result;  // temperror / permerror
    std::string problem;
  };

  MacroContext Ctx(const std::string& domain) {
    MacroContext c;
    c.sender = sender_;
    c.local = local_;
    c.sender_domain = sender_domain_;
    c.domain = domain;
    c.helo = helo_;
    c.ip = ip_;
    c.receiving_host = options_.receiving_host;
    c.now = options_.now ? options_.now : std::time(nullptr);
    c.ptr = [this, domain] { return ValidatedPtr(""); };
    return c;
  }

  bool Expand(const std::string& spec, const std::string& domain, std::string* out) {
    if (!ExpandMacros(spec, Ctx(domain), false, out)) return false;
    if (!out->empty() && out->back() == '.') out->pop_back();
    *out = TruncateDomain(*out);
    return true;
  }

  // §4.6.4: each DNS-querying term counts; past the limit, permerror.
  bool Count(SpfOutcome* o) {
    if (++lookups_ > options_.max_dns_terms) {
      o->result = SpfResult::kPermError;
      o->problem =
          fmt::format("more than {} DNS-querying terms (RFC 7208 §4.6.4)", options_.max_dns_terms);
      return false;
    }
    return true;
  }
  bool CountMatch(Match* m) {
    SpfOutcome o;
    if (Count(&o)) return true;
    m->result = o.result;
    m->problem = o.problem;
    return false;
  }
  // §4.6.4: more than two void lookups is a permerror.
  bool CountVoid(const DnsAnswer& a, Match* m) {
    if (!a.empty()) return true;
    if (++voids_ > options_.max_void_lookups) {
      m->result = SpfResult::kPermError;
      m->problem =
          fmt::format("more than {} void DNS lookups (RFC 7208 §4.6.4)", options_.max_void_lookups);
      return false;
    }
    return true;
  }
  static bool DnsError(const DnsAnswer& a) {
    return a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout;
  }
  Match TempError(const std::string& what, const DnsAnswer& a) {
    Match m;
    m.result = SpfResult::kTempError;
    m.problem = fmt::format("DNS error for {}: {}", what,
                            a.error.empty() ? DnsStatusName(a.status) : a.error);
    return m;
  }

  // Whether any address of `name` is the client's within the cidr.
  // Returns the answer status for errors.
  Match MatchAddresses(const std::string& name, int cidr4, int cidr6, bool count_void) {
    Match m;
    DnsAnswer a = resolver_.Query(name, ip_.v6 ? RrType::kAAAA : RrType::kA);
    if (DnsError(a)) return TempError(name, a);
    if (count_void && !CountVoid(a, &m)) return m;
    for (const auto& r : a.records) {
      auto addr = IpAddress::Parse(r);
      if (addr && ip_.InPrefix(*addr, ip_.v6 ? cidr6 : cidr4)) m.matched = true;
    }
    return m;
  }

  // §5.5: names from the PTR of the client whose addresses include it; those
  // equal to or under `target` first (for the p macro any will do).
  std::string ValidatedPtr(const std::string& target) {
    DnsAnswer ptr = resolver_.Query(ip_.ReverseName(), RrType::kPTR);
    if (!ptr.ok()) return target.empty() ? "unknown" : "";
    std::string any;
    int n = 0;
    for (const auto& name : ptr.records) {
      if (++n > options_.max_mx_ptr_names) break;  // §4.6.4: extra names ignored
      DnsAnswer a = resolver_.Query(name, ip_.v6 ? RrType::kAAAA : RrType::kA);
      if (!a.ok()) continue;
      bool valid = false;
      for (const auto& r : a.records) {
        auto addr = IpAddress::Parse(r);
        if (addr && addr->v6 == ip_.v6 && std::memcmp(addr->bytes, ip_.bytes, ip_.v6 ? 16 : 4) == 0)
          valid = true;
      }
      if (!valid) continue;
      std::string ln = Lower(name), lt = Lower(target);
      if (!target.empty() && (ln == lt || (ln.size() > lt.size() &&
                                           ln.compare(ln.size() - lt.size(), lt.size(), lt) == 0 &&
                                           ln[ln.size() - lt.size() - 1] == '.')))
        return name;
      if (target.empty()) {
        // %{p}: prefer a name under the current domain? Any validated name.
        return name;
      }
      if (any.empty()) any = name;
    }
    return target.empty() ? "unknown" : "";
  }

  Match Evaluate(const SpfTerm& t, const std::string& domain, int depth) {
    Match m;
    if (t.name == "all") {
      m.matched = true;
      return m;
    }
    if (t.name == "ip4" || t.name == "ip6") {
      m.matched = ip_.InPrefix(t.network, t.name == "ip6" ? t.cidr6 : t.cidr4);
      return m;
    }
    if (!CountMatch(&m)) return m;
    std::string target = domain;
    if (!t.domain_spec.empty() && !Expand(t.domain_spec, domain, &target)) {
      m.result = SpfResult::kPermError;
      m.problem = "bad macro";
      return m;
    }
    if (t.name == "include") {
      if (depth > 20) {
        m.result = SpfResult::kPermError;
        m.problem = "include loop";
        return m;
      }
      SpfOutcome inner = Run(target, depth + 1);
      switch (inner.result) {
        case SpfResult::kPass:
          m.matched = true;
          break;
        case SpfResult::kFail:
        case SpfResult::kSoftFail:
        case SpfResult::kNeutral:
          break;
        case SpfResult::kTempError:
          m.result = SpfResult::kTempError;
          m.problem = inner.problem;
          break;
        case SpfResult::kPermError:
          m.result = SpfResult::kPermError;
          m.problem = inner.problem;
          break;
        case SpfResult::kNone:  // §5.2: include of a domain without SPF is a permerror
          m.result = SpfResult::kPermError;
          m.problem = fmt::format("included domain {} has no SPF record", target);
          break;
      }
      return m;
    }
    if (t.name == "a") {
      if (!IsValidDomain(target)) return m;
      return MatchAddresses(target, t.cidr4, t.cidr6, true);
    }
    if (t.name == "mx") {
      if (!IsValidDomain(target)) return m;
      DnsAnswer mx = resolver_.Query(target, RrType::kMX);
      if (DnsError(mx)) return TempError(target, mx);
      if (!CountVoid(mx, &m)) return m;
      std::vector<std::string> hosts;
      for (const auto& r : mx.records) {
        auto sp = r.find(' ');
        std::string host = sp == std::string::npos ? r : r.substr(sp + 1);
        if (host == "." || host.empty()) continue;  // RFC 7505 null MX
        hosts.push_back(host);
      }
      if (static_cast<int>(hosts.size()) > options_.max_mx_ptr_names) {
        m.result = SpfResult::kPermError;
        m.problem = fmt::format("{} has more than {} MX names (RFC 7208 §4.6.4)", target,
                                options_.max_mx_ptr_names);
        return m;
      }
      for (const auto& h : hosts) {
        Match a = MatchAddresses(h, t.cidr4, t.cidr6, false);
        if (a.result) return a;
        if (a.matched) return a;
      }
      return m;
    }
    if (t.name == "ptr") {
      DnsAnswer ptr = resolver_.Query(ip_.ReverseName(), RrType::kPTR);
      if (!CountVoid(ptr, &m)) return m;
      m.matched = !ValidatedPtr(target).empty();
      return m;
    }
    if (t.name == "exists") {
      if (!IsValidDomain(target)) return m;
      // §5.7: always an A query, whatever the client's address family.
      DnsAnswer a = resolver_.Query(target, RrType::kA);
      if (DnsError(a)) return TempError(target, a);
      if (!CountVoid(a, &m)) return m;
      m.matched = a.ok();
      return m;
    }
    return m;
  }

  // §6.2: the explanation; any problem with it falls back to the default.
  std::string Explain(const SpfRecord& rec, const std::string& domain) {
    std::string fallback;
    ExpandMacros(options_.default_explanation, Ctx(domain), true, &fallback);
    if (!rec.exp) return fallback;
    std::string target;
    if (!Expand(*rec.exp, domain, &target) || !IsValidDomain(target)) return fallback;
    DnsAnswer a = resolver_.Query(target, RrType::kTXT);
    if (!a.ok() || a.records.size() != 1) return fallback;
    for (unsigned char c : a.records[0])
      if (c < 0x20 || c > 0x7e) return fallback;
    std::string text;
    if (!ExpandMacros(a.records[0], Ctx(domain), true, &text)) return fallback;
    return text;
  }

  Resolver& resolver_;
  const SpfOptions& options_;
  IpAddress ip_;
  std::string sender_, local_, sender_domain_, helo_;
  int lookups_ = 0;
  int voids_ = 0;
};

SpfEvaluator::SpfEvaluator(Resolver& resolver, SpfOptions options)
    : resolver_(resolver), options_(std::move(options)) {}

SpfOutcome SpfEvaluator::CheckHost(const IpAddress& ip, const std::string& domain,
                                   const std::string& sender, const std::string& helo) {
  SpfRun run(resolver_, options_, ip, sender, helo);
  return run.Run(domain, 0);
}

SpfOutcome SpfEvaluator::Check(const std::string& ip_text, const std::string& sender,
                               const std::string& helo) {
  SpfOutcome o;
  auto ip = IpAddress::Parse(ip_text);
  if (!ip) {
    o.result = SpfResult::kPermError;
    o.problem = fmt::format("'{}' is not an IP address", ip_text);
    return o;
  }
  if (sender.empty()) return CheckHost(*ip, helo, "postmaster@" + helo, helo);
  auto at = sender.rfind('@');
  std::string domain = at == std::string::npos ? sender : sender.substr(at + 1);
  return CheckHost(*ip, domain, sender, helo);
}

}  // namespace cloudkeep::mail
