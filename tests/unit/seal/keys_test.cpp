// The key file: create, unlock, rewrap, and every malformed file refused
// with its reason. Argon2id runs at its minimum cost here (1 pass, 8 KiB);
// kat_test checks the derivation itself at real costs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "seal/seal.h"

namespace cloudkeep::seal {
namespace {

const KdfParams kFast{1, 8192};

void ExpectOneLine(const Status& s) {
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
}

TEST(Keys, CreateThenUnlockGivesTheSameKeys) {
  auto created = CreateKeys("hunter2 but longer", kFast);
  ASSERT_TRUE(created.ok()) << created.status().message();
  const std::string text = EncodeKeyFile(created->file);
  auto parsed = ParseKeyFile(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  auto keys = UnlockKeys(*parsed, "hunter2 but longer");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_TRUE(keys->master == created->keys.master);
  EXPECT_TRUE(keys->data == created->keys.data);
  EXPECT_TRUE(keys->chunk_id == created->keys.chunk_id);
  // What one sealed, the other opens.
  auto opened = Open(*keys, Seal(created->keys, "payload", "snapshots/a.json"), "snapshots/a.json");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "payload");
  // The master key is not in the file in the clear.
  std::string master_hex;
  for (uint8_t b : created->keys.master.bytes) master_hex += fmt::format("{:02x}", b);
  EXPECT_EQ(text.find(master_hex), std::string::npos);
}

TEST(Keys, TwoStoresGetDifferentMasterKeysAndSalts) {
  auto a = CreateKeys("same password", kFast);
  auto b = CreateKeys("same password", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->keys.master == b->keys.master);
  EXPECT_NE(a->file.salt, b->file.salt);
  EXPECT_NE(a->file.nonce, b->file.nonce);
}

TEST(Keys, WrongPasswordIsItsOwnErrorAndNotAParseError) {
  auto created = CreateKeys("right password", kFast);
  ASSERT_TRUE(created.ok());
  for (std::string_view wrong :
       {"wrong password", "right passwor", "right password\n", "Right password", ""}) {
    auto keys = UnlockKeys(created->file, wrong);
    ASSERT_FALSE(keys.ok()) << wrong;
    EXPECT_EQ(keys.status().code(), Status::Code::kUsage);
    EXPECT_EQ(keys.status().message(), "wrong password: it does not unlock the store's key file");
  }
  // A damaged file is a different kind: kFailure, "key file: ...".
  auto damaged = ParseKeyFile("{\"format\": \"cloudkeep-keys-1\"");
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), Status::Code::kFailure);
  EXPECT_EQ(damaged.status().message().rfind("key file: ", 0), 0u);
}

TEST(Keys, AlteredWrappedKeyDoesNotUnlock) {
  auto created = CreateKeys("pw", kFast);
  ASSERT_TRUE(created.ok());
  for (size_t i = 0; i < created->file.wrapped_key.size(); ++i) {
    KeyFile bad = created->file;
    bad.wrapped_key[i] ^= 1;
    EXPECT_FALSE(UnlockKeys(bad, "pw").ok()) << "byte " << i;
  }
  KeyFile bad_nonce = created->file;
  bad_nonce.nonce[0] ^= 1;
  EXPECT_FALSE(UnlockKeys(bad_nonce, "pw").ok());
  KeyFile bad_salt = created->file;
  bad_salt.salt[15] ^= 1;
  EXPECT_FALSE(UnlockKeys(bad_salt, "pw").ok());
  KeyFile bad_cost = created->file;
  bad_cost.kdf.opslimit = 2;
  EXPECT_FALSE(UnlockKeys(bad_cost, "pw").ok());
}

TEST(Keys, RewrapKeepsTheMasterKey) {
  auto created = CreateKeys("old password", kFast);
  ASSERT_TRUE(created.ok());
  const std::string sealed = Seal(created->keys, "data from before", "chunks/00/00");
  auto rewrapped = RewrapKeys(created->file, "old password", "new password", {2, 16384});
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status().message();
  EXPECT_EQ(rewrapped->kdf.opslimit, 2u);
  EXPECT_EQ(rewrapped->kdf.memlimit, 16384u);
  EXPECT_NE(rewrapped->salt, created->file.salt);
  auto reparsed = ParseKeyFile(EncodeKeyFile(*rewrapped));
  ASSERT_TRUE(reparsed.ok());
  auto keys = UnlockKeys(*reparsed, "new password");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_TRUE(keys->master == created->keys.master);
  auto opened = Open(*keys, sealed, "chunks/00/00");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "data from before");
  EXPECT_EQ(UnlockKeys(*reparsed, "old password").status().code(), Status::Code::kUsage);
  // The old file still opens with the old password: rewrap changes nothing in place.
  EXPECT_TRUE(UnlockKeys(created->file, "old password").ok());
}

TEST(Keys, RewrapWithTheWrongOldPasswordChangesNothing) {
  auto created = CreateKeys("old password", kFast);
  ASSERT_TRUE(created.ok());
  auto r = RewrapKeys(created->file, "not it", "new password", kFast);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "wrong password: it does not unlock the store's key file");
  auto empty = RewrapKeys(created->file, "old password", "", kFast);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty password"), std::string::npos);
}

TEST(Keys, CreateRefusesAnEmptyPasswordAndBadCosts) {
  auto empty = CreateKeys("", kFast);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Status::Code::kUsage);
  struct Case {
    KdfParams p;
    const char* message;
  };
  const Case kCases[] = {
      {{0, 8192}, "invalid argon2id opslimit 0: a whole number from 1 to 32"},
      {{33, 8192}, "invalid argon2id opslimit 33: a whole number from 1 to 32"},
      {{1, 4096},
       "invalid argon2id memlimit 4096: a multiple of 1024 from 8192 to 4294967296 bytes"},
      {{1, 10000},
       "invalid argon2id memlimit 10000: a multiple of 1024 from 8192 to 4294967296 bytes"},
      {{1, (uint64_t{4} << 30) + 1024},
       "invalid argon2id memlimit 4294968320: a multiple of 1024 from 8192 to 4294967296 bytes"},
  };
  for (const auto& c : kCases) {
    auto r = CreateKeys("pw", c.p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kUsage);
    EXPECT_EQ(r.status().message(), c.message);
  }
  EXPECT_TRUE(ValidateKdfParams(KdfParams::Moderate()).ok());
  EXPECT_TRUE(ValidateKdfParams(KdfParams::Interactive()).ok());
}

// A valid file as JSON, to break one field at a time.
nlohmann::json ValidJson() {
  auto created = CreateKeys("pw", kFast);
  EXPECT_TRUE(created.ok());
  return nlohmann::json::parse(EncodeKeyFile(created->file));
}

TEST(Keys, MalformedFilesAreRefusedWithAReason) {
  struct Case {
    std::string text;
    std::string reason;  // the whole message after "key file: "
  };
  std::vector<Case> cases = {
      {"", "not valid JSON"},          {"{\"format\": \"cloudkeep-keys-1\",", "not valid JSON"},
      {"[1, 2]", "not a JSON object"}, {"\"cloudkeep-keys-1\"", "not a JSON object"},
      {"{}", "no 'format' field"},
  };
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = ValidJson();
    edit(j);
    return j.dump();
  };
  cases.push_back({with([](auto& j) { j["format"] = 1; }), "'format' is not a string"});
  cases.push_back(
      {with([](auto& j) { j["format"] = "cloudkeep-keys-2"; }),
       "unsupported format 'cloudkeep-keys-2' (this cloudkeep reads cloudkeep-keys-1)"});
  // A newer format is reported as such even when its fields are unknown here.
  cases.push_back(
      {with([](auto& j) {
         j["format"] = "cloudkeep-keys-9";
         j["kms"] = "arn:aws:kms:...";
       }),
       "unsupported format 'cloudkeep-keys-9' (this cloudkeep reads cloudkeep-keys-1)"});
  cases.push_back({with([](auto& j) { j["comment"] = "x"; }), "unknown field 'comment'"});
  for (const char* f : {"kdf", "opslimit", "memlimit", "salt", "cipher", "nonce", "wrapped_key"})
    cases.push_back({with([&](auto& j) { j.erase(f); }), fmt::format("no '{}' field", f)});
  cases.push_back({with([](auto& j) { j["kdf"] = "scrypt"; }),
                   "unsupported kdf 'scrypt' (this cloudkeep knows argon2id)"});
  cases.push_back({with([](auto& j) { j["kdf"] = nullptr; }), "'kdf' is not a string"});
  cases.push_back({with([](auto& j) { j["cipher"] = "aes-256-gcm"; }),
                   "unsupported cipher 'aes-256-gcm' (this cloudkeep knows xchacha20-poly1305)"});
  cases.push_back({with([](auto& j) { j["opslimit"] = "3"; }), "'opslimit' is not a whole number"});
  cases.push_back({with([](auto& j) { j["opslimit"] = -1; }), "'opslimit' is not a whole number"});
  cases.push_back(
      {with([](auto& j) { j["memlimit"] = 8192.5; }), "'memlimit' is not a whole number"});
  cases.push_back({with([](auto& j) { j["opslimit"] = 0; }),
                   "invalid argon2id opslimit 0: a whole number from 1 to 32"});
  cases.push_back({with([](auto& j) { j["memlimit"] = uint64_t{1} << 40; }),
                   "invalid argon2id memlimit 1099511627776: a multiple of 1024 from 8192 to "
                   "4294967296 bytes"});
  cases.push_back(
      {with([](auto& j) { j["salt"] = "00"; }), "salt must be 32 lower-case hex digits"});
  cases.push_back({with([](auto& j) { j["salt"] = "000102030405060708090A0B0C0D0E0F"; }),
                   "salt must be 32 lower-case hex digits"});
  cases.push_back({with([](auto& j) { j["salt"] = 5; }), "'salt' is not a string"});
  cases.push_back({with([](auto& j) { j["nonce"] = std::string(48, 'g'); }),
                   "nonce must be 48 lower-case hex digits"});
  cases.push_back({with([](auto& j) {
                     j["wrapped_key"] = j["wrapped_key"].template get<std::string>().substr(2);
                   }),
                   "wrapped_key must be 96 lower-case hex digits"});
  for (const auto& c : cases) {
    auto r = ParseKeyFile(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), Status::Code::kFailure) << c.text;
    EXPECT_EQ(r.status().message(), "key file: " + c.reason) << c.text;
    ExpectOneLine(r.status());
  }
  EXPECT_TRUE(ParseKeyFile(ValidJson().dump()).ok());
}

}  // namespace
}  // namespace cloudkeep::seal
