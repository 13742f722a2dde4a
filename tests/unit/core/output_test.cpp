#include "core/output.h"

#include <gtest/gtest.h>

namespace cloudkeep {
namespace {

TEST(Table, AlignsColumnsAndRightAlignsNumbers) {
  Table t({"NAME", "SIZE"}, {Table::Align::kLeft, Table::Align::kRight});
  t.AddRow({"a", "1"});
  t.AddRow({"longer", "1000"});
  EXPECT_EQ(t.Render(), "NAME    SIZE\na          1\nlonger  1000\n");
}

TEST(Table, CountsUtf8CharactersNotBytes) {
  Table t({"RTT", "X"});
  t.AddRow({"87µs", "y"});
  EXPECT_EQ(t.Render(), "RTT   X\n87µs  y\n");
}

TEST(FormatBytes, BinaryUnits) {
  EXPECT_EQ(FormatBytes(17), "17 B");
  EXPECT_EQ(FormatBytes(512 * 1024), "512 KiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3.00 GiB");
}

}  // namespace
}  // namespace cloudkeep
