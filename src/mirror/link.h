// Link: one authenticated, encrypted replication connection (TLS 1.3,
// OpenSSL) carrying wire.h frames.
//
// Authentication is either an external pre-shared key (RFC 8446 section
// 2.2, "psk_dhe_ke": the key from `psk_file` hashed with SHA-256, identity
// "cloudkeep-mirror:RESOURCE") or certificates (`tls_cert`, `tls_key`,
// `tls_ca`; both sides must present a certificate signed by the CA). A peer
// that cannot authenticate fails the handshake; the caller logs it.
//
// Thread safety: one thread may Recv while others Send; Send is internally
// serialized (one whole frame at a time), and every OpenSSL call on the
// connection is made under one mutex on a non-blocking socket. Shutdown()
// may be called from any thread and makes pending and later calls fail.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/fs.h"
#include "core/status.h"
#include "mirror/config.h"
#include "mirror/wire.h"

namespace cloudkeep::mirror {

// The TLS contexts of one resource, built once from its config.
class LinkAuth {
 public:
  // kUsage naming the file when a key, certificate or CA cannot be loaded.
  static Result<std::unique_ptr<LinkAuth>> Create(const ResourceConfig& cfg);
  ~LinkAuth();
  LinkAuth(const LinkAuth&) = delete;
  LinkAuth& operator=(const LinkAuth&) = delete;

  SSL_CTX* server_ctx() const { return server_; }
  SSL_CTX* client_ctx() const { return client_; }
  bool psk() const { return !psk_.empty(); }
  const std::string& identity() const { return identity_; }
  const std::vector<uint8_t>& psk_key() const { return psk_; }

 private:
  LinkAuth() = default;
  SSL_CTX* server_ = nullptr;
  SSL_CTX* client_ = nullptr;
  std::string identity_;
  std::vector<uint8_t> psk_;
};

class Link {
 public:
  // Connects to `address` and completes the TLS handshake within `timeout`.
  static Result<std::unique_ptr<Link>> Connect(const LinkAuth& auth, const std::string& address,
                                               Micros timeout);
  // Completes the server side of the handshake on an accepted socket.
  static Result<std::unique_ptr<Link>> Accept(const LinkAuth& auth, UniqueFd fd,
                                              const std::string& peer, Micros timeout);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Sends one frame; fails if the peer does not take it within `timeout`.
  Status Send(const wire::Header& h, const void* payload, Micros timeout);
  Status SendJson(wire::Type type, const Json& doc, Micros timeout, uint64_t seq = 0);
  // Sends header-only frames (acknowledgements) in one TLS record and one
  // system call: a standby that has more input waiting answers a burst of
  // writes with one segment instead of one per write.
  Status SendHeaders(const std::vector<wire::Header>& frames, Micros timeout);
  // Reads one frame; fails when nothing arrives for `idle_timeout` (the message says "timed out").
  Status Recv(wire::Header* h, std::vector<uint8_t>* payload, Micros idle_timeout);
  // True when more input is already here: decrypted and unread, or in the
  // socket's receive buffer. Call from the receiving thread only.
  bool InputWaiting();
  void Shutdown();
  bool closed() const { return closed_; }
  const std::string& peer() const { return peer_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  std::string Cipher() const;

 private:
  Link() = default;
  Status Handshake(bool server, Micros timeout);
  Status WriteAll(const uint8_t* p, size_t n, std::chrono::steady_clock::time_point deadline);
  Status ReadExact(uint8_t* p, size_t n, Micros idle_timeout);

  UniqueFd fd_;
  SSL* ssl_ = nullptr;
  std::string peer_;
  std::mutex ssl_mu_;
  std::mutex send_mu_;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
  std::vector<uint8_t> rbuf_ = std::vector<uint8_t>(256 * 1024);
  size_t rpos_ = 0, rlen_ = 0;
};

// The OpenSSL error queue as one line (and cleared).
std::string TlsErrors();

}  // namespace cloudkeep::mirror
