// The password source: --password-file, then CLOUDKEEP_PASSWORD_FILE; the
// trailing newline; every bad file a one-line usage error naming it.
#include "seal/password.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace cloudkeep::seal {
namespace {

class PasswordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ck-seal-password-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& p : files_) unlink(p.c_str());
    rmdir((dir_ + "/subdir").c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    files_.push_back(path);
    return path;
  }
  // The environment as the test gives it, never the process's.
  EnvLookup Env(std::map<std::string, std::string> vars) {
    env_ = std::move(vars);
    return [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
  }
  void ExpectUsage(const Result<std::string>& r, const std::string& message) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kUsage);
    EXPECT_EQ(r.status().message(), message);
  }

  std::string dir_;
  std::vector<std::string> files_;
  std::map<std::string, std::string> env_;
};

TEST_F(PasswordTest, FromTheFlag) {
  auto r = ReadPassword(Write("pw", "s3cret\n"), Env({}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "s3cret");
}

TEST_F(PasswordTest, FromTheEnvironment) {
  auto r = ReadPassword(std::nullopt, Env({{"CLOUDKEEP_PASSWORD_FILE", Write("pw", "from env")}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "from env");
}

TEST_F(PasswordTest, TheFlagWinsOverTheEnvironment) {
  auto r = ReadPassword(Write("flag", "flag\n"),
                        Env({{"CLOUDKEEP_PASSWORD_FILE", Write("env", "env\n")}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "flag");
}

TEST_F(PasswordTest, OnlyOneTrailingNewlineIsStripped) {
  const std::pair<std::string, std::string> kCases[] = {
      {"pw\n", "pw"},       {"pw\r\n", "pw"},           {"pw", "pw"},
      {"pw\n\n", "pw\n"},   {" pw \n", " pw "},         {"two\nlines\n", "two\nlines"},
      {"tab\t\n", "tab\t"}, {"\xc3\xa4\n", "\xc3\xa4"},
  };
  int i = 0;
  for (const auto& [bytes, password] : kCases) {
    auto r = ReadPassword(Write("pw" + std::to_string(i++), bytes), Env({}));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(*r, password);
  }
}

TEST_F(PasswordTest, EmptyFilesAreRefused) {
  for (const std::string bytes : {"", "\n", "\r\n"}) {
    std::string path = Write("empty" + std::to_string(bytes.size()), bytes);
    ExpectUsage(ReadPassword(path, Env({})), "password file " + path + " is empty");
  }
}

TEST_F(PasswordTest, UnreadableFilesAreRefusedNamingTheFile) {
  std::string missing = dir_ + "/missing";
  ExpectUsage(ReadPassword(missing, Env({})),
              "cannot read password file " + missing + ": No such file or directory");
  ExpectUsage(ReadPassword(std::nullopt, Env({{"CLOUDKEEP_PASSWORD_FILE", missing}})),
              "cannot read password file " + missing + ": No such file or directory");
  std::string sub = dir_ + "/subdir";
  ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
  ExpectUsage(ReadPassword(sub, Env({})), "cannot read password file " + sub + ": Is a directory");
  if (geteuid() != 0) {  // root reads mode 0000 files
    std::string locked = Write("locked", "pw");
    ASSERT_EQ(chmod(locked.c_str(), 0), 0);
    ExpectUsage(ReadPassword(locked, Env({})),
                "cannot read password file " + locked + ": Permission denied");
  }
}

TEST_F(PasswordTest, LargeFilesAreNotPasswords) {
  EXPECT_TRUE(ReadPassword(Write("max", std::string(kMaxPasswordFileBytes, 'x')), Env({})).ok());
  std::string big = Write("big", std::string(kMaxPasswordFileBytes + 1, 'x'));
  ExpectUsage(ReadPassword(big, Env({})),
              "password file " + big + " is larger than 4096 bytes: not a password");
  ExpectUsage(ReadPassword(std::string("/dev/zero"), Env({})),
              "password file /dev/zero is larger than 4096 bytes: not a password");
}

TEST_F(PasswordTest, NoSourceIsAUsageError) {
  const std::string kNone =
      "no password: give --password-file FILE or set CLOUDKEEP_PASSWORD_FILE (never a "
      "command-line argument)";
  ExpectUsage(ReadPassword(std::nullopt, Env({})), kNone);
  ExpectUsage(ReadPassword(std::nullopt, Env({{"CLOUDKEEP_PASSWORD_FILE", ""}})), kNone);
  ExpectUsage(ReadPassword(std::string(""), Env({})), "invalid --password-file '': a file name");
}

}  // namespace
}  // namespace cloudkeep::seal
