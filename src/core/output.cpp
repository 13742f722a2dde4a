#include "core/output.h"

#include <fmt/format.h>

#include <cstdio>

namespace cloudkeep {

namespace {
// Display width of a UTF-8 string: count code points, not bytes ("µs").
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

Table::Table(std::vector<std::string> headers, std::vector<Align> align)
    : headers_(std::move(headers)), align_(std::move(align)) {
  align_.resize(headers_.size(), Align::kLeft);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) width[c] = Width(headers_[c]);
  for (const auto& row : rows_)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], Width(row[c]));
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t c = 0; c < cells.size(); ++c) {
      size_t pad = width[c] - Width(cells[c]);
      bool last = c + 1 == cells.size();
      if (align_[c] == Align::kRight) {
        l += std::string(pad, ' ') + cells[c];
      } else {
        l += cells[c];
        if (!last) l += std::string(pad, ' ');
      }
      if (!last) l += "  ";
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
  return out;
}

namespace {
bool g_json_printed = false;
}  // namespace

bool JsonPrinted() {
  return g_json_printed;
}

void PrintJson(const Json& doc) {
  g_json_printed = true;
  std::string s = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void PrintText(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : (v < 100 ? 1 : 0), kUnits[u]);
}

std::string FormatMicrosHuman(double us) {
  if (us < 1000) return fmt::format("{:.0f}µs", us);
  if (us < 1e6) return fmt::format("{:.2f}ms", us / 1000);
  return fmt::format("{:.2f}s", us / 1e6);
}

}  // namespace cloudkeep
