// The mesh peers file (docs/design.md "Mesh peers file"): who takes part in a
// mesh, where its responder listens and which availability zone it is in.
//
//   CSV:  name,address,zone            TOML:  token = "…"        (optional)
//         web-1,10.0.1.5:7470,use1-az1        [[peer]]
//         db-1,[fd00::5]:7470,use1-az2        name = "web-1"
//                                             address = "10.0.1.5:7470"
//                                             zone = "use1-az1"
//
// Blank lines and lines starting with '#' are ignored in CSV; fields may be
// double-quoted (RFC 4180 section 2). Every error names the file and line.
// Names must be unique, and so must addresses.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "latency/net.h"

namespace cloudkeep::latency {

struct Peer {
  std::string name;
  std::string address;  // as written, "HOST:PORT"
  HostPort hostport;
  std::string zone;
  int line = 0;
};

struct PeersFile {
  std::vector<Peer> peers;
  std::string token;  // TOML `token`, empty if absent
};

// `source` names the file in errors. The format is TOML when the name ends
// in ".toml" or the first meaningful line is not the CSV header.
Result<PeersFile> ParsePeers(std::string_view text, const std::string& source);
Result<PeersFile> LoadPeers(const std::string& path);

// The mesh token: --token-file wins, then `from_env` ($CLOUDKEEP_MESH_TOKEN,
// read by core/env), then the peers file's `token`. Surrounding whitespace (a
// trailing newline) is dropped.
Result<std::string> LoadToken(const std::string& token_file, const std::string& from_env,
                              const std::string& from_peers);

}  // namespace cloudkeep::latency
