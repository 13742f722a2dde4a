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

TEST(EscapeControl, KeepsPrintableUtf8) {
  EXPECT_EQ(EscapeControl("web-1 (use1-az1) 87µs 東京 café \\x1b"),
            "web-1 (use1-az1) 87µs 東京 café \\x1b");
  EXPECT_EQ(EscapeControl(""), "");
}

TEST(EscapeControl, EscapesC0AndDel) {
  EXPECT_EQ(EscapeControl("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
  EXPECT_EQ(EscapeControl("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(EscapeControl(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(EscapeControl("\x7f"), "\\x7f");
}

TEST(EscapeControl, EscapesC1AndBidiOverrides) {
  EXPECT_EQ(EscapeControl("\xc2\x9b"
                          "2J"),
            "\\u009b2J");  // U+009B CSI
  EXPECT_EQ(EscapeControl("\xc2\x85"), "\\u0085");
  EXPECT_EQ(EscapeControl("abc\xe2\x80\xae"
                          "def"),
            "abc\\u202edef");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(EscapeControl("\xe2\x81\xa6"), "\\u2066");
}

TEST(EscapeControl, EscapesInvalidUtf8ByteByByte) {
  EXPECT_EQ(EscapeControl("\x9b"
                          "2J"),
            "\\x9b2J");                                                  // a lone 8-bit CSI
  EXPECT_EQ(EscapeControl("a\xff\xfe"), "a\\xff\\xfe");                  // never valid
  EXPECT_EQ(EscapeControl("\xc3"), "\\xc3");                             // truncated
  EXPECT_EQ(EscapeControl("\xc3(x"), "\\xc3(x");                         // bad continuation
  EXPECT_EQ(EscapeControl("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(EscapeControl("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");           // overlong
  EXPECT_EQ(EscapeControl("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate
  EXPECT_EQ(EscapeControl("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
  EXPECT_EQ(EscapeControl("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");      // U+1F600 kept
}

TEST(EscapeControl, IsIdempotent) {
  std::string once = EscapeControl("\x1b[2J\xff\xc2\x9b\n");
  EXPECT_EQ(EscapeControl(once), once);
}

TEST(EscapeText, KeepsNewlinesAndTabsOnly) {
  EXPECT_EQ(EscapeText("a\tb\nc\x1b[31m\r\n"), "a\tb\nc\\x1b[31m\\r\n");
}

TEST(DisplayWidth, CountsColumns) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("87µs"), 4u);
  EXPECT_EQ(DisplayWidth("東京"), 4u);       // CJK: wide
  EXPECT_EQ(DisplayWidth("ｗｅｂ"), 6u);     // fullwidth forms
  EXPECT_EQ(DisplayWidth("한국"), 4u);       // Hangul syllables
  EXPECT_EQ(DisplayWidth("e\xcc\x81"), 1u);  // e + COMBINING ACUTE ACCENT
  EXPECT_EQ(DisplayWidth("a\xe2\x80\x8b"
                         "b"),
            2u);                                    // ZERO WIDTH SPACE
  EXPECT_EQ(DisplayWidth("\xf0\x9f\x98\x80"), 2u);  // emoji presentation: wide
  EXPECT_EQ(DisplayWidth("\xf0\xa0\x80\x80"), 2u);  // U+20000, CJK Extension B
  EXPECT_EQ(DisplayWidth("\xff"), 1u);
}

TEST(Table, PadsByDisplayWidth) {
  Table t({"NAME", "ZONE"});
  t.AddRow({"東京", "z"});
  t.AddRow({"e\xcc\x81t\xc3\xa9", "z"});  // "été" with one combining accent
  t.AddRow({"abcdef", "z"});
  EXPECT_EQ(t.Render(),
            "NAME    ZONE\n"
            "東京    z\n"
            "e\xcc\x81t\xc3\xa9     z\n"
            "abcdef  z\n");
}

TEST(Table, EscapesEveryCellAndPadsTheEscapedText) {
  Table t({"NAME", "X"}, {Table::Align::kLeft, Table::Align::kRight});
  t.AddRow({"\x1b[2Jevil", "\xff"});
  t.AddRow({"ok", "1"});
  std::string out = t.Render();
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out,
            "NAME            X\n"
            "\\x1b[2Jevil  \\xff\n"
            "ok              1\n");
}

TEST(FormatBytes, BinaryUnits) {
  EXPECT_EQ(FormatBytes(17), "17 B");
  EXPECT_EQ(FormatBytes(512 * 1024), "512 KiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3.00 GiB");
}

}  // namespace
}  // namespace cloudkeep
