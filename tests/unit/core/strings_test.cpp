#include "core/strings.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

TEST(Strings, AsciiLowerTouchesOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("Content-Type: X-AMZ-Date 42"), "content-type: x-amz-date 42");
  // UTF-8 bytes (here "Ä") pass through, whatever the locale.
  EXPECT_EQ(AsciiLower("\xC3\x84Z"), "\xC3\x84z");
  EXPECT_EQ(AsciiLower(""), "");
}

TEST(Strings, EqualsIgnoreCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Example.COM", "example.com"));
  EXPECT_FALSE(EqualsIgnoreCase("example.com", "example.co"));
  EXPECT_FALSE(EqualsIgnoreCase("a", "b"));
}

TEST(Strings, TrimRemovesAsciiSpaceAtBothEndsOnly) {
  EXPECT_EQ(Trim("  \tkey = value \r\n"), "key = value");
  EXPECT_EQ(Trim(" \t\r\n"), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("x"), "x");
  EXPECT_EQ(TrimView("--a-b--", "-"), "a-b");
  // Only the given characters: a form feed is kept by the default set.
  EXPECT_EQ(Trim("\fa\f"), "\fa\f");
}

TEST(Strings, SplitKeepsEmptyFields) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(Split(",", ','), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(Split("v=DMARC1; p=none", ';'), (std::vector<std::string>{"v=DMARC1", " p=none"}));
}

TEST(Strings, JoinPutsTheSeparatorBetweenOnly) {
  EXPECT_EQ(Join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(Join({"a"}, ", "), "a");
  EXPECT_EQ(Join({}, ", "), "");
  EXPECT_EQ(Join({"", ""}, "/"), "/");
}

TEST(Strings, SplitThenJoinIsTheIdentity) {
  for (std::string s : {"", "a", "a,b", ",a,", ",,"}) EXPECT_EQ(Join(Split(s, ','), ","), s);
}

}  // namespace
}  // namespace cloudkeep
