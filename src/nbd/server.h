// Server: the NBD protocol server core (NetworkBlockDevice/nbd doc/proto.md).
//
// Serves one or more named exports, each a Backend, over TCP and/or a Unix
// socket: fixed newstyle handshake only (no oldstyle, no TLS — bind to
// loopback or a Unix socket; the mirror encrypts its own replication link),
// structured replies, base:allocation, pipelined requests answered out of
// order. A connection has one reader thread and a small pool of workers; a
// client that misbehaves is answered with an error or disconnected, and
// never affects another connection.
//
// Thread safety: Start() returns a running server; Stop() may be called from
// any thread (also a signal-handling thread) and is idempotent; Wait() blocks
// until the server has stopped and every connection thread has ended.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/status.h"
#include "nbd/backend.h"

namespace cloudkeep::nbd {

// The IANA port of NBD (proto.md, "Newstyle negotiation").
constexpr uint16_t kDefaultPort = 10809;

struct Export {
  std::string name;  // "" is the default export
  std::string description;
  std::shared_ptr<Backend> backend;
};

struct ServerOptions {
  // "ADDR:PORT", "[V6]:PORT"; empty list and empty unix_socket: 127.0.0.1:10809.
  std::vector<std::string> listen;
  std::string unix_socket;       // removed at Stop()
  size_t max_connections = 256;  // further clients are closed at once (logged once a second)
  Micros handshake_timeout =
      std::chrono::seconds(10);  // a client that does not reach transmission in time is dropped
  Micros reply_timeout =
      std::chrono::seconds(60);  // a client that does not read replies for this long is dropped
  unsigned workers_per_connection = 16;  // requests in flight per connection
  bool read_only = false;                // force read-only even if the backend is writable
};

struct ServerStats {
  uint64_t connections_total = 0;
  uint64_t connections_open = 0;
  uint64_t connections_refused = 0;  // over max_connections
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;  // requests answered with an error
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// The live counters behind ServerStats, updated by every connection.
struct ServerCounters {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> errors_total{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};
  ServerStats Snapshot() const;
};

class Server {
 public:
  // Binds every listener (kUsage for a malformed address, kFailure if it
  // cannot bind) and starts accepting.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, std::vector<Export> exports);
  ~Server();  // Stop() and Wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Stop();
  void Wait();
  // Addresses actually bound ("127.0.0.1:10809", "unix:/run/x.sock"), port 0 resolved.
  std::vector<std::string> Addresses() const;
  ServerStats Stats() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Serves one already-connected client on `fd` in the calling thread, from
// the handshake until it disconnects (or `stop` becomes true and the socket
// is shut down). The server runs this per connection; the fuzz targets and
// unit tests call it on one end of a socketpair.
void ServeConnection(int fd, const std::vector<Export>& exports, const ServerOptions& options,
                     const std::atomic<bool>& stop, ServerCounters* counters);

}  // namespace cloudkeep::nbd
