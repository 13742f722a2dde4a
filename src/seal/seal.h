// Seal: client-side encryption of a store's objects (docs/store-format.md,
// "Encryption"; the threat model is in SECURITY.md).
//
// An encrypted store has one random 32-byte master key. It never leaves the
// client in the clear: the store's "keys" object holds it wrapped
// (XChaCha20-Poly1305) under a key derived from the user's password with
// Argon2id, whose parameters and salt are stored beside it. Changing the
// password re-wraps the same master key (RewrapKeys), so no data is
// re-encrypted. From the master key two subkeys are derived (crypto_kdf):
//   - the data key, which seals every object: Seal(plaintext, name) gives a
//     self-describing byte string (magic, version, random nonce, ciphertext
//     and tag) that only Open(sealed, name) with the same key and the same
//     object name turns back into the plaintext. The name is authenticated,
//     so an object copied or moved to another name does not open;
//   - the chunk-id key, which names chunks: ChunkId is a keyed BLAKE2b-256 of
//     the plaintext, the same 32-byte shape as the SHA-256 ids of plain
//     stores, but revealing nothing about the content without the key
//     (borg's approach): an operator cannot confirm that a store holds a
//     known file by hashing it.
//
// Errors are values (core/status.h). The exit classes are chosen so that a
// caller can tell the cases apart without parsing messages:
//   - ParseKeyFile: a malformed or unknown-version key file is kFailure (the
//     store is damaged or newer than this cloudkeep), "key file: <reason>";
//   - UnlockKeys: a wrong password is kUsage (exit 2, bad input), "wrong
//     password: ...", and is its only kUsage; RewrapKeys returns the same for
//     a wrong old password (and kUsage "empty password"/"invalid argon2id ..."
//     for a bad new one, checked first); nothing is changed by either;
//   - Open: a sealed object that is truncated, altered, sealed with another
//     key or stored under another name is kFailure naming the object.
//
// Thread safety: Keys and KeyFile are values; once built they are only read,
// and every function here may be called on the same Keys from any number of
// threads at once (libsodium is initialised once, on first use, thread-safely).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cloudkeep::seal {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kSaltBytes = 16;                     // crypto_pwhash_argon2id_SALTBYTES
inline constexpr size_t kNonceBytes = 24;                    // XChaCha20: 192 bits
inline constexpr size_t kTagBytes = 16;                      // Poly1305
inline constexpr size_t kSealHeaderBytes = 5 + kNonceBytes;  // magic, version, nonce
inline constexpr size_t kSealOverhead = kSealHeaderBytes + kTagBytes;
// The key file's format name, and the only one this version reads.
inline constexpr std::string_view kKeyFileFormat = "cloudkeep-keys-1";

// 32 secret bytes, wiped from memory when destroyed.
struct SecretKey {
  std::array<uint8_t, kKeyBytes> bytes{};

  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();
  // Constant-time comparison.
  bool operator==(const SecretKey& other) const;
};

// Argon2id's cost: passes over memory (opslimit) and bytes of memory
// (memlimit, a multiple of 1024), with parallelism 1 as libsodium fixes it.
struct KdfParams {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;

  // libsodium's MODERATE profile, the default: 3 passes over 256 MiB. It
  // costs 256 MiB for a moment and, measured on the project's shared 2-core
  // build host, 0.63-0.70 s at load 3.5 and about 4 s with two compilers
  // running (INTERACTIVE: 0.08-0.11 s and 0.5 s), once per command that
  // opens the store, never per request. The wrapped key sits in an
  // object store whose operator can copy it and guess passwords offline for
  // as long as they like, and each guess costs them what one unlock costs
  // us: the slower profile buys 4x the memory and 1.5x the passes per guess.
  static KdfParams Moderate();
  // libsodium's INTERACTIVE profile: 2 passes over 64 MiB, for hosts that
  // cannot spare 256 MiB for a moment (a 512 MiB VM running its workload).
  // Guessing gets cheaper by the same factors: choose it only when the
  // memory is not there, and then with a long random password.
  static KdfParams Interactive();
};

// Accepted costs: 1..32 passes, 8 KiB..4 GiB of memory in whole KiB. The
// upper bounds keep a hostile key file from making every command hang or
// exhaust the host. kUsage naming the value, e.g. "invalid argon2id memlimit
// 1000: a multiple of 1024 from 8192 to 4294967296 bytes".
Status ValidateKdfParams(const KdfParams& params);

// The store's "keys" object, parsed.
struct KeyFile {
  KdfParams kdf;
  std::array<uint8_t, kSaltBytes> salt{};
  std::array<uint8_t, kNonceBytes> nonce{};
  // The master key sealed under the password's key: 32 bytes and the tag.
  std::array<uint8_t, kKeyBytes + kTagBytes> wrapped_key{};
};

// The JSON text of the key file (docs/store-format.md, "The key file").
std::string EncodeKeyFile(const KeyFile& file);
// Refuses, with one line, anything but a complete key file of the one
// known format: "key file: unsupported format 'cloudkeep-keys-2' (this
// cloudkeep reads cloudkeep-keys-1)", "key file: salt must be 32 lower-case
// hex digits", "key file: unknown field 'x'" ... (kFailure).
Result<KeyFile> ParseKeyFile(std::string_view text);

// The unwrapped keys of a store, from CreateKeys or UnlockKeys (DeriveKeys
// for tests). A default-constructed Keys holds zeros: never seal with one.
struct Keys {
  SecretKey master;    // wrapped in the key file; only to derive the others
  SecretKey data;      // seals objects (crypto_kdf id 1, context "ckdata01")
  SecretKey chunk_id;  // keys chunk ids (crypto_kdf id 1, context "ckchnkid")
};

// The subkeys of a master key. Exposed for the known-answer tests.
Keys DeriveKeys(const SecretKey& master);
// The key that wraps the master key: crypto_pwhash (Argon2id v1.3) of the
// password and salt, 32 bytes. Exposed for the known-answer tests. Fails
// (kFailure) only when the host cannot provide the memory.
Result<SecretKey> DeriveWrappingKey(std::string_view password,
                                    const std::array<uint8_t, kSaltBytes>& salt,
                                    const KdfParams& params);

struct NewKeys {
  KeyFile file;  // to store as the "keys" object
  Keys keys;
};
// A fresh random master key, wrapped under `password`, with a fresh salt.
// kUsage for an empty password or parameters ValidateKdfParams refuses.
Result<NewKeys> CreateKeys(std::string_view password,
                           const KdfParams& params = KdfParams::Moderate());
// The keys of a store. A password that does not unwrap the master key is
// kUsage "wrong password: it does not unlock the store's key file" (an
// altered wrapped key reads the same: the two cannot be told apart).
Result<Keys> UnlockKeys(const KeyFile& file, std::string_view password);
// `store passwd`: the same master key under a new password, a new salt and
// new parameters. Data sealed before opens with the keys after.
Result<KeyFile> RewrapKeys(const KeyFile& file, std::string_view old_password,
                           std::string_view new_password,
                           const KdfParams& params = KdfParams::Moderate());

// Seals `plaintext` as the object named `name` (its key in the store, e.g.
// "chunks/ab/<id>" or "snapshots/<id>.json"). kSealOverhead bytes longer
// than the plaintext; a fresh random nonce each call, so sealing the same
// bytes twice gives two different objects.
std::string Seal(const Keys& keys, std::string_view plaintext, std::string_view name);
// The plaintext of a sealed object read back from `name`, or kFailure:
// "sealed object NAME: truncated (N bytes, at least 45)", "... not a sealed
// object (bad magic)", "... unsupported version V", "... authentication
// failed (altered, damaged, stored under another name, or sealed with
// another key)".
Result<std::string> Open(const Keys& keys, std::string_view sealed, std::string_view name);
// True when `bytes` start with a sealed object's magic (a plain chunk or
// manifest never does: they start with "CKC1" or "{").
bool LooksSealed(std::string_view bytes);

// The id of a chunk of an encrypted store: BLAKE2b-256 keyed with the
// chunk-id key over the chunk's uncompressed bytes.
std::array<uint8_t, 32> ChunkId(const Keys& keys, std::string_view plaintext);

}  // namespace cloudkeep::seal
