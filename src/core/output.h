// Results on stdout: a readable table by default, exactly one JSON document
// with --json (docs/design.md "Output"). Commands build both from the same data
// and call Emit once.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cloudkeep {

using Json = nlohmann::ordered_json;

// A plain-text table: a header row, aligned columns, numbers right-aligned.
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
// Prints text as is on stdout.
void PrintText(const std::string& text);

// "1.5 GiB", "512 KiB", "17 B".
std::string FormatBytes(uint64_t bytes);
// Microseconds as "87us" or "1.23ms" — whichever reads best.
std::string FormatMicrosHuman(double us);

}  // namespace cloudkeep
