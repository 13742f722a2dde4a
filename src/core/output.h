// Results on stdout: a readable table by default, exactly one JSON document
// with --json (docs/design.md "Output"). Commands build both from the same data
// and call Emit once.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cloudkeep {

using Json = nlohmann::ordered_json;

// Terminal-safe text. Anything that came from outside (a responder's name, a
// DNS TXT string, an SMTP reply, a mail header, a tag, a file name) may hold
// bytes that a terminal obeys: ESC sequences that move the cursor, retitle
// the window or rewrite what was printed before. EscapeControl returns `s`
// with every such byte made visible, and keeps printable UTF-8 as it is:
//   - C0 controls and DEL: \n, \r, \t, else \xNN (ESC is \x1b);
//   - C1 controls (U+0080 … U+009F) and the bidirectional overrides and
//     isolates (U+202A … U+202E, U+2066 … U+2069, which reorder what is shown):
//     \uNNNN;
//   - bytes that are not well-formed UTF-8 (stray continuation bytes,
//     truncated, overlong, surrogates, above U+10FFFF): \xNN each.
// A backslash is kept as it is, so escaping twice changes nothing (the table
// renderer escapes cells that a caller may already have escaped).
std::string EscapeControl(std::string_view s);
// The same, but newlines and tabs pass through: for multi-line text that the
// program laid out itself (PrintText).
std::string EscapeText(std::string_view s);
// Columns that `s` takes on a terminal: East Asian Wide and Fullwidth
// characters count 2, combining marks and other zero-width characters 0,
// everything else 1 — as wcwidth(3) would in a UTF-8 locale, but without
// depending on the locale (see output.cpp). Pass text that EscapeControl
// already made safe; a control or invalid byte counts 1.
size_t DisplayWidth(std::string_view s);

// A plain-text table: a header row, aligned columns, numbers right-aligned.
// Every cell (headers too) is printed through EscapeControl and padded by
// DisplayWidth, so call sites may put untrusted strings in cells as they are.
class Table {
 public:
  enum class Align { kLeft, kRight };
  explicit Table(std::vector<std::string> headers, std::vector<Align> align = {});
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// Prints a JSON document followed by a newline on stdout.
void PrintJson(const Json& doc);
// True once PrintJson ran: a failing command that already printed its
// report must not print a second document.
bool JsonPrinted();
// Prints text on stdout through EscapeText: the layout (newlines, tabs) as
// is, any other control character or invalid UTF-8 escaped.
void PrintText(const std::string& text);

// "1.5 GiB", "512 KiB", "17 B".
std::string FormatBytes(uint64_t bytes);
// Microseconds as "87us" or "1.23ms" — whichever reads best.
std::string FormatMicrosHuman(double us);

}  // namespace cloudkeep
