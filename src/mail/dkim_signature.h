// The DKIM-Signature header field (RFC 6376 §3.5) with the RFC 8463
// ed25519-sha256 algorithm: parsing, the checks a verifier makes before any
// cryptography (§6.1.1), and the "b= emptied" form that is signed (§3.7).
//
// rsa-sha1 is refused: RFC 8301 §3.1 says verifiers must not consider it
// valid, so a signature using it fails with a reason that says so.
//
// Thread safety: pure functions on values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_tags.h"

namespace cloudkeep::mail {

enum class DkimAlgorithm { kRsaSha256, kEd25519Sha256 };
const char* DkimAlgorithmName(DkimAlgorithm a);

struct DkimSignature {
  DkimAlgorithm algorithm = DkimAlgorithm::kRsaSha256;
  DkimCanonPair canon;
  std::string domain;                   // d=
  std::string selector;                 // s=
  std::vector<std::string> headers;     // h=, names as written
  std::string identity;                 // i=, "@" + d when absent
  std::string signature;                // b=, decoded
  std::string body_hash;                // bh=, decoded
  std::optional<uint64_t> body_length;  // l=
  std::optional<int64_t> timestamp;     // t=
  std::optional<int64_t> expiration;    // x=
  DkimTagList tags;                     // every tag as written
};

// Parses the value of a DKIM-Signature field (everything after the colon)
// and checks what §6.1.1 requires; kFailure says what is wrong.
Result<DkimSignature> ParseDkimSignature(std::string_view value);

// The raw header field with the value of its b= tag deleted (§3.5 "b=",
// §3.7): what goes, canonicalized, into the header hash.
std::string DkimSignatureWithoutB(std::string_view raw_field);

// The domain part of an i= value ("user@sub.example.com" -> "sub.example.com").
std::string DkimIdentityDomain(std::string_view identity);
// True when `sub` equals `domain` or is a subdomain of it (case-insensitive).
bool DkimDomainWithin(std::string_view sub, std::string_view domain);

}  // namespace cloudkeep::mail
