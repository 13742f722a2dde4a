#include "core/env.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace cloudkeep {
namespace {

// ReadEnvironment over a map instead of the process environment.
Result<Environment> Read(const std::map<std::string, std::string>& vars) {
  return ReadEnvironment([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(Env, UnsetMeansTheDefaults) {
  auto e = Read({});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->threads, 0);
  EXPECT_FALSE(e->reread);
  EXPECT_EQ(e->test_pause_frozen, Micros(0));
  EXPECT_EQ(e->aws_by_id_dir, "");
  EXPECT_EQ(e->mesh_token, "");
}

TEST(Env, ValuesAreParsed) {
  auto e = Read({{"CLOUDKEEP_THREADS", "8"},
                 {"CLOUDKEEP_REREAD", ""},  // set, even empty
                 {"CLOUDKEEP_TEST_PAUSE_FROZEN_MS", "1500"},
                 {"CLOUDKEEP_AWS_BY_ID_DIR", "/tmp/by-id"},
                 {"CLOUDKEEP_MESH_TOKEN", " s3cret\n"}});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->threads, 8);
  EXPECT_TRUE(e->reread);
  EXPECT_EQ(e->test_pause_frozen, std::chrono::milliseconds(1500));
  EXPECT_EQ(e->aws_by_id_dir, "/tmp/by-id");
  EXPECT_EQ(e->mesh_token, "s3cret");
}

TEST(Env, EmptyNumbersAreUnset) {
  auto e = Read({{"CLOUDKEEP_THREADS", ""}, {"CLOUDKEEP_TEST_PAUSE_FROZEN_MS", ""}});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->threads, 0);
  EXPECT_EQ(e->test_pause_frozen, Micros(0));
}

TEST(Env, BadValuesAreUsageErrorsNamingVariableAndValue) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"CLOUDKEEP_THREADS", "many"},
                                                        {"CLOUDKEEP_THREADS", "-1"},
                                                        {"CLOUDKEEP_THREADS", "4x"},
                                                        {"CLOUDKEEP_THREADS", "100000"},
                                                        {"CLOUDKEEP_TEST_PAUSE_FROZEN_MS", "1s"},
                                                        {"CLOUDKEEP_TEST_PAUSE_FROZEN_MS", "-5"}}) {
    auto e = Read({{name, value}});
    ASSERT_FALSE(e.ok()) << name << "=" << value;
    EXPECT_EQ(e.status().exit_code(), 2);
    EXPECT_NE(e.status().message().find("invalid " + name + " '" + value + "'"), std::string::npos)
        << e.status().message();
    EXPECT_EQ(e.status().message().find('\n'), std::string::npos);
  }
}

// Every variable of the table is documented in the manual's ENVIRONMENT
// section, and the test-only ones are marked so there.
TEST(Env, TheManualDocumentsEveryVariable) {
  std::ifstream in(CK_SOURCE_DIR "/docs/manual/cloudkeep.md");
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  size_t start = doc.find("\n# ENVIRONMENT\n");
  ASSERT_NE(start, std::string::npos);
  size_t end = doc.find("\n# ", start + 1);
  std::string section = doc.substr(start, end - start);
  for (const auto& v : EnvironmentVariables()) {
    std::string quoted = "`" + std::string(v.name) + "`";
    size_t at = section.find(quoted);
    ASSERT_NE(at, std::string::npos) << v.name << " is not in cloudkeep.md's ENVIRONMENT";
    if (v.test_only) {
      size_t entry_end = section.find("\n\n", at);
      EXPECT_NE(section.substr(at, entry_end - at).find("*Testing only*"), std::string::npos)
          << v.name;
    }
  }
}

}  // namespace
}  // namespace cloudkeep
