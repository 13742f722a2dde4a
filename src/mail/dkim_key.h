// DKIM keys: the key record a domain publishes at
// <selector>._domainkey.<domain> (RFC 6376 §3.6.1), the public and private
// keys behind it (RSA; Ed25519 per RFC 8463 §4), key generation, and the
// raw sign/verify primitives of both algorithms, all with OpenSSL.
//
// RSA-SHA256 signs the header data with PKCS#1 v1.5 (RFC 6376 §3.3.1).
// Ed25519-SHA256 signs the SHA-256 hash of the header data with PureEdDSA
// (RFC 8463 §3): the hash, not the data, is the EdDSA message.
//
// Thread safety: key objects are immutable after construction and may be
// used from several threads.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "mail/dkim_signature.h"

namespace cloudkeep::mail {

enum class DkimKeyType { kRsa, kEd25519 };
const char* DkimKeyTypeName(DkimKeyType t);
// The key type an algorithm needs.
DkimKeyType DkimKeyTypeFor(DkimAlgorithm a);

struct DkimKeyRecord {
  std::string version;  // v=, "DKIM1" or empty
  DkimKeyType type = DkimKeyType::kRsa;
  std::vector<std::string> hashes;    // h=; empty: every hash allowed
  std::vector<std::string> services;  // s=; default "*"
  std::vector<std::string> flags;     // t=
  std::string public_key;             // p=, decoded; empty: revoked (§3.6.1)
  std::string notes;                  // n=
  bool revoked() const { return public_key.empty(); }
  bool testing() const;          // t=y
  bool strict_identity() const;  // t=s: i= must use d= exactly
  bool allows_sha256() const;
  bool allows_email() const;
};

// Parses a TXT record's text; kFailure says what is wrong (v= not first or
// not DKIM1, unknown k=, p= not base64, a tag-list syntax error).
Result<DkimKeyRecord> ParseDkimKeyRecord(std::string_view text);

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

class DkimPublicKey {
 public:
  // From p= of a record of type `type`: SubjectPublicKeyInfo (or a bare
  // RSAPublicKey) for RSA, the raw 32 bytes for Ed25519 (RFC 8463 §4.2).
  static Result<DkimPublicKey> FromRecord(const DkimKeyRecord& record);
  DkimKeyType type() const { return type_; }
  int bits() const { return bits_; }
  EVP_PKEY* pkey() const { return key_.get(); }

 private:
  DkimKeyType type_ = DkimKeyType::kRsa;
  int bits_ = 0;
  std::shared_ptr<EVP_PKEY> key_;
};

class DkimPrivateKey {
 public:
  // PEM (PKCS#8, or traditional RSA), or dkimpy's Ed25519 format: the
  // 32-byte seed in base64 on one line.
  static Result<DkimPrivateKey> Parse(std::string_view text);
  static Result<DkimPrivateKey> Generate(DkimKeyType type, int rsa_bits);
  DkimKeyType type() const { return type_; }
  int bits() const { return bits_; }
  EVP_PKEY* pkey() const { return key_.get(); }
  // PKCS#8 PEM, what keygen writes.
  Result<std::string> PrivatePem() const;
  // The p= value to publish: base64 of SubjectPublicKeyInfo for RSA, of the
  // raw public key for Ed25519.
  Result<std::string> PublicKeyBase64() const;
  // "v=DKIM1; k=rsa; p=…"
  Result<std::string> KeyRecord() const;

 private:
  DkimKeyType type_ = DkimKeyType::kRsa;
  int bits_ = 0;
  std::shared_ptr<EVP_PKEY> key_;
};

// b= bytes over `header_data` (the canonicalized header fields, §3.7).
Result<std::string> DkimSignData(const DkimPrivateKey& key, DkimAlgorithm alg,
                                 std::string_view header_data);
// Ok when `signature` is valid for `header_data`; kFailure otherwise.
Status DkimVerifyData(const DkimPublicKey& key, DkimAlgorithm alg, std::string_view header_data,
                      std::string_view signature);

// SHA-256 of `data`, raw bytes.
std::string Sha256(std::string_view data);

}  // namespace cloudkeep::mail
