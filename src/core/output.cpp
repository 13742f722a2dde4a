#include "core/output.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

namespace cloudkeep {

namespace {

// One well-formed UTF-8 sequence at s[i]: its length (1 … 4) and code point
// in *cp, or 0 when the bytes there are not well-formed (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  char32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, v = c & 0x1F, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, v = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    v = (v << 6) | (d & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

std::string Escape(std::string_view s, bool keep_layout) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    if (cp < 0x20 || cp == 0x7F) {
      if (keep_layout && (cp == '\n' || cp == '\t'))
        out += static_cast<char>(cp);
      else if (cp == '\n')
        out += "\\n";
      else if (cp == '\r')
        out += "\\r";
      else if (cp == '\t')
        out += "\\t";
      else
        out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
    } else if ((cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
               (cp >= 0x2066 && cp <= 0x2069)) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

// Column widths by code point. Not wcwidth(3): glibc answers from the
// LC_CTYPE locale, which is "C" (or POSIX) under cron, systemd and most CI
// runners — there it returns -1 for every non-ASCII character, and tables
// printed by a cron job would be padded differently from the same command
// run by hand. These tables are fixed, generated from the Unicode data by
// unicode_width_gen.py.
struct WidthRange {
  char32_t first, last;
};
#include "core/unicode_width.inc"

template <size_t N>
bool InRanges(const WidthRange (&ranges)[N], char32_t cp) {
  const WidthRange* end = ranges + N;
  const WidthRange* it = std::upper_bound(
      ranges, end, cp, [](char32_t c, const WidthRange& r) { return c < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

size_t CodePointWidth(char32_t cp) {
  if (cp < 0x300) return cp == 0 ? 0 : 1;  // ASCII and Latin: the common case
  if (InRanges(kZeroWidth, cp)) return 0;
  if (InRanges(kWide, cp)) return 2;
  return 1;
}

}  // namespace

std::string EscapeControl(std::string_view s) {
  return Escape(s, false);
}

std::string EscapeText(std::string_view s) {
  return Escape(s, true);
}

size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      ++width;
      ++i;
      continue;
    }
    width += CodePointWidth(cp);
    i += n;
  }
  return width;
}

Table::Table(std::vector<std::string> headers, std::vector<Align> align)
    : headers_(std::move(headers)), align_(std::move(align)) {
  align_.resize(headers_.size(), Align::kLeft);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  // Escaped first, so the widths are those of what is printed.
  auto escape = [](const std::vector<std::string>& row) {
    std::vector<std::string> e;
    e.reserve(row.size());
    for (const auto& cell : row) e.push_back(EscapeControl(cell));
    return e;
  };
  std::vector<std::string> headers = escape(headers_);
  std::vector<std::vector<std::string>> rows;
  rows.reserve(rows_.size());
  for (const auto& row : rows_) rows.push_back(escape(row));
  std::vector<size_t> width(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) width[c] = DisplayWidth(headers[c]);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], DisplayWidth(row[c]));
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t c = 0; c < cells.size(); ++c) {
      size_t pad = width[c] - DisplayWidth(cells[c]);
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
  line(headers);
  for (const auto& row : rows) line(row);
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
  std::string safe = EscapeText(text);
  std::fwrite(safe.data(), 1, safe.size(), stdout);
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
