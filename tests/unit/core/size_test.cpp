#include "core/size.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

TEST(ParseByteSize, UnitsArePowersOf1024) {
  EXPECT_EQ(*ParseByteSize("4096", "--x"), 4096u);
  EXPECT_EQ(*ParseByteSize("512K", "--x"), 512u * 1024);
  EXPECT_EQ(*ParseByteSize("256M", "--x"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("256MiB", "--x"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("2gb", "--x"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("1.5G", "--x"), 3ull << 29);
  EXPECT_EQ(*ParseByteSize("1T", "--x"), 1ull << 40);
  EXPECT_EQ(*ParseByteSize("0", "--x"), 0u);
}

TEST(ParseByteSize, BadValuesNameTheFlagAndTheText) {
  for (const char* bad : {"", "M", "12Q", "1.5", "-1", "1..2M", "99999999999P", "5 M"}) {
    auto r = ParseByteSize(bad, "--cache-size");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kUsage);
    EXPECT_NE(r.status().message().find("--cache-size"), std::string::npos);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos);
  }
}

}  // namespace
}  // namespace cloudkeep
