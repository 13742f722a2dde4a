// Known-answer tests: the key derivation, the subkeys, the keyed chunk ids
// and the two on-store formats against values computed by implementations
// other than the code under test. Every constant marked "kat_vectors.py" was
// printed by `/usr/bin/python3 tests/unit/seal/kat_vectors.py` (argon2-cffi
// over the Argon2 reference library, CPython's hashlib BLAKE2b, PyNaCl for
// the golden objects; the script says which value comes from which). The
// others are quoted from the document named beside them.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

#include "seal/seal.h"

namespace cloudkeep::seal {
namespace {

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}
template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  return Hex(a.data(), N);
}
std::string Hex(std::string_view s) {
  return Hex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string Unhex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  size_t len = 0;
  EXPECT_EQ(sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                           hex.size(), nullptr, &len, nullptr),
            0);
  EXPECT_EQ(len, out.size());
  return out;
}

std::array<uint8_t, kSaltBytes> KatSalt() {
  std::array<uint8_t, kSaltBytes> salt;
  for (size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<uint8_t>(i);
  return salt;
}

SecretKey KatMaster() {
  SecretKey master;
  for (size_t i = 0; i < master.bytes.size(); ++i) master.bytes[i] = static_cast<uint8_t>(i);
  return master;
}

struct Argon2Vector {
  const char* password;
  uint64_t opslimit, memlimit;
  const char* hex;
};

TEST(SealKat, Argon2idMatchesTheReferenceImplementation) {
  // kat_vectors.py (argon2-cffi 21.1.0 over Debian's libargon2-1).
  const Argon2Vector kVectors[] = {
      {"correct horse battery staple", 1, 8192,
       "d17ea6341ca93da6079ea2f64dc4aa31dd1aaf9caa67fb42ac4afd0714706f26"},
      {"correct horse battery staple", 3, 65536,
       "bc240e180a205bd2e782cdc64983f247e76aeb8fb2133aec1570b70cccd68bff"},
      // The INTERACTIVE profile's costs, and a non-ASCII (UTF-8) password.
      {"p\xc3\xa4ssw\xc3\xb6rd", 2, 67108864,
       "7ec8852d0c5195ffa4395a5985bb12b4a3fcc93533eebf1a973b45476487b2f9"},
  };
  for (const auto& v : kVectors) {
    auto key = DeriveWrappingKey(v.password, KatSalt(), {v.opslimit, v.memlimit});
    ASSERT_TRUE(key.ok()) << key.status().message();
    EXPECT_EQ(Hex(key->bytes), v.hex) << v.password << " " << v.opslimit << " " << v.memlimit;
  }
  EXPECT_EQ(KdfParams::Interactive().opslimit, 2u);
  EXPECT_EQ(KdfParams::Interactive().memlimit, 67108864u);
}

TEST(SealKat, SubkeysMatchBlake2bWithSaltAndPersonal) {
  // kat_vectors.py: crypto_kdf's construction recomputed with hashlib.blake2b.
  Keys keys = DeriveKeys(KatMaster());
  EXPECT_EQ(Hex(keys.data.bytes),
            "38bcbb824d78c7234669a6c37042bc6a25ecc8671f1d5db39d89985011fe6be1");
  EXPECT_EQ(Hex(keys.chunk_id.bytes),
            "546e1a88cb2c40225eef63375d351403da14d1eca0b5d6f278d4a7d6e1d270fb");
  EXPECT_TRUE(keys.master == KatMaster());
}

TEST(SealKat, ChunkIdIsKeyedBlake2b256) {
  Keys keys = DeriveKeys(KatMaster());
  // kat_vectors.py: hashlib.blake2b(data, digest_size=32, key=chunk-id key).
  EXPECT_EQ(Hex(ChunkId(keys, "abc")),
            "13c8b0ad55db3a618b3d7bb784f8e5b5ed13125983ecd8d3faa840c5381f0f1f");
  EXPECT_EQ(Hex(ChunkId(keys, "")),
            "d27c794511d8c5adf9e34552ae1ccb1240d89cd5b18d1bef168a925c8a946b39");
  std::string chunk(524288, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((i * 7 + 3) & 0xff);
  EXPECT_EQ(Hex(ChunkId(keys, chunk)),
            "63fb320a7ab50c015f9b1bc8af6e43823b7de59fbfbdf8e443e8379568655ca7");
}

TEST(SealKat, Blake2bKeyedReferenceVectors) {
  // The BLAKE2 reference package's blake2b-kat.txt (keyed, 64-byte key
  // 000102..3f, 64-byte output), entries for inputs of length 0, 1 and 255
  // (input byte i = i); and RFC 7693 Appendix A, BLAKE2b-512("abc").
  std::string key, in;
  for (int i = 0; i < 64; ++i) key += static_cast<char>(i);
  for (int i = 0; i < 255; ++i) in += static_cast<char>(i);
  auto b2 = [&](std::string_view data, std::string_view k) {
    unsigned char out[64];
    EXPECT_EQ(
        crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size(), reinterpret_cast<const unsigned char*>(k.data()), k.size()),
        0);
    return Hex(out, sizeof out);
  };
  EXPECT_EQ(b2("", key),
            "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
            "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568");
  EXPECT_EQ(b2(std::string_view(in).substr(0, 1), key),
            "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
            "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd");
  EXPECT_EQ(b2(in, key),
            "142709d62e28fcccd0af97fad0f8465b971e82201dc51070faa0372aa43e9248"
            "4be1c1e73ba10906d5d1853db6a4106e0a7bf9800d373d6dee2d46d62ef2a461");
  EXPECT_EQ(b2("abc", ""),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

TEST(SealKat, XChaCha20Poly1305DraftVector) {
  // draft-irtf-cfrg-xchacha-03, Appendix A.3.1.
  const std::string key = Unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const std::string nonce = Unhex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const std::string aad = Unhex("50515253c0c1c2c3c4c5c6c7");
  const std::string plain =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  const std::string expected =
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
      "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
      "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
      "21f9664c97637da9768812f615c68b13b52e"
      "c0875924c1c7987947deafd8780acf49";  // the tag
  std::string out(plain.size() + kTagBytes, '\0');
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data()), &len,
      reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
      reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()),
      reinterpret_cast<const unsigned char*>(key.data()));
  EXPECT_EQ(Hex(out), expected);
}

// kat_vectors.py: a key file built by hand from the documented fields,
// wrapping master 000102..1f under "correct horse battery staple".
constexpr const char* kGoldenKeyFile =
    R"({"format": "cloudkeep-keys-1", "kdf": "argon2id", "opslimit": 1, "memlimit": 8192, )"
    R"("salt": "000102030405060708090a0b0c0d0e0f", "cipher": "xchacha20-poly1305", )"
    R"("nonce": "404142434445464748494a4b4c4d4e4f5051525354555657", )"
    R"("wrapped_key": "0d91f11acb773990d16de211f458fd67c243ecc4a5916516d9e7fc49b86e6920)"
    R"(4ec02ff5eff049426da313154e5ce972"})";

TEST(SealKat, GoldenKeyFileUnlocks) {
  auto file = ParseKeyFile(kGoldenKeyFile);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->kdf.opslimit, 1u);
  EXPECT_EQ(file->kdf.memlimit, 8192u);
  auto keys = UnlockKeys(*file, "correct horse battery staple");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_TRUE(keys->master == KatMaster());
  // And it encodes back to the same fields.
  auto again = ParseKeyFile(EncodeKeyFile(*file));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->wrapped_key, file->wrapped_key);
  EXPECT_EQ(again->salt, file->salt);
  EXPECT_EQ(again->nonce, file->nonce);
}

TEST(SealKat, GoldenSealedObjectOpens) {
  // kat_vectors.py: "CKSL", version 1, nonce 808182..97, then PyNaCl's
  // XChaCha20-Poly1305 under the data key with AD "CKSL\x01" || name.
  const std::string sealed = Unhex(
      "434b534c01808182838485868788898a8b8c8d8e8f909192939495969775304bbc89db895af796be95f3e5d9c5"
      "0ad2144f0ae91af25ba37d92168838b039d7d7f579f62c6925f2b169dc667f406675");
  Keys keys = DeriveKeys(KatMaster());
  auto plain = Open(keys, sealed, "snapshots/snap-0123456789abcdef0.json");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(*plain, R"({"format": "cloudkeep-manifest-1"})");
  EXPECT_FALSE(Open(keys, sealed, "snapshots/snap-0123456789abcdef1.json").ok());
}

}  // namespace
}  // namespace cloudkeep::seal
