// SmtpClient: one SMTP session to a server, for audits that must never send mail.
//
// Speaks enough of RFC 5321 to probe a server: the greeting, EHLO (with the
// extension list), STARTTLS (RFC 3207) through OpenSSL with the certificate
// checked against the host name, MAIL, RCPT, RSET, NOOP and QUIT. DATA, BDAT
// and every other verb are refused by the client itself, so no code path here
// can hand a message to a server. Every command sent is kept in a transcript.
// Every wait (connect, each reply, the TLS handshake) is bounded by the
// per-reply timeout and by the caller's overall deadline, whichever is first.
//
// Thread safety: one session per object; not safe for concurrent use.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/deadline.h"
#include "core/fs.h"
#include "core/status.h"
#include "mail/smtp_reply.h"

namespace cloudkeep::mail {

struct SmtpEndpoint {
  std::string host;     // the name the server should present (EHLO, certificate)
  std::string address;  // IP to connect to; empty: resolve `host` with getaddrinfo
  uint16_t port = 25;
};

// "HOST", "HOST:PORT", "[V6]:PORT", "V6"; kUsage naming the value when bad.
Result<SmtpEndpoint> ParseSmtpEndpoint(const std::string& text, uint16_t default_port = 25);

struct SmtpOptions {
  int timeout_ms =
      10000;            // for a whole reply (connect, greeting, each reply), however it trickles in
  std::string ca_file;  // extra trust anchors for certificate checks (tests); empty: system store
  // The whole conversation ends by then: each wait is clamped to what is
  // left, and once it has passed no command is sent (QUIT aside).
  Deadline deadline = Deadline::Never();
};

struct TlsResult {
  bool offered = false;      // STARTTLS in the EHLO reply
  bool established = false;  // handshake completed
  std::string version;       // "TLSv1.3"
  std::string cipher;
  bool certificate_valid = false;  // chain verifies and the name matches the host
  std::string certificate_error;   // OpenSSL's words when not valid
  std::string error;               // why the handshake failed
  // The handshake was cut short by the caller's deadline: a fact about the
  // probe, not about the server's TLS.
  bool deadline_reached = false;
};

class SmtpClient {
 public:
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Connects and reads the greeting (RFC 5321 §3.1); a non-220 greeting is
  // returned as a session, not an error, so that the caller can report it.
  static Result<std::unique_ptr<SmtpClient>> Connect(const SmtpEndpoint& endpoint,
                                                     const SmtpOptions& options);

  const SmtpReply& greeting() const { return greeting_; }
  const std::string& peer_address() const { return peer_; }
  // EHLO, falling back to HELO when EHLO is rejected (§4.1.4).
  Result<SmtpReply> Hello(const std::string& name);
  // The extension keywords of the last EHLO reply, upper case ("STARTTLS", "SIZE").
  const std::vector<std::string>& extensions() const { return extensions_; }
  bool HasExtension(const std::string& keyword) const;
  // STARTTLS and the handshake; on success EHLO must be sent again (§4.2 of RFC 3207).
  TlsResult StartTls(const std::string& verify_host);
  bool tls() const { return ssl_ != nullptr; }

  // Sends one command line and reads its reply. Only EHLO, HELO, MAIL, RCPT,
  // RSET, NOOP and QUIT are allowed: anything else, DATA above all, is refused.
  Result<SmtpReply> Command(const std::string& line);
  // QUIT, ignoring a missing answer: the session is over either way. Past
  // the deadline QUIT is still sent, but its answer is not waited for.
  void Quit();

  // Every command line sent, in order (without CRLF).
  const std::vector<std::string>& transcript() const { return transcript_; }

 private:
  SmtpClient() = default;
  Status SendLine(const std::string& line);
  Result<SmtpReply> ReadReply();
  Result<size_t> ReadSome(char* buf, size_t n);
  Status Handshake();
  // Why a wait for `what` ended: the deadline, or the per-reply timeout.
  Status TimedOut(const std::string& what) const;

  UniqueFd fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  SmtpOptions options_;
  std::string peer_;
  SmtpReply greeting_;
  SmtpReplyParser parser_;
  std::vector<std::string> extensions_;
  std::vector<std::string> transcript_;
  bool closed_ = false;
};

}  // namespace cloudkeep::mail
