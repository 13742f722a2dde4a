// Sealed objects and keyed chunk ids (seal.h; layout in docs/store-format.md).
#include "seal/seal.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "seal/sodium_init.h"

namespace cloudkeep::seal {
namespace {

// A sealed object: magic (4), version (1), nonce (24), ciphertext, tag (16).
constexpr char kMagic[4] = {'C', 'K', 'S', 'L'};
constexpr uint8_t kVersion = 1;
static_assert(kSealHeaderBytes == sizeof kMagic + 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(crypto_generichash_BYTES_MIN <= 32 && 32 <= crypto_generichash_BYTES_MAX);
static_assert(kKeyBytes >= crypto_generichash_KEYBYTES_MIN);

// The associated data: magic and version, then the object's name. The header
// is authenticated with it, so a sealed object cannot be re-labelled as
// another version, and the name binds it to the one key it was stored under.
std::string AssociatedData(std::string_view name) {
  std::string ad(kMagic, sizeof kMagic);
  ad += static_cast<char>(kVersion);
  ad += name;
  return ad;
}

}  // namespace

void EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    std::fputs("cloudkeep: fatal: libsodium failed to initialise\n", stderr);
    std::abort();
  }
}

std::string Seal(const Keys& keys, std::string_view plaintext, std::string_view name) {
  EnsureSodium();
  std::string out(kSealOverhead + plaintext.size(), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, kMagic, sizeof kMagic);
  p[sizeof kMagic] = kVersion;
  unsigned char* nonce = p + sizeof kMagic + 1;
  // A random nonce per object. XChaCha20's nonce is 192 bits, so random
  // nonces do not collide in practice: after 2^48 objects under one key the
  // chance of any repeat is about 2^96 / 2^193 = 2^-97 (a 96-bit nonce, as
  // in ChaCha20-Poly1305 or AES-GCM, would reach 2^-1 at 2^48). No counter
  // has to be kept, which two hosts writing one bucket could not share.
  randombytes_buf(nonce, kNonceBytes);
  const std::string ad = AssociatedData(name);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      p + kSealHeaderBytes, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      nonce, keys.data.bytes.data());
  return out;
}

Result<std::string> Open(const Keys& keys, std::string_view sealed, std::string_view name) {
  EnsureSodium();
  if (sealed.size() < kSealOverhead)
    return Status::Failure(fmt::format("sealed object {}: truncated ({} bytes, at least {})", name,
                                       sealed.size(), kSealOverhead));
  if (!LooksSealed(sealed))
    return Status::Failure(fmt::format("sealed object {}: not a sealed object (bad magic)", name));
  const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
  if (p[sizeof kMagic] != kVersion)
    return Status::Failure(
        fmt::format("sealed object {}: unsupported version {}", name, p[sizeof kMagic]));
  const std::string ad = AssociatedData(name);
  std::string plain(sealed.size() - kSealOverhead, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &len, nullptr, p + kSealHeaderBytes,
          sealed.size() - kSealHeaderBytes, reinterpret_cast<const unsigned char*>(ad.data()),
          ad.size(), p + sizeof kMagic + 1, keys.data.bytes.data()) != 0) {
    return Status::Failure(fmt::format(
        "sealed object {}: authentication failed (altered, damaged, stored under another name, "
        "or sealed with another key)",
        name));
  }
  return plain;
}

bool LooksSealed(std::string_view bytes) {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

std::array<uint8_t, 32> ChunkId(const Keys& keys, std::string_view plaintext) {
  EnsureSodium();
  std::array<uint8_t, 32> id{};
  crypto_generichash(id.data(), id.size(), reinterpret_cast<const unsigned char*>(plaintext.data()),
                     plaintext.size(), keys.chunk_id.bytes.data(), keys.chunk_id.bytes.size());
  return id;
}

}  // namespace cloudkeep::seal
