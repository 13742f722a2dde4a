// DKIM signing (RFC 6376 §5) with RSA-SHA256 or Ed25519-SHA256 (RFC 8463):
// a DKIM-Signature field is computed over the canonicalized body and the
// chosen header fields and put at the top of the message.
//
// By default the header fields that matter to a reader and to list
// software are signed, and From is listed once more than it appears
// ("over-signing", §8.15) so that nobody can add a second From unnoticed.
//
// Thread safety: stateless; safe from several threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_key.h"

namespace cloudkeep::mail {

struct DkimSignOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  std::string identity;  // i=, omitted when empty
  DkimCanonPair canon{DkimCanon::kRelaxed, DkimCanon::kRelaxed};
  // h= exactly as given; empty: the present ones of DefaultDkimSignedHeaders
  // plus From once more.
  std::vector<std::string> headers;
  std::optional<int64_t> timestamp;   // t=
  std::optional<int64_t> expiration;  // x=
};

struct DkimSigned {
  std::string field;    // "DKIM-Signature: …" with its line ending, in the message's style
  std::string message;  // field + the message as given
  std::vector<std::string> signed_headers;
  DkimAlgorithm algorithm = DkimAlgorithm::kRsaSha256;
  std::string body_hash;  // base64
};

const std::vector<std::string>& DefaultDkimSignedHeaders();

// kUsage for bad options (no From in the message or in h=, bad domain).
Result<DkimSigned> DkimSign(std::string_view message, const DkimPrivateKey& key,
                            const DkimSignOptions& options);

}  // namespace cloudkeep::mail
