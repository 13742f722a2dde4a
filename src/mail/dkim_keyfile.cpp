#include "mail/dkim_keyfile.h"

#include <fmt/format.h>

#include <sstream>
#include <vector>

#include "mail/dkim_canon.h"

namespace cloudkeep::mail {

namespace {

// Splits a zone entry into tokens; quoted strings keep their content (with
// \" and \\ unescaped) and are marked by a leading '"'.
std::vector<std::string> Tokens(const std::string& entry, bool* ok) {
  std::vector<std::string> out;
  *ok = true;
  size_t i = 0;
  while (i < entry.size()) {
    char c = entry[i];
    if (c == ' ' || c == '\t' || c == '(' || c == ')' || c == '\r' || c == '\n') {
      ++i;
      continue;
    }
    if (c == ';') {
      while (i < entry.size() && entry[i] != '\n') ++i;
      continue;
    }
    if (c == '"') {
      std::string s = "\"";
      ++i;
      while (i < entry.size() && entry[i] != '"') {
        if (entry[i] == '\\' && i + 1 < entry.size()) ++i;
        s += entry[i++];
      }
      if (i >= entry.size()) *ok = false;
      ++i;
      out.push_back(std::move(s));
      continue;
    }
    std::string t;
    while (i < entry.size() && entry[i] != ' ' && entry[i] != '\t' && entry[i] != '\n' &&
           entry[i] != '\r' && entry[i] != '(' && entry[i] != ')' && entry[i] != ';' &&
           entry[i] != '"')
      t += entry[i++];
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<StaticResolver>> LoadDkimKeyFile(std::string_view text) {
  auto resolver = std::make_unique<StaticResolver>();
  std::istringstream in{std::string(text)};
  std::string line, entry;
  int depth = 0;
  int line_no = 0, entry_line = 0;
  size_t records = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (entry.empty()) entry_line = line_no;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ';' && !quoted) break;
      if (!quoted && c == '(') ++depth;
      if (!quoted && c == ')') --depth;
    }
    entry += line + "\n";
    if (depth > 0) continue;
    depth = 0;
    bool ok = true;
    std::vector<std::string> tok = Tokens(entry, &ok);
    entry.clear();
    if (tok.empty()) continue;
    if (!ok)
      return Status::Usage(fmt::format("key file line {}: unterminated quoted string", entry_line));
    size_t txt = 1;
    while (txt < tok.size() && !EqualsIgnoreCase(tok[txt], "TXT")) ++txt;
    if (txt >= tok.size()) continue;  // not a TXT record: SOA, NS, … are not ours to read
    std::string value;
    for (size_t i = txt + 1; i < tok.size(); ++i) {
      if (tok[i].empty() || tok[i][0] != '"')
        return Status::Usage(
            fmt::format("key file line {}: TXT data '{}' is not quoted", entry_line, tok[i]));
      value += tok[i].substr(1);
    }
    std::string name = tok[0];
    if (!name.empty() && name.back() == '.') name.pop_back();
    resolver->Add(name, RrType::kTXT, value);
    ++records;
  }
  if (records == 0) return Status::Usage("key file holds no TXT record");
  return resolver;
}

}  // namespace cloudkeep::mail
