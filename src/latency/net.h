// The latency module's addresses: core/net.h with the responder's default
// port (docs/latency-wire-format.md).
#pragma once

#include "core/net.h"

namespace cloudkeep::latency {

inline constexpr uint16_t kDefaultPort = 7470;

using cloudkeep::ConnectTcp;
using cloudkeep::HostPort;
using cloudkeep::MonoNs;
using cloudkeep::ReadFull;
using cloudkeep::RealNs;
using cloudkeep::Resolve;
using cloudkeep::SetSocketTimeouts;
using cloudkeep::SockAddr;
using cloudkeep::WriteFull;

inline Result<HostPort> ParseHostPort(const std::string& text, const std::string& what,
                                      bool allow_port_zero = false) {
  return cloudkeep::ParseHostPort(text, what, kDefaultPort, allow_port_zero);
}

}  // namespace cloudkeep::latency
