#include "mail/dkim_verify.h"

#include <fmt/format.h>

#include <map>

namespace cloudkeep::mail {

namespace {

std::string StripCrlf(std::string s) {
  if (s.size() >= 2 && s.compare(s.size() - 2, 2, "\r\n") == 0) s.resize(s.size() - 2);
  return s;
}

std::string FieldValue(std::string_view raw) {
  size_t colon = raw.find(':');
  return std::string(colon == std::string_view::npos ? std::string_view() : raw.substr(colon + 1));
}

// Checks one signature against one key record; fills the key details.
DkimVerdict CheckWithKey(const MailMessage& msg, const HeaderField& field, const DkimSignature& sig,
                         const DkimKeyRecord& rec, DkimVerdict v) {
  v.key_type = DkimKeyTypeName(rec.type);
  v.testing = rec.testing();
  auto perm = [&v](std::string why) {
    v.result = DkimResult::kPermError;
    v.reason = std::move(why);
    return v;
  };
  if (rec.revoked()) return perm("key revoked (empty p=)");
  if (!rec.allows_email()) return perm("key record s= does not allow email");
  if (!rec.allows_sha256()) return perm("key record h= does not allow sha256");
  if (rec.type != DkimKeyTypeFor(sig.algorithm))
    return perm(fmt::format("key type k={} does not match a={}", DkimKeyTypeName(rec.type),
                            DkimAlgorithmName(sig.algorithm)));
  // §3.6.1 "t=s": the i= domain must be d= itself, not a subdomain.
  if (rec.strict_identity() && !EqualsIgnoreCase(DkimIdentityDomain(sig.identity), sig.domain))
    return perm("key has t=s but i= is a subdomain of d=");
  auto key = DkimPublicKey::FromRecord(rec);
  if (!key.ok()) return perm(key.status().message());
  v.key_bits = key->bits();
  // RFC 8301 §3.2: RSA keys under 1024 bits must not be considered valid.
  if (key->type() == DkimKeyType::kRsa && key->bits() < 1024)
    return perm(fmt::format("RSA key of {} bits is too short (RFC 8301)", key->bits()));
  auto body = DkimCanonicalBody(msg, sig.canon.body, sig.body_length);
  if (!body.ok()) {
    v.result = DkimResult::kFail;
    v.reason = body.status().message();
    return v;
  }
  if (Sha256(*body) != sig.body_hash) {
    v.result = DkimResult::kFail;
    v.reason = "body hash does not match (body altered)";
    return v;
  }
  std::string data = DkimHeaderData(msg, sig.headers, field.raw, sig.canon.header);
  Status s = DkimVerifyData(*key, sig.algorithm, data, sig.signature);
  if (!s.ok()) {
    v.result = DkimResult::kFail;
    v.reason = "signature does not verify (signed header fields altered, or wrong key)";
    return v;
  }
  v.result = DkimResult::kPass;
  v.reason.clear();
  return v;
}

DkimVerdict VerifyOne(const MailMessage& msg, const HeaderField& field, Resolver* resolver,
                      const DkimVerifyOptions& options) {
  DkimVerdict v;
  auto parsed = ParseDkimSignature(FieldValue(field.raw));
  if (!parsed.ok()) {
    // Best effort: show d= and s= even from a signature that failed to parse.
    if (auto tags = ParseDkimTagList(FieldValue(field.raw)); tags.ok()) {
      if (const auto* d = FindDkimTag(*tags, "d")) v.domain = *d;
      if (const auto* s = FindDkimTag(*tags, "s")) v.selector = *s;
      if (const auto* a = FindDkimTag(*tags, "a")) v.algorithm = *a;
    }
    v.result = DkimResult::kPermError;
    v.reason = parsed.status().message();
    return v;
  }
  const DkimSignature& sig = *parsed;
  v.domain = sig.domain;
  v.selector = sig.selector;
  v.identity = sig.identity;
  v.algorithm = DkimAlgorithmName(sig.algorithm);
  v.canonicalization =
      fmt::format("{}/{}", DkimCanonName(sig.canon.header), DkimCanonName(sig.canon.body));
  // §6.1.1: an expired signature is not valid.
  if (options.now > 0 && sig.expiration && *sig.expiration < options.now) {
    v.result = DkimResult::kPermError;
    v.reason = fmt::format("signature expired (x={})", *sig.expiration);
    return v;
  }
  std::vector<std::string> records;
  if (!options.key_record.empty()) {
    records.push_back(options.key_record);
  } else if (resolver == nullptr) {
    v.result = DkimResult::kTempError;
    v.reason = "no resolver to look up the key";
    return v;
  } else {
    std::string name = DkimKeyName(sig.selector, sig.domain);
    DnsAnswer a = resolver->Query(name, RrType::kTXT);
    if (a.status == DnsStatus::kServFail || a.status == DnsStatus::kTimeout) {
      v.result = DkimResult::kTempError;
      v.reason = fmt::format("key lookup {} TXT: {}{}", name, DnsStatusName(a.status),
                             a.error.empty() ? "" : ": " + a.error);
      return v;
    }
    if (!a.ok()) {
      v.result = DkimResult::kPermError;
      v.reason = fmt::format("no key at {} ({})", name, DnsStatusName(a.status));
      return v;
    }
    records = a.records;
  }
  // §6.1.2: with several records a verifier may try each of them.
  DkimVerdict best = v;
  best.result = DkimResult::kPermError;
  best.reason = "no usable key record";
  for (const auto& text : records) {
    auto rec = ParseDkimKeyRecord(text);
    if (!rec.ok()) {
      best.reason = fmt::format("key record: {}", rec.status().message());
      continue;
    }
    DkimVerdict got = CheckWithKey(msg, field, sig, *rec, v);
    if (got.result == DkimResult::kPass) return got;
    // A definite failure says more than an unusable record.
    if (best.result != DkimResult::kFail) best = got;
  }
  return best;
}

}  // namespace

const char* DkimResultName(DkimResult r) {
  switch (r) {
    case DkimResult::kNone:
      return "none";
    case DkimResult::kPass:
      return "pass";
    case DkimResult::kFail:
      return "fail";
    case DkimResult::kPermError:
      return "permerror";
    case DkimResult::kTempError:
      return "temperror";
  }
  return "none";
}

std::string DkimKeyName(std::string_view selector, std::string_view domain) {
  return fmt::format("{}._domainkey.{}", selector, domain);
}

namespace {

// Why `name` is not a sequence of usable DNS labels, or "" when it is.
std::string LabelProblem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > 253) return "it is longer than 253 characters";
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return "it has an empty label (a leading, trailing or double dot)";
    if (label.size() > 63)
      return fmt::format("label '{}…' is longer than 63 characters", label.substr(0, 16));
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_'))
        return fmt::format("'{}' cannot be part of a DNS label (letters, digits, '-', '_')",
                           static_cast<unsigned char>(c) < 0x20 || c == 0x7f
                               ? fmt::format("\\x{:02x}", static_cast<unsigned char>(c))
                               : std::string(1, c));
    if (label.front() == '-' || label.back() == '-')
      return fmt::format("label '{}' starts or ends with '-'", label);
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

std::string Quoted(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else
      out += c;
  }
  return out;
}

}  // namespace

Status CheckDkimSelector(std::string_view selector, std::string_view what) {
  std::string why = LabelProblem(selector);
  if (why.empty()) return Status::Ok();
  return Status::Usage(
      fmt::format("bad {} '{}': {} (a selector is a DNS name)", what, Quoted(selector), why));
}

Status CheckDkimDomain(std::string_view domain, std::string_view what) {
  std::string why = LabelProblem(domain);
  if (why.empty() && domain.find('.') == std::string_view::npos)
    why = "a signing domain has at least two labels";
  if (why.empty()) return Status::Ok();
  return Status::Usage(fmt::format("bad {} '{}': {}", what, Quoted(domain), why));
}

Status CheckDkimKeyName(std::string_view selector, std::string_view domain) {
  std::string name = DkimKeyName(selector, domain);
  if (name.size() <= 253) return Status::Ok();
  return Status::Usage(fmt::format("the key name {} is {} characters, more than DNS allows (253)",
                                   Quoted(name), name.size()));
}

Result<std::string> DkimCanonicalBody(const MailMessage& msg, DkimCanon canon,
                                      std::optional<uint64_t> length) {
  std::string body = CanonBody(canon, msg.body);
  if (length) {
    if (*length > body.size())
      return Status::Failure(
          fmt::format("l={} is longer than the body ({} bytes)", *length, body.size()));
    body.resize(*length);
  }
  return body;
}

std::string DkimHeaderData(const MailMessage& msg, const std::vector<std::string>& signed_headers,
                           std::string_view raw_signature_field, DkimCanon canon) {
  std::string out;
  std::map<std::string, size_t> used;  // lower-case name -> instances taken from the bottom
  for (const auto& name : signed_headers) {
    std::string key = ToLower(name);
    size_t& taken = used[key];
    size_t seen = 0;
    for (size_t i = msg.headers.size(); i-- > 0;) {
      if (!EqualsIgnoreCase(msg.headers[i].name, name)) continue;
      if (seen++ == taken) {
        out += CanonHeader(canon, msg.headers[i].raw);
        break;
      }
    }
    ++taken;
  }
  out += StripCrlf(CanonHeader(canon, DkimSignatureWithoutB(raw_signature_field)));
  return out;
}

Result<std::vector<DkimVerdict>> DkimVerify(std::string_view message, Resolver* resolver,
                                            const DkimVerifyOptions& options) {
  auto msg = ParseMailMessage(message);
  if (!msg.ok()) return Status::Usage(fmt::format("message: {}", msg.status().message()));
  std::vector<DkimVerdict> out;
  for (const auto& field : msg->headers) {
    if (!EqualsIgnoreCase(field.name, "DKIM-Signature")) continue;
    if (out.size() >= options.max_signatures) break;
    out.push_back(VerifyOne(*msg, field, resolver, options));
  }
  if (out.empty()) {
    DkimVerdict none;
    none.reason = "no DKIM-Signature header field";
    out.push_back(none);
  }
  return out;
}

Json DkimVerdictToJson(const DkimVerdict& v) {
  Json j = {{"result", DkimResultName(v.result)},
            {"domain", v.domain},
            {"selector", v.selector},
            {"identity", v.identity},
            {"algorithm", v.algorithm},
            {"canonicalization", v.canonicalization},
            {"key_type", v.key_type},
            {"key_bits", v.key_bits},
            {"testing", v.testing},
            {"reason", v.reason}};
  return j;
}

}  // namespace cloudkeep::mail
