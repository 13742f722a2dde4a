// The key file and the keys it wraps (seal.h).
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>

#include "seal/seal.h"
#include "seal/sodium_init.h"

namespace cloudkeep::seal {
namespace {

// The AEAD's associated data for the wrapped master key: the format name,
// so that a wrapped key is never accepted as anything else.
constexpr std::string_view kWrapAd = kKeyFileFormat;
constexpr std::string_view kKdfName = "argon2id";
constexpr std::string_view kCipherName = "xchacha20-poly1305";

constexpr uint64_t kMinOps = 1, kMaxOps = 32;
constexpr uint64_t kMinMem = 8192, kMaxMem = uint64_t{4} << 30;

// crypto_kdf contexts: exactly crypto_kdf_CONTEXTBYTES (8) characters each.
constexpr char kDataContext[] = "ckdata01";
constexpr char kChunkIdContext[] = "ckchnkid";
static_assert(sizeof kDataContext - 1 == crypto_kdf_CONTEXTBYTES);
static_assert(sizeof kChunkIdContext - 1 == crypto_kdf_CONTEXTBYTES);
static_assert(kSaltBytes == crypto_pwhash_argon2id_SALTBYTES);
static_assert(kNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kKeyBytes == crypto_kdf_KEYBYTES);

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * N);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// Exactly 2N lower-case hex digits.
template <size_t N>
bool FromHex(std::string_view hex, std::array<uint8_t, N>* out) {
  if (hex.size() != 2 * N) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Status Malformed(const std::string& reason) {
  return Status::Failure("key file: " + reason);
}

Status WrongPassword() {
  return Status::Usage("wrong password: it does not unlock the store's key file");
}

// Wraps `master` under a key derived from `password` with a fresh salt and nonce.
Result<KeyFile> Wrap(const SecretKey& master, std::string_view password, const KdfParams& params) {
  if (password.empty())
    return Status::Usage("empty password: the store's password cannot be empty");
  CK_RETURN_IF_ERROR(ValidateKdfParams(params));
  EnsureSodium();
  KeyFile file;
  file.kdf = params;
  randombytes_buf(file.salt.data(), file.salt.size());
  randombytes_buf(file.nonce.data(), file.nonce.size());
  CK_ASSIGN_OR_RETURN(SecretKey wrapping, DeriveWrappingKey(password, file.salt, params));
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      file.wrapped_key.data(), &len, master.bytes.data(), master.bytes.size(),
      reinterpret_cast<const unsigned char*>(kWrapAd.data()), kWrapAd.size(), nullptr,
      file.nonce.data(), wrapping.bytes.data());
  return file;
}

Result<SecretKey> Unwrap(const KeyFile& file, std::string_view password) {
  // A key file that ParseKeyFile accepted has valid parameters; one built in
  // memory may not, and crypto_pwhash must never see unchecked costs.
  if (Status s = ValidateKdfParams(file.kdf); !s.ok()) return Malformed(s.message());
  CK_ASSIGN_OR_RETURN(SecretKey wrapping, DeriveWrappingKey(password, file.salt, file.kdf));
  SecretKey master;
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          master.bytes.data(), &len, nullptr, file.wrapped_key.data(), file.wrapped_key.size(),
          reinterpret_cast<const unsigned char*>(kWrapAd.data()), kWrapAd.size(), file.nonce.data(),
          wrapping.bytes.data()) != 0 ||
      len != master.bytes.size()) {
    return WrongPassword();
  }
  return master;
}

}  // namespace

SecretKey::~SecretKey() {
  sodium_memzero(bytes.data(), bytes.size());
}

bool SecretKey::operator==(const SecretKey& other) const {
  return sodium_memcmp(bytes.data(), other.bytes.data(), bytes.size()) == 0;
}

KdfParams KdfParams::Moderate() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MODERATE, crypto_pwhash_argon2id_MEMLIMIT_MODERATE};
}

KdfParams KdfParams::Interactive() {
  return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}

Status ValidateKdfParams(const KdfParams& p) {
  if (p.opslimit < kMinOps || p.opslimit > kMaxOps)
    return Status::Usage(fmt::format("invalid argon2id opslimit {}: a whole number from {} to {}",
                                     p.opslimit, kMinOps, kMaxOps));
  if (p.memlimit < kMinMem || p.memlimit > kMaxMem || p.memlimit % 1024 != 0)
    return Status::Usage(
        fmt::format("invalid argon2id memlimit {}: a multiple of 1024 from {} to {} bytes",
                    p.memlimit, kMinMem, kMaxMem));
  return Status::Ok();
}

std::string EncodeKeyFile(const KeyFile& file) {
  nlohmann::ordered_json j;
  j["format"] = kKeyFileFormat;
  j["kdf"] = kKdfName;
  j["opslimit"] = file.kdf.opslimit;
  j["memlimit"] = file.kdf.memlimit;
  j["salt"] = Hex(file.salt);
  j["cipher"] = kCipherName;
  j["nonce"] = Hex(file.nonce);
  j["wrapped_key"] = Hex(file.wrapped_key);
  return j.dump(2) + "\n";
}

Result<KeyFile> ParseKeyFile(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Malformed("not valid JSON");
  if (!j.is_object()) return Malformed("not a JSON object");
  // The format first: a newer cloudkeep's file is refused as such, not for
  // the fields it may have added.
  auto format = j.find("format");
  if (format == j.end()) return Malformed("no 'format' field");
  if (!format->is_string()) return Malformed("'format' is not a string");
  if (format->get<std::string>() != kKeyFileFormat)
    return Malformed(fmt::format("unsupported format '{}' (this cloudkeep reads {})",
                                 format->get<std::string>(), kKeyFileFormat));
  static const char* kFields[] = {"format", "kdf",    "opslimit", "memlimit",
                                  "salt",   "cipher", "nonce",    "wrapped_key"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(std::begin(kFields), std::end(kFields), it.key()) == std::end(kFields))
      return Malformed(fmt::format("unknown field '{}'", it.key()));
  }
  for (const char* name : kFields) {
    if (!j.contains(name)) return Malformed(fmt::format("no '{}' field", name));
  }
  auto string_field = [&](const char* name, std::string* out) -> Status {
    if (!j[name].is_string()) return Malformed(fmt::format("'{}' is not a string", name));
    *out = j[name].get<std::string>();
    return Status::Ok();
  };
  std::string kdf, cipher, salt, nonce, wrapped;
  CK_RETURN_IF_ERROR(string_field("kdf", &kdf));
  if (kdf != kKdfName)
    return Malformed(fmt::format("unsupported kdf '{}' (this cloudkeep knows {})", kdf, kKdfName));
  CK_RETURN_IF_ERROR(string_field("cipher", &cipher));
  if (cipher != kCipherName)
    return Malformed(
        fmt::format("unsupported cipher '{}' (this cloudkeep knows {})", cipher, kCipherName));
  KeyFile file;
  for (auto [name, out] :
       {std::pair{"opslimit", &file.kdf.opslimit}, std::pair{"memlimit", &file.kdf.memlimit}}) {
    if (!j[name].is_number_unsigned())
      return Malformed(fmt::format("'{}' is not a whole number", name));
    *out = j[name].get<uint64_t>();
  }
  if (Status s = ValidateKdfParams(file.kdf); !s.ok()) return Malformed(s.message());
  CK_RETURN_IF_ERROR(string_field("salt", &salt));
  if (!FromHex(salt, &file.salt))
    return Malformed(fmt::format("salt must be {} lower-case hex digits", 2 * kSaltBytes));
  CK_RETURN_IF_ERROR(string_field("nonce", &nonce));
  if (!FromHex(nonce, &file.nonce))
    return Malformed(fmt::format("nonce must be {} lower-case hex digits", 2 * kNonceBytes));
  CK_RETURN_IF_ERROR(string_field("wrapped_key", &wrapped));
  if (!FromHex(wrapped, &file.wrapped_key))
    return Malformed(
        fmt::format("wrapped_key must be {} lower-case hex digits", 2 * file.wrapped_key.size()));
  return file;
}

Keys DeriveKeys(const SecretKey& master) {
  EnsureSodium();
  Keys keys;
  keys.master = master;
  crypto_kdf_derive_from_key(keys.data.bytes.data(), keys.data.bytes.size(), 1, kDataContext,
                             master.bytes.data());
  crypto_kdf_derive_from_key(keys.chunk_id.bytes.data(), keys.chunk_id.bytes.size(), 1,
                             kChunkIdContext, master.bytes.data());
  return keys;
}

Result<SecretKey> DeriveWrappingKey(std::string_view password,
                                    const std::array<uint8_t, kSaltBytes>& salt,
                                    const KdfParams& params) {
  EnsureSodium();
  CK_RETURN_IF_ERROR(ValidateKdfParams(params));
  SecretKey key;
  if (crypto_pwhash(key.bytes.data(), key.bytes.size(), password.data(), password.size(),
                    salt.data(), params.opslimit, static_cast<size_t>(params.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::Failure(
        fmt::format("argon2id with memlimit {} bytes failed: not enough memory", params.memlimit));
  }
  return key;
}

Result<NewKeys> CreateKeys(std::string_view password, const KdfParams& params) {
  EnsureSodium();
  SecretKey master;
  crypto_kdf_keygen(master.bytes.data());
  CK_ASSIGN_OR_RETURN(KeyFile file, Wrap(master, password, params));
  return NewKeys{file, DeriveKeys(master)};
}

Result<Keys> UnlockKeys(const KeyFile& file, std::string_view password) {
  CK_ASSIGN_OR_RETURN(SecretKey master, Unwrap(file, password));
  return DeriveKeys(master);
}

Result<KeyFile> RewrapKeys(const KeyFile& file, std::string_view old_password,
                           std::string_view new_password, const KdfParams& params) {
  // Check the new password and costs before the (slow) unwrap.
  if (new_password.empty())
    return Status::Usage("empty password: the store's password cannot be empty");
  CK_RETURN_IF_ERROR(ValidateKdfParams(params));
  CK_ASSIGN_OR_RETURN(SecretKey master, Unwrap(file, old_password));
  return Wrap(master, new_password, params);
}

}  // namespace cloudkeep::seal
