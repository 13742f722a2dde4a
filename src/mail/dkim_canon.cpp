#include "mail/dkim_canon.h"

#include <fmt/format.h>

namespace cloudkeep::mail {

namespace {

bool IsWsp(char c) {
  return c == ' ' || c == '\t';
}

std::string ToCrlf(std::string_view data, bool* had_bare_lf) {
  std::string out;
  out.reserve(data.size() + data.size() / 32);
  *had_bare_lf = false;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
      out += '\r';
      *had_bare_lf = true;
    }
    out += data[i];
  }
  return out;
}

}  // namespace

const char* DkimCanonName(DkimCanon c) {
  return c == DkimCanon::kRelaxed ? "relaxed" : "simple";
}

Result<DkimCanonPair> ParseDkimCanon(std::string_view text) {
  auto one = [](std::string_view s, DkimCanon* out) {
    if (s == "simple") {
      *out = DkimCanon::kSimple;
      return true;
    }
    if (s == "relaxed") {
      *out = DkimCanon::kRelaxed;
      return true;
    }
    return false;
  };
  DkimCanonPair p;
  size_t slash = text.find('/');
  bool ok = one(text.substr(0, slash), &p.header);
  if (ok && slash != std::string_view::npos) ok = one(text.substr(slash + 1), &p.body);
  if (!ok)
    return Status::Failure(
        fmt::format("unknown canonicalization '{}'", std::string(text.substr(0, 40))));
  return p;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Result<MailMessage> ParseMailMessage(std::string_view data) {
  MailMessage msg;
  std::string text = ToCrlf(data, &msg.unix_line_endings);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    size_t line_end = eol == std::string::npos ? text.size() : eol + 2;
    std::string_view line(text.data() + pos, line_end - pos);
    if (line == "\r\n") {
      msg.had_body_separator = true;
      pos = line_end;
      break;
    }
    if (IsWsp(line[0])) {
      if (msg.headers.empty()) return Status::Failure("message starts with a continuation line");
      msg.headers.back().raw += line;
    } else {
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0)
        return Status::Failure(
            fmt::format("malformed header line '{}'",
                        std::string(line.substr(0, std::min<size_t>(line.size(), 40)))));
      std::string_view name = line.substr(0, colon);
      while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
      msg.headers.push_back({std::string(name), std::string(line)});
    }
    pos = line_end;
  }
  // A last header line without CRLF still ends the field on the wire.
  if (!msg.headers.empty() && msg.headers.back().raw.size() >= 1 &&
      msg.headers.back().raw.compare(
          msg.headers.back().raw.size() - std::min<size_t>(2, msg.headers.back().raw.size()), 2,
          "\r\n") != 0)
    msg.headers.back().raw += "\r\n";
  if (pos < text.size()) msg.body = text.substr(pos);
  return msg;
}

std::string CanonHeader(DkimCanon c, std::string_view raw) {
  if (c == DkimCanon::kSimple) return std::string(raw);
  // §3.4.2: lower-case the name, unfold, collapse WSP runs to one SP, and
  // drop WSP at the end of the value and around the colon.
  size_t colon = raw.find(':');
  std::string_view name = raw.substr(0, colon);
  while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
  std::string out = ToLower(name);
  out += ':';
  std::string value;
  bool in_wsp = false;
  for (size_t i = colon == std::string_view::npos ? raw.size() : colon + 1; i < raw.size(); ++i) {
    char ch = raw[i];
    if (ch == '\r' || ch == '\n') continue;
    if (IsWsp(ch)) {
      in_wsp = true;
      continue;
    }
    if (in_wsp && !value.empty()) value += ' ';
    in_wsp = false;
    value += ch;
  }
  out += value;
  out += "\r\n";
  return out;
}

std::string CanonBody(DkimCanon c, std::string_view body) {
  std::string out;
  if (c == DkimCanon::kSimple) {
    out.assign(body);
    if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0))
      out += "\r\n";
    // §3.4.3: trailing empty lines go; an empty body becomes one CRLF.
    while (out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0)
      out.resize(out.size() - 2);
    if (out.empty()) out = "\r\n";
    return out;
  }
  // §3.4.4: per line, drop trailing WSP and collapse WSP runs; then drop
  // trailing empty lines. An empty body stays empty.
  out.reserve(body.size());
  size_t pos = 0;
  size_t keep = 0;  // length of `out` up to the last non-empty line
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    size_t end = eol == std::string_view::npos ? body.size() : eol;
    bool in_wsp = false;
    size_t line_start = out.size();
    for (size_t i = pos; i < end; ++i) {
      char ch = body[i];
      if (IsWsp(ch)) {
        in_wsp = true;
        continue;
      }
      if (in_wsp) out += ' ';
      in_wsp = false;
      out += ch;
    }
    bool empty_line = out.size() == line_start;
    out += "\r\n";
    if (!empty_line) keep = out.size();
    pos = eol == std::string_view::npos ? body.size() : eol + 2;
  }
  out.resize(keep);
  return out;
}

}  // namespace cloudkeep::mail
