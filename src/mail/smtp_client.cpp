#include "mail/smtp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"

namespace cloudkeep::mail {

namespace {

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "tls handshake failed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

constexpr const char* kDeadlineReached = "the deadline was reached";

// A socket's blocking reads and writes wait at most this long (SO_RCVTIMEO,
// SO_SNDTIMEO). Never 0, which would mean no limit at all.
void SetSocketTimeouts(int fd, int ms) {
  ms = std::max(ms, 1);
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<UniqueFd> ConnectTo(const sockaddr* sa, socklen_t len, int timeout_ms,
                           const Deadline& deadline) {
  if (deadline.expired()) return Status::Failure(fmt::format("connect: {}", kDeadlineReached));
  UniqueFd fd(socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  if (connect(fd.get(), sa, len) != 0) {
    if (errno != EINPROGRESS) return Status::FromErrno("connect", errno);
    pollfd p{fd.get(), POLLOUT, 0};
    int r = poll(&p, 1, deadline.ClampMillis(timeout_ms));
    if (r == 0 && deadline.expired())
      return Status::Failure(fmt::format("connect: {}", kDeadlineReached));
    if (r == 0) return Status::Failure("connect: timed out");
    if (r < 0) return Status::FromErrno("connect", errno);
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) return Status::FromErrno("connect", err);
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  SetSocketTimeouts(fd.get(), deadline.ClampMillis(timeout_ms));
  return fd;
}

std::string AddressText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

}  // namespace

Result<SmtpEndpoint> ParseSmtpEndpoint(const std::string& text, uint16_t default_port) {
  SmtpEndpoint ep;
  ep.port = default_port;
  std::string host = text, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos)
      return Status::Usage(fmt::format("bad host '{}': missing ']'", text));
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return Status::Usage(fmt::format("bad host '{}'", text));
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  if (host.empty()) return Status::Usage(fmt::format("bad host '{}': empty name", text));
  if (!port.empty()) {
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (*end != '\0' || p < 1 || p > 65535)
      return Status::Usage(fmt::format("bad port '{}' in '{}'", port, text));
    ep.port = static_cast<uint16_t>(p);
  }
  in6_addr a6;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1)
    ep.address = host;
  ep.host = host;
  return ep;
}

SmtpClient::~SmtpClient() {
  if (ssl_) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_) SSL_CTX_free(ctx_);
}

Result<std::unique_ptr<SmtpClient>> SmtpClient::Connect(const SmtpEndpoint& endpoint,
                                                        const SmtpOptions& options) {
  std::unique_ptr<SmtpClient> c(new SmtpClient());
  c->options_ = options;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = endpoint.address.empty() ? 0 : AI_NUMERICHOST;
  addrinfo* res = nullptr;
  std::string target = endpoint.address.empty() ? endpoint.host : endpoint.address;
  int rc = getaddrinfo(target.c_str(), std::to_string(endpoint.port).c_str(), &hints, &res);
  if (rc != 0) return Status::Failure(fmt::format("smtp {}: {}", target, gai_strerror(rc)));
  Status last = Status::Failure(fmt::format("smtp {}: no address", target));
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    auto fd = ConnectTo(ai->ai_addr, ai->ai_addrlen, options.timeout_ms, options.deadline);
    if (fd.ok()) {
      c->fd_ = std::move(fd).value();
      c->peer_ = AddressText(ai->ai_addr);
      break;
    }
    last = fd.status().Annotate(
        fmt::format("smtp {} port {}", AddressText(ai->ai_addr), endpoint.port));
  }
  freeaddrinfo(res);
  if (!c->fd_.valid()) return last;
  CK_ASSIGN_OR_RETURN(c->greeting_, c->ReadReply());
  return c;
}

Result<size_t> SmtpClient::ReadSome(char* buf, size_t n) {
  if (ssl_) {
    int r = SSL_read(ssl_, buf, static_cast<int>(n));
    if (r <= 0) {
      int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_ZERO_RETURN) return Status::Failure("smtp: connection closed by server");
      if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Status::Failure("smtp: timed out waiting for the server");
      return Status::Failure("smtp: tls read: " + OpenSslError());
    }
    return static_cast<size_t>(r);
  }
  while (true) {
    ssize_t r = recv(fd_.get(), buf, n, 0);
    if (r > 0) return static_cast<size_t>(r);
    if (r == 0) return Status::Failure("smtp: connection closed by server");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Status::Failure("smtp: timed out waiting for the server");
    return Status::FromErrno("smtp: read", errno);
  }
}

Status SmtpClient::TimedOut(const std::string& what) const {
  if (options_.deadline.expired())
    return Status::Failure(fmt::format("smtp: {} waiting for {}", kDeadlineReached, what));
  return Status::Failure(
      fmt::format("smtp: no complete {} within {} ms", what, options_.timeout_ms));
}

Result<SmtpReply> SmtpClient::ReadReply() {
  // The timeout bounds the whole reply, not each read: a server that sends
  // one byte a second must not hold a reply (and so a session) for longer.
  // The deadline bounds the whole conversation: a server that answers each
  // reply just inside the timeout must not hold the caller for longer.
  auto end = options_.deadline.Until(std::chrono::milliseconds(options_.timeout_ms));
  char buf[4096];
  while (true) {
    CK_ASSIGN_OR_RETURN(auto reply, parser_.Next());
    if (reply) {
      log::Debug("smtp < {} {}", reply->code, reply->text());
      return std::move(*reply);
    }
    // Rounded up: a wait that ends a little early would find time left and poll again.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Deadline::Clock::now()).count();
    if (left <= 0) return TimedOut("reply");
    // Each read may wait only for what is left of the reply's time.
    SetSocketTimeouts(fd_.get(), static_cast<int>(left));
    if (!ssl_ || SSL_pending(ssl_) == 0) {
      pollfd p{fd_.get(), POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno != EINTR) return Status::FromErrno("smtp: poll", errno);
      if (r == 0) return TimedOut("reply");
      if (r < 0) continue;
    }
    CK_ASSIGN_OR_RETURN(size_t n, ReadSome(buf, sizeof buf));
    parser_.Feed(std::string_view(buf, n));
  }
}

Status SmtpClient::SendLine(const std::string& line) {
  // A CR or LF inside a command would let an argument smuggle in a second
  // command — DATA included — so it is refused outright.
  if (line.find_first_of("\r\n") != std::string::npos)
    return Status::Usage("smtp command contains a line break");
  transcript_.push_back(line);
  log::Debug("smtp > {}", line);
  // A full send buffer may hold a write no longer than a reply may take.
  SetSocketTimeouts(fd_.get(), options_.deadline.ClampMillis(options_.timeout_ms));
  std::string wire = line + "\r\n";
  size_t off = 0;
  while (off < wire.size()) {
    if (ssl_) {
      int r = SSL_write(ssl_, wire.data() + off, static_cast<int>(wire.size() - off));
      if (r <= 0) return Status::Failure("smtp: tls write: " + OpenSslError());
      off += static_cast<size_t>(r);
    } else {
      ssize_t r = send(fd_.get(), wire.data() + off, wire.size() - off, MSG_NOSIGNAL);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("smtp: write", errno);
      }
      off += static_cast<size_t>(r);
    }
  }
  return Status::Ok();
}

Result<SmtpReply> SmtpClient::Command(const std::string& line) {
  std::string verb = Upper(line.substr(0, line.find(' ')));
  static const char* kAllowed[] = {"EHLO", "HELO", "MAIL", "RCPT",
                                   "RSET", "NOOP", "QUIT", "STARTTLS"};
  if (std::none_of(std::begin(kAllowed), std::end(kAllowed),
                   [&](const char* v) { return verb == v; }))
    return Status::Usage(
        fmt::format("smtp command '{}' is not allowed: the audit never sends mail", verb));
  if (closed_) return Status::Failure("smtp: session already closed");
  // Past the deadline nothing more is asked: the caller reports what was not tested.
  if (options_.deadline.expired())
    return Status::Failure(fmt::format("smtp: {} before {}", kDeadlineReached, verb));
  CK_RETURN_IF_ERROR(SendLine(line));
  auto reply = ReadReply();
  // A reply cut short by the deadline leaves a live connection that Quit
  // still ends politely; any other failed read leaves nothing to talk to.
  if (!reply.ok() && !options_.deadline.expired()) closed_ = true;
  // §3.8: 421 means the server is closing the channel.
  if (reply.ok() && reply->code == 421) closed_ = true;
  return reply;
}

Result<SmtpReply> SmtpClient::Hello(const std::string& name) {
  CK_ASSIGN_OR_RETURN(SmtpReply reply, Command("EHLO " + name));
  extensions_.clear();
  if (reply.code == 250) {
    // §4.1.1.1: the first line is the server's name, each further line an extension.
    for (size_t i = 1; i < reply.lines.size(); ++i) extensions_.push_back(Upper(reply.lines[i]));
    return reply;
  }
  if (reply.code == 421) return reply;
  return Command("HELO " + name);
}

bool SmtpClient::HasExtension(const std::string& keyword) const {
  std::string k = Upper(keyword);
  return std::any_of(extensions_.begin(), extensions_.end(),
                     [&](const std::string& e) { return e == k || e.rfind(k + " ", 0) == 0; });
}

TlsResult SmtpClient::StartTls(const std::string& verify_host) {
  TlsResult t;
  t.offered = HasExtension("STARTTLS");
  if (!t.offered) return t;
  auto reply = Command("STARTTLS");
  if (!reply.ok()) {
    t.error = reply.status().message();
    t.deadline_reached = options_.deadline.expired();
    return t;
  }
  if (reply->code != 220) {
    t.error = fmt::format("server answered STARTTLS with {} {}", reply->code, reply->text());
    return t;
  }
  // RFC 3207 §5 / CVE-2011-0411: anything buffered before the handshake was
  // sent in plain text and must not be treated as part of the TLS session.
  if (parser_.pending() != 0) {
    t.error = "server sent data after 220 to STARTTLS (plaintext injection)";
    closed_ = true;
    return t;
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
  if (options_.ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(ctx_);
  } else if (SSL_CTX_load_verify_locations(ctx_, options_.ca_file.c_str(), nullptr) != 1) {
    t.error = "cannot load CA file " + options_.ca_file + ": " + OpenSslError();
    closed_ = true;
    return t;
  }
  // Verification is recorded, not enforced: an invalid certificate is a
  // finding to report, and the relay test still has to run over TLS.
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_.get());
  SSL_set_tlsext_host_name(ssl_, verify_host.c_str());
  in6_addr a6;
  in_addr a4;
  bool is_ip = inet_pton(AF_INET, verify_host.c_str(), &a4) == 1 ||
               inet_pton(AF_INET6, verify_host.c_str(), &a6) == 1;
  if (is_ip)
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), verify_host.c_str());
  else
    SSL_set1_host(ssl_, verify_host.c_str());
  if (Status hs = Handshake(); !hs.ok()) {
    t.error = hs.message();
    t.deadline_reached = options_.deadline.expired();
    SSL_free(ssl_);
    ssl_ = nullptr;
    closed_ = true;
    return t;
  }
  t.established = true;
  t.version = SSL_get_version(ssl_);
  t.cipher = SSL_get_cipher_name(ssl_);
  long v = SSL_get_verify_result(ssl_);
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) {
    t.certificate_error = "no certificate";
  } else if (v != X509_V_OK) {
    t.certificate_error = X509_verify_cert_error_string(v);
  } else {
    t.certificate_valid = true;
  }
  if (cert) X509_free(cert);
  extensions_.clear();
  return t;
}

Status SmtpClient::Handshake() {
  // Bounded like a reply: as a whole by the timeout and by the deadline. A
  // blocking SSL_connect would let each of its reads wait the full
  // SO_RCVTIMEO, so the socket is non-blocking while it runs.
  auto end = options_.deadline.Until(std::chrono::milliseconds(options_.timeout_ms));
  int flags = fcntl(fd_.get(), F_GETFL);
  fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  Status result = Status::Ok();
  while (true) {
    ERR_clear_error();
    int rc = SSL_connect(ssl_);
    if (rc == 1) break;
    int err = SSL_get_error(ssl_, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      // Past the deadline the probe stops whatever the failure was (often
      // a peer that gave up with us), so the deadline is named as the cause
      // and the TLS finding stays UNKNOWN rather than FAIL.
      result = options_.deadline.expired() ? TimedOut("the TLS handshake")
                                           : Status::Failure(OpenSslError());
      ERR_clear_error();
      break;
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Deadline::Clock::now()).count();
    if (left <= 0) {
      result = TimedOut("the TLS handshake");
      break;
    }
    pollfd p{fd_.get(), static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    if (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
      result = Status::FromErrno("smtp: poll", errno);
      break;
    }
  }
  fcntl(fd_.get(), F_SETFL, flags);
  return result;
}

void SmtpClient::Quit() {
  if (closed_) return;
  // §4.1.1.10: the session ends with QUIT. Past the deadline it is still
  // sent, so that the server is not left waiting, but the 221 is not awaited.
  if (options_.deadline.expired())
    (void)SendLine("QUIT");
  else
    (void)Command("QUIT");
  closed_ = true;
}

}  // namespace cloudkeep::mail
