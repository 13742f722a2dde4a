#include "latency/peers.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <set>

#include "core/fs.h"
#include "core/output.h"
#include "core/strings.h"
#include "latency/wire.h"

namespace cloudkeep::latency {

namespace {

Status LineError(const std::string& source, int line, const std::string& msg) {
  return Status::Usage(source + ":" + std::to_string(line) + ": " + msg);
}

// RFC 4180 fields on one line (no embedded newlines: peer fields never need them).
Result<std::vector<std::string>> SplitCsv(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  for (;;) {
    cur.clear();
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i < line.size() && line[i] == '"') {
      i++;
      for (;;) {
        if (i >= line.size()) return Status::Usage("unterminated quoted field");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cur += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cur += line[i++];
      }
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
      if (i < line.size() && line[i] != ',') return Status::Usage("text after a quoted field");
    } else {
      while (i < line.size() && line[i] != ',') cur += line[i++];
      if (cur.find('"') != std::string::npos)
        return Status::Usage("a quote inside an unquoted field");
      cur = Trim(cur);
    }
    out.push_back(cur);
    if (i >= line.size()) break;
    i++;  // the comma
  }
  return out;
}

Status CheckPeer(Peer& p, const std::string& source) {
  auto bad = [&](const std::string& m) { return LineError(source, p.line, m); };
  if (p.name.empty()) return bad("peer has an empty name");
  if (p.zone.empty()) return bad("peer '" + p.name + "' has an empty zone");
  if (p.address.empty()) return bad("peer '" + p.name + "' has an empty address");
  // The same rule as for what an agent announces (wire::ValidateIdentity).
  for (auto [what, s] : {std::pair{"name", &p.name}, {"zone", &p.zone}}) {
    std::string problem = wire::IdentityTextProblem(*s);
    if (!problem.empty())
      return bad(std::string("peer ") + what + " '" + EscapeControl(*s) + "' " + problem);
  }
  if (p.name.size() + p.zone.size() > wire::kMaxIdentity)
    return bad("peer '" + p.name + "' and zone '" + p.zone + "' are " +
               std::to_string(p.name.size() + p.zone.size()) + " bytes together; at most " +
               std::to_string(wire::kMaxIdentity) + " fit the wire format");
  auto hp = ParseHostPort(p.address, "address");
  if (!hp.ok()) return bad(hp.status().message());
  p.hostport = *hp;
  return Status::Ok();
}

Status CheckUnique(const std::vector<Peer>& peers, const std::string& source) {
  std::set<std::string> names, addrs;
  for (const auto& p : peers) {
    if (!names.insert(p.name).second)
      return LineError(source, p.line, "duplicate peer name '" + p.name + "'");
    if (!addrs.insert(p.address).second)
      return LineError(source, p.line, "duplicate peer address '" + p.address + "'");
  }
  return Status::Ok();
}

Result<PeersFile> ParseCsv(std::string_view text, const std::string& source) {
  PeersFile out;
  bool header = false;
  int lineno = 0;
  size_t pos = 0;
  std::vector<int> col(3, -1);
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    lineno++;
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto fields = SplitCsv(line);
    if (!fields.ok()) return LineError(source, lineno, fields.status().message());
    if (!header) {
      for (size_t i = 0; i < fields->size(); i++) {
        const std::string& f = (*fields)[i];
        int which = f == "name" ? 0 : f == "address" ? 1 : f == "zone" ? 2 : -1;
        if (which < 0)
          return LineError(source, lineno,
                           "unknown column '" + f + "' (expected name,address,zone)");
        if (col[static_cast<size_t>(which)] >= 0)
          return LineError(source, lineno, "column '" + f + "' twice");
        col[static_cast<size_t>(which)] = static_cast<int>(i);
      }
      for (int c : col)
        if (c < 0)
          return LineError(source, lineno, "header must name the columns name,address,zone");
      header = true;
      continue;
    }
    if (fields->size() != 3)
      return LineError(
          source, lineno,
          "expected 3 fields (name,address,zone), got " + std::to_string(fields->size()));
    Peer p;
    p.line = lineno;
    p.name = (*fields)[static_cast<size_t>(col[0])];
    p.address = (*fields)[static_cast<size_t>(col[1])];
    p.zone = (*fields)[static_cast<size_t>(col[2])];
    CK_RETURN_IF_ERROR(CheckPeer(p, source));
    out.peers.push_back(std::move(p));
  }
  if (!header) return Status::Usage(source + ": no header line 'name,address,zone'");
  return out;
}

Result<PeersFile> ParseToml(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& err) {
    return LineError(source, static_cast<int>(err.source().begin.line),
                     std::string(err.description()));
  }
  PeersFile out;
  for (auto&& [key, node] : root) {
    int line = static_cast<int>(node.source().begin.line);
    if (key == "token") {
      if (!node.is_string()) return LineError(source, line, "'token' must be a string");
      out.token = node.value<std::string>().value_or("");
    } else if (key != "peer") {
      return LineError(source, line,
                       "unknown key '" + std::string(key.str()) + "' (expected [[peer]] or token)");
    }
  }
  toml::node* peers = root.get("peer");
  if (!peers) return Status::Usage(source + ": no [[peer]] tables");
  toml::array* arr = peers->as_array();
  if (!arr)
    return LineError(source, static_cast<int>(peers->source().begin.line),
                     "'peer' must be [[peer]] tables");
  for (auto& el : *arr) {
    Peer p;
    p.line = static_cast<int>(el.source().begin.line);
    toml::table* t = el.as_table();
    if (!t) return LineError(source, p.line, "each peer must be a table");
    for (auto&& [key, val] : *t) {
      int line = static_cast<int>(val.source().begin.line);
      std::string k(key.str());
      std::string* dst = k == "name"      ? &p.name
                         : k == "address" ? &p.address
                         : k == "zone"    ? &p.zone
                                          : nullptr;
      if (!dst)
        return LineError(source, line,
                         "unknown peer key '" + k + "' (expected name, address, zone)");
      if (!val.is_string()) return LineError(source, line, "peer key '" + k + "' must be a string");
      *dst = val.value<std::string>().value_or("");
    }
    CK_RETURN_IF_ERROR(CheckPeer(p, source));
    out.peers.push_back(std::move(p));
  }
  return out;
}

}  // namespace

Result<PeersFile> ParsePeers(std::string_view text, const std::string& source) {
  bool toml = source.ends_with(".toml");
  if (!toml && !source.ends_with(".csv")) {
    // Sniff: the first meaningful line of a CSV peers file is its header.
    size_t pos = 0;
    toml = true;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string line =
          Trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
      pos = nl == std::string_view::npos ? text.size() : nl + 1;
      if (line.empty() || line[0] == '#') continue;
      toml = line.find(',') == std::string::npos;
      break;
    }
  }
  Result<PeersFile> out = toml ? ParseToml(text, source) : ParseCsv(text, source);
  if (!out.ok()) return out;
  if (out->peers.empty()) return Status::Usage(source + ": no peers");
  CK_RETURN_IF_ERROR(CheckUnique(out->peers, source));
  return out;
}

Result<PeersFile> LoadPeers(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok())
    return Status::Usage("cannot read peers file '" + path + "': " + text.status().message());
  return ParsePeers(*text, path);
}

Result<std::string> LoadToken(const std::string& token_file, const std::string& from_env,
                              const std::string& from_peers) {
  if (!token_file.empty()) {
    auto text = ReadFile(token_file);
    if (!text.ok())
      return Status::Usage("cannot read --token-file '" + token_file +
                           "': " + text.status().message());
    std::string t = Trim(*text);
    if (t.empty()) return Status::Usage("--token-file '" + token_file + "' is empty");
    return t;
  }
  if (!from_env.empty()) return Trim(from_env);
  return Trim(from_peers);
}

}  // namespace cloudkeep::latency
