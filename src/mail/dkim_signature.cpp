#include "mail/dkim_signature.h"

#include <fmt/format.h>

#include <charconv>

namespace cloudkeep::mail {

namespace {

// Unsigned decimal of at most `max_digits` (§3.5: t= and x= are "12 digits",
// l= "76 digits" but a body longer than 2^64 bytes does not exist).
std::optional<uint64_t> ParseDecimal(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Required(const DkimTagList& tags, const char* name, Status* err) {
  const std::string* v = FindDkimTag(tags, name);
  if (v == nullptr && err->ok())
    *err = Status::Failure(fmt::format("signature lacks the required tag {}=", name));
  return v == nullptr ? std::string() : *v;
}

}  // namespace

const char* DkimAlgorithmName(DkimAlgorithm a) {
  return a == DkimAlgorithm::kEd25519Sha256 ? "ed25519-sha256" : "rsa-sha256";
}

std::string DkimIdentityDomain(std::string_view identity) {
  size_t at = identity.rfind('@');
  return std::string(at == std::string_view::npos ? identity : identity.substr(at + 1));
}

bool DkimDomainWithin(std::string_view sub, std::string_view domain) {
  if (domain.empty()) return false;
  if (EqualsIgnoreCase(sub, domain)) return true;
  return sub.size() > domain.size() + 1 && sub[sub.size() - domain.size() - 1] == '.' &&
         EqualsIgnoreCase(sub.substr(sub.size() - domain.size()), domain);
}

Result<DkimSignature> ParseDkimSignature(std::string_view value) {
  CK_ASSIGN_OR_RETURN(DkimTagList tags, ParseDkimTagList(value));
  DkimSignature sig;
  Status err;
  std::string v = Required(tags, "v", &err);
  std::string a = Required(tags, "a", &err);
  std::string b = Required(tags, "b", &err);
  std::string bh = Required(tags, "bh", &err);
  sig.domain = Required(tags, "d", &err);
  std::string h = Required(tags, "h", &err);
  sig.selector = Required(tags, "s", &err);
  CK_RETURN_IF_ERROR(err);
  if (v != "1") return Status::Failure(fmt::format("unsupported signature version v={}", v));
  if (a == "rsa-sha256") {
    sig.algorithm = DkimAlgorithm::kRsaSha256;
  } else if (a == "ed25519-sha256") {
    sig.algorithm = DkimAlgorithm::kEd25519Sha256;
  } else if (a == "rsa-sha1") {
    return Status::Failure("rsa-sha1 signatures are not accepted (RFC 8301)");
  } else {
    return Status::Failure(fmt::format("unknown signature algorithm a={}", a.substr(0, 40)));
  }
  if (const std::string* c = FindDkimTag(tags, "c")) {
    CK_ASSIGN_OR_RETURN(sig.canon, ParseDkimCanon(*c));
  }
  auto sig_bytes = DecodeDkimBase64(b);
  if (!sig_bytes.ok()) return Status::Failure("b= is not valid base64");
  sig.signature = std::move(*sig_bytes);
  auto bh_bytes = DecodeDkimBase64(bh);
  if (!bh_bytes.ok() || bh_bytes->empty()) return Status::Failure("bh= is not valid base64");
  sig.body_hash = std::move(*bh_bytes);
  if (sig.domain.empty() || sig.selector.empty())
    return Status::Failure("d= and s= must not be empty");
  bool has_from = false;
  for (auto& name : SplitDkimList(h)) {
    if (name.empty()) return Status::Failure("h= has an empty header field name");
    if (EqualsIgnoreCase(name, "from")) has_from = true;
    sig.headers.push_back(std::move(name));
  }
  // §6.1.1: a signature that does not cover From must be ignored.
  if (!has_from) return Status::Failure("h= does not include From");
  if (const std::string* i = FindDkimTag(tags, "i")) {
    if (i->find('@') == std::string::npos)
      return Status::Failure(fmt::format("i={} has no '@'", i->substr(0, 60)));
    // §3.5 "i=": its domain must be d= or a subdomain of it.
    if (!DkimDomainWithin(DkimIdentityDomain(*i), sig.domain))
      return Status::Failure(fmt::format("i={} is not within d={}", *i, sig.domain));
    sig.identity = *i;
  } else {
    sig.identity = "@" + sig.domain;
  }
  if (const std::string* l = FindDkimTag(tags, "l")) {
    auto n = ParseDecimal(*l, 20);
    if (!n) return Status::Failure(fmt::format("bad body length l={}", l->substr(0, 40)));
    sig.body_length = *n;
  }
  if (const std::string* q = FindDkimTag(tags, "q")) {
    bool dns_txt = false;
    for (const auto& m : SplitDkimList(*q))
      if (m == "dns/txt") dns_txt = true;
    if (!dns_txt)
      return Status::Failure(fmt::format("unsupported query method q={}", q->substr(0, 40)));
  }
  if (const std::string* t = FindDkimTag(tags, "t")) {
    auto n = ParseDecimal(*t, 12);
    if (!n) return Status::Failure(fmt::format("bad timestamp t={}", t->substr(0, 40)));
    sig.timestamp = static_cast<int64_t>(*n);
  }
  if (const std::string* x = FindDkimTag(tags, "x")) {
    auto n = ParseDecimal(*x, 12);
    if (!n) return Status::Failure(fmt::format("bad expiration x={}", x->substr(0, 40)));
    sig.expiration = static_cast<int64_t>(*n);
    // §3.5 "x=": it must be later than t=.
    if (sig.timestamp && *sig.expiration < *sig.timestamp)
      return Status::Failure("x= is earlier than t=");
  }
  sig.tags = std::move(tags);
  return sig;
}

std::string DkimSignatureWithoutB(std::string_view raw) {
  // Walk the tag-specs after the colon; delete the value of the one named
  // "b" (not "bh"), white space around it included, up to ';' or the end.
  size_t colon = raw.find(':');
  if (colon == std::string_view::npos) return std::string(raw);
  size_t end = raw.size();
  while (end > colon + 1 && (raw[end - 1] == '\r' || raw[end - 1] == '\n')) --end;
  size_t pos = colon + 1;
  while (pos < end) {
    size_t semi = raw.find(';', pos);
    if (semi == std::string_view::npos || semi > end) semi = end;
    size_t eq = raw.find('=', pos);
    if (eq != std::string_view::npos && eq < semi) {
      std::string_view name = raw.substr(pos, eq - pos);
      while (!name.empty() && IsDkimFws(name.front())) name.remove_prefix(1);
      while (!name.empty() && IsDkimFws(name.back())) name.remove_suffix(1);
      if (name == "b") {
        std::string out(raw.substr(0, eq + 1));
        out += raw.substr(semi);
        return out;
      }
    }
    pos = semi + 1;
  }
  return std::string(raw);
}

}  // namespace cloudkeep::mail
