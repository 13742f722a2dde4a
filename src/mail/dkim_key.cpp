#include "mail/dkim_key.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace cloudkeep::mail {

namespace {

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* k) {
  return std::shared_ptr<EVP_PKEY>(k, EvpPkeyFree());
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown openssl error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// Ed25519 keys are 256 bits; OpenSSL reports 253 (the curve's bit size).
int KeyBits(EVP_PKEY* k) {
  return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? 256 : EVP_PKEY_get_bits(k);
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

}  // namespace

void EvpPkeyFree::operator()(EVP_PKEY* k) const {
  EVP_PKEY_free(k);
}

const char* DkimKeyTypeName(DkimKeyType t) {
  return t == DkimKeyType::kEd25519 ? "ed25519" : "rsa";
}

DkimKeyType DkimKeyTypeFor(DkimAlgorithm a) {
  return a == DkimAlgorithm::kEd25519Sha256 ? DkimKeyType::kEd25519 : DkimKeyType::kRsa;
}

bool DkimKeyRecord::testing() const {
  for (const auto& f : flags)
    if (f == "y") return true;
  return false;
}

bool DkimKeyRecord::strict_identity() const {
  for (const auto& f : flags)
    if (f == "s") return true;
  return false;
}

bool DkimKeyRecord::allows_sha256() const {
  if (hashes.empty()) return true;
  for (const auto& h : hashes)
    if (h == "sha256") return true;
  return false;
}

bool DkimKeyRecord::allows_email() const {
  for (const auto& s : services)
    if (s == "*" || s == "email") return true;
  return false;
}

Result<DkimKeyRecord> ParseDkimKeyRecord(std::string_view text) {
  CK_ASSIGN_OR_RETURN(DkimTagList tags, ParseDkimTagList(text));
  DkimKeyRecord rec;
  rec.services = {"*"};
  for (size_t i = 0; i < tags.size(); ++i) {
    const auto& [name, value] = tags[i];
    if (name == "v") {
      // §3.6.1 "v=": if present, it must be the first tag and be "DKIM1".
      if (i != 0) return Status::Failure("v= is not the first tag of the key record");
      if (value != "DKIM1")
        return Status::Failure(fmt::format("key record version v={} is not DKIM1", value));
      rec.version = value;
    } else if (name == "k") {
      if (value == "rsa") {
        rec.type = DkimKeyType::kRsa;
      } else if (value == "ed25519") {
        rec.type = DkimKeyType::kEd25519;
      } else {
        return Status::Failure(fmt::format("unknown key type k={}", value.substr(0, 40)));
      }
    } else if (name == "h") {
      rec.hashes = SplitDkimList(value);
    } else if (name == "s") {
      rec.services = SplitDkimList(value);
    } else if (name == "t") {
      rec.flags = SplitDkimList(value);
    } else if (name == "n") {
      rec.notes = value;
    } else if (name == "p") {
      auto key = DecodeDkimBase64(value);
      if (!key.ok()) return Status::Failure("p= is not valid base64");
      rec.public_key = std::move(*key);
    }
    // Unknown tags are ignored (§3.6.1).
  }
  if (FindDkimTag(tags, "p") == nullptr) return Status::Failure("key record has no p= tag");
  return rec;
}

Result<DkimPublicKey> DkimPublicKey::FromRecord(const DkimKeyRecord& record) {
  if (record.revoked()) return Status::Failure("key revoked (empty p=)");
  DkimPublicKey out;
  out.type_ = record.type;
  const auto* der = reinterpret_cast<const unsigned char*>(record.public_key.data());
  EVP_PKEY* k = nullptr;
  if (record.type == DkimKeyType::kEd25519) {
    if (record.public_key.size() != 32)
      return Status::Failure(
          fmt::format("ed25519 key is {} bytes, not 32", record.public_key.size()));
    k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, der, 32);
  } else {
    // RFC 6376 §3.6.1 says RSAPublicKey, yet every signer publishes
    // SubjectPublicKeyInfo (as its own §A.3 example does): accept both.
    const unsigned char* p = der;
    k = d2i_PUBKEY(nullptr, &p, static_cast<long>(record.public_key.size()));
    if (k != nullptr &&
        (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || p != der + record.public_key.size())) {
      EVP_PKEY_free(k);
      k = nullptr;
    }
    if (k == nullptr) {
      p = der;
      k = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(record.public_key.size()));
    }
  }
  ERR_clear_error();
  if (k == nullptr)
    return Status::Failure(
        fmt::format("p= is not a valid {} public key", DkimKeyTypeName(record.type)));
  out.key_ = Share(k);
  out.bits_ = KeyBits(k);
  return out;
}

Result<DkimPrivateKey> DkimPrivateKey::Parse(std::string_view text) {
  DkimPrivateKey out;
  EVP_PKEY* k = nullptr;
  if (text.find("-----BEGIN") != std::string_view::npos) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (k == nullptr)
      return Status::Usage(fmt::format("private key is not readable PEM: {}", OpenSslError()));
  } else {
    auto seed = DecodeDkimBase64(text);
    if (!seed.ok() || seed->size() != 32)
      return Status::Usage("private key is neither PEM nor a base64 Ed25519 seed of 32 bytes");
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                     reinterpret_cast<const unsigned char*>(seed->data()),
                                     seed->size());
    if (k == nullptr) return Status::Usage(fmt::format("bad ed25519 seed: {}", OpenSslError()));
  }
  out.key_ = Share(k);
  int id = EVP_PKEY_get_base_id(k);
  if (id == EVP_PKEY_RSA) {
    out.type_ = DkimKeyType::kRsa;
  } else if (id == EVP_PKEY_ED25519) {
    out.type_ = DkimKeyType::kEd25519;
  } else {
    return Status::Usage("private key is neither RSA nor Ed25519");
  }
  out.bits_ = KeyBits(k);
  return out;
}

Result<DkimPrivateKey> DkimPrivateKey::Generate(DkimKeyType type, int rsa_bits) {
  DkimPrivateKey out;
  out.type_ = type;
  EVP_PKEY* k = nullptr;
  if (type == DkimKeyType::kRsa) {
    if (rsa_bits < 1024 || rsa_bits > 8192)
      return Status::Usage(fmt::format("RSA key size '{}' is outside 1024..8192", rsa_bits));
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
  } else {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  if (k == nullptr)
    return Status::Failure(fmt::format("key generation failed: {}", OpenSslError()));
  out.key_ = Share(k);
  out.bits_ = KeyBits(k);
  return out;
}

Result<std::string> DkimPrivateKey::PrivatePem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr))
    return Status::Failure(fmt::format("cannot write the private key: {}", OpenSslError()));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> DkimPrivateKey::PublicKeyBase64() const {
  if (type_ == DkimKeyType::kEd25519) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (!EVP_PKEY_get_raw_public_key(key_.get(), raw, &len))
      return Status::Failure(fmt::format("cannot read the public key: {}", OpenSslError()));
    return EncodeBase64(std::string_view(reinterpret_cast<char*>(raw), len));
  }
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key_.get(), &der);
  if (n <= 0)
    return Status::Failure(fmt::format("cannot encode the public key: {}", OpenSslError()));
  std::string out =
      EncodeBase64(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  return out;
}

Result<std::string> DkimPrivateKey::KeyRecord() const {
  CK_ASSIGN_OR_RETURN(std::string p, PublicKeyBase64());
  return fmt::format("v=DKIM1; k={}; p={}", DkimKeyTypeName(type_), p);
}

std::string Sha256(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

Result<std::string> DkimSignData(const DkimPrivateKey& key, DkimAlgorithm alg,
                                 std::string_view header_data) {
  if (key.type() != DkimKeyTypeFor(alg))
    return Status::Usage(fmt::format("a {} key cannot make {} signatures",
                                     DkimKeyTypeName(key.type()), DkimAlgorithmName(alg)));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string msg;
  const EVP_MD* md = nullptr;
  if (alg == DkimAlgorithm::kEd25519Sha256) {
    msg = Sha256(header_data);  // RFC 8463 §3
  } else {
    msg.assign(header_data);
    md = EVP_sha256();
  }
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.pkey()) != 1)
    return Status::Failure(fmt::format("sign init: {}", OpenSslError()));
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(msg.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, msg.size()) != 1)
    return Status::Failure(fmt::format("sign: {}", OpenSslError()));
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     msg.size()) != 1)
    return Status::Failure(fmt::format("sign: {}", OpenSslError()));
  sig.resize(len);
  return sig;
}

Status DkimVerifyData(const DkimPublicKey& key, DkimAlgorithm alg, std::string_view header_data,
                      std::string_view signature) {
  if (key.type() != DkimKeyTypeFor(alg))
    return Status::Failure(fmt::format("key type {} does not match a={}",
                                       DkimKeyTypeName(key.type()), DkimAlgorithmName(alg)));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string msg;
  const EVP_MD* md = nullptr;
  if (alg == DkimAlgorithm::kEd25519Sha256) {
    msg = Sha256(header_data);
  } else {
    msg.assign(header_data);
    md = EVP_sha256();
  }
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.pkey()) != 1)
    return Status::Failure(fmt::format("verify init: {}", OpenSslError()));
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(msg.data()),
                            msg.size());
  ERR_clear_error();
  if (rc != 1) return Status::Failure("signature does not verify");
  return Status::Ok();
}

}  // namespace cloudkeep::mail
