#include "mirror/link.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/net.h"

namespace cloudkeep::mirror {

using Clock = std::chrono::steady_clock;

std::string TlsErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "handshake failed" : out;
}

namespace {

// TLS 1.3 ciphersuite of the external PSK: its hash must match the PSK's (SHA-256).
const unsigned char kAes128GcmSha256[2] = {0x13, 0x01};

SSL_SESSION* PskSession(SSL* ssl, const LinkAuth* auth) {
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (!cipher) return nullptr;
  SSL_SESSION* sess = SSL_SESSION_new();
  if (!sess) return nullptr;
  if (!SSL_SESSION_set1_master_key(sess, auth->psk_key().data(), auth->psk_key().size()) ||
      !SSL_SESSION_set_cipher(sess, cipher) ||
      !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
    SSL_SESSION_free(sess);
    return nullptr;
  }
  return sess;
}

const LinkAuth* AuthOf(SSL* ssl) {
  return static_cast<const LinkAuth*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

int UsePsk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen,
           SSL_SESSION** sess) {
  const LinkAuth* auth = AuthOf(ssl);
  *sess = nullptr;
  if (md && md != EVP_sha256()) return 1;
  *sess = PskSession(ssl, auth);
  if (!*sess) return 0;
  *id = reinterpret_cast<const unsigned char*>(auth->identity().data());
  *idlen = auth->identity().size();
  return 1;
}

int FindPsk(SSL* ssl, const unsigned char* identity, size_t len, SSL_SESSION** sess) {
  const LinkAuth* auth = AuthOf(ssl);
  *sess = nullptr;
  if (len != auth->identity().size() || std::memcmp(identity, auth->identity().data(), len) != 0) {
    log::Warn("mirror: refused a peer offering PSK identity '{}'",
              std::string(reinterpret_cast<const char*>(identity), len));
    return 1;  // no session: the handshake fails
  }
  *sess = PskSession(ssl, auth);
  return *sess ? 1 : 0;
}

SSL_CTX* NewCtx(bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  return ctx;
}

}  // namespace

Result<std::unique_ptr<LinkAuth>> LinkAuth::Create(const ResourceConfig& cfg) {
  std::unique_ptr<LinkAuth> a(new LinkAuth());
  a->identity_ = "cloudkeep-mirror:" + cfg.name;
  a->server_ = NewCtx(true);
  a->client_ = NewCtx(false);
  if (!a->server_ || !a->client_) return Status::Failure("TLS context: " + TlsErrors());
  for (SSL_CTX* ctx : {a->server_, a->client_}) SSL_CTX_set_app_data(ctx, a.get());
  if (!cfg.psk_file.empty()) {
    auto text = ReadFile(cfg.psk_file);
    if (!text.ok())
      return Status::Usage("psk_file " + cfg.psk_file + ": " + text.status().message());
    std::string key = *text;
    while (!key.empty() && isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (key.size() < 16)
      return Status::Usage("psk_file " + cfg.psk_file +
                           " holds fewer than 16 bytes (use 'openssl rand -hex 32')");
    a->psk_.resize(SHA256_DIGEST_LENGTH);
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), a->psk_.data());
    for (SSL_CTX* ctx : {a->server_, a->client_}) {
      SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    SSL_CTX_set_psk_use_session_callback(a->client_, UsePsk);
    SSL_CTX_set_psk_find_session_callback(a->server_, FindPsk);
  } else {
    for (SSL_CTX* ctx : {a->server_, a->client_}) {
      if (SSL_CTX_use_certificate_chain_file(ctx, cfg.tls_cert.c_str()) != 1)
        return Status::Usage("tls_cert " + cfg.tls_cert + ": " + TlsErrors());
      if (SSL_CTX_use_PrivateKey_file(ctx, cfg.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
        return Status::Usage("tls_key " + cfg.tls_key + ": " + TlsErrors());
      if (SSL_CTX_check_private_key(ctx) != 1)
        return Status::Usage("tls_key " + cfg.tls_key + " does not match tls_cert " + cfg.tls_cert);
      if (SSL_CTX_load_verify_locations(ctx, cfg.tls_ca.c_str(), nullptr) != 1)
        return Status::Usage("tls_ca " + cfg.tls_ca + ": " + TlsErrors());
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
  }
  return a;
}

LinkAuth::~LinkAuth() {
  SSL_CTX_free(server_);
  SSL_CTX_free(client_);
}

Link::~Link() {
  if (ssl_) SSL_free(ssl_);
}

namespace {
int PollFor(int fd, short events, int ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, ms);
}
int MsUntil(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(ms, 100)));
}
}  // namespace

Status Link::Handshake(bool server, Micros timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int r;
    {
      std::lock_guard lk(ssl_mu_);
      r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    }
    if (r == 1) return Status::Ok();
    int err = SSL_get_error(ssl_, r);
    if (Clock::now() >= deadline)
      return Status::Failure("TLS handshake with " + peer_ + " timed out");
    if (err == SSL_ERROR_WANT_READ)
      PollFor(fd_.get(), POLLIN, MsUntil(deadline));
    else if (err == SSL_ERROR_WANT_WRITE)
      PollFor(fd_.get(), POLLOUT, MsUntil(deadline));
    else
      return Status::Failure("TLS handshake with " + peer_ + " failed: " + TlsErrors());
  }
}

Result<std::unique_ptr<Link>> Link::Connect(const LinkAuth& auth, const std::string& address,
                                            Micros timeout) {
  CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address, "address", 7789));
  CK_ASSIGN_OR_RETURN(SockAddr sa, Resolve(hp));
  CK_ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(sa, timeout));
  std::unique_ptr<Link> l(new Link());
  l->peer_ = address;
  l->fd_ = std::move(fd);
  fcntl(l->fd_.get(), F_SETFL, fcntl(l->fd_.get(), F_GETFL) | O_NONBLOCK);
  l->ssl_ = SSL_new(auth.client_ctx());
  if (!l->ssl_) return Status::Failure("SSL_new: " + TlsErrors());
  SSL_set_fd(l->ssl_, l->fd_.get());
  CK_RETURN_IF_ERROR(l->Handshake(false, timeout));
  return l;
}

Result<std::unique_ptr<Link>> Link::Accept(const LinkAuth& auth, UniqueFd fd,
                                           const std::string& peer, Micros timeout) {
  std::unique_ptr<Link> l(new Link());
  l->peer_ = peer;
  l->fd_ = std::move(fd);
  int one = 1;
  setsockopt(l->fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(l->fd_.get(), F_SETFL, fcntl(l->fd_.get(), F_GETFL) | O_NONBLOCK);
  l->ssl_ = SSL_new(auth.server_ctx());
  if (!l->ssl_) return Status::Failure("SSL_new: " + TlsErrors());
  SSL_set_fd(l->ssl_, l->fd_.get());
  CK_RETURN_IF_ERROR(l->Handshake(true, timeout));
  return l;
}

std::string Link::Cipher() const {
  return ssl_ ? SSL_get_cipher_name(ssl_) : "";
}

void Link::Shutdown() {
  closed_ = true;
  if (fd_.valid()) shutdown(fd_.get(), SHUT_RDWR);
}

Status Link::WriteAll(const uint8_t* p, size_t n, Clock::time_point deadline) {
  while (n) {
    if (closed_) return Status::Failure("connection closed");
    int r, err;
    {
      std::lock_guard lk(ssl_mu_);
      ERR_clear_error();
      r = SSL_write(ssl_, p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    }
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      bytes_sent_ += static_cast<uint64_t>(r);
      continue;
    }
    if (Clock::now() >= deadline) return Status::Failure("send to " + peer_ + " timed out");
    if (err == SSL_ERROR_WANT_WRITE)
      PollFor(fd_.get(), POLLOUT, MsUntil(deadline));
    else if (err == SSL_ERROR_WANT_READ)
      PollFor(fd_.get(), POLLIN, MsUntil(deadline));
    else
      return Status::Failure("send to " + peer_ + ": " +
                             (err == SSL_ERROR_SYSCALL ? std::strerror(errno) : TlsErrors()));
  }
  return Status::Ok();
}

Status Link::Send(const wire::Header& h, const void* payload, Micros timeout) {
  std::lock_guard lk(send_mu_);
  auto deadline = Clock::now() + timeout;
  uint8_t hdr[wire::kHeaderBytes];
  wire::EncodeHeader(h, hdr);
  if (h.payload_bytes <= 64 * 1024) {
    uint8_t buf[wire::kHeaderBytes + 64 * 1024];
    std::memcpy(buf, hdr, sizeof hdr);
    if (h.payload_bytes) std::memcpy(buf + sizeof hdr, payload, h.payload_bytes);
    return WriteAll(buf, sizeof hdr + h.payload_bytes, deadline);
  }
  CK_RETURN_IF_ERROR(WriteAll(hdr, sizeof hdr, deadline));
  return WriteAll(static_cast<const uint8_t*>(payload), h.payload_bytes, deadline);
}

Status Link::SendHeaders(const std::vector<wire::Header>& frames, Micros timeout) {
  std::lock_guard lk(send_mu_);
  auto deadline = Clock::now() + timeout;
  std::vector<uint8_t> buf(frames.size() * wire::kHeaderBytes);
  for (size_t i = 0; i < frames.size(); i++) {
    if (frames[i].payload_bytes) return Status::Failure("SendHeaders: a frame with a payload");
    wire::EncodeHeader(frames[i], buf.data() + i * wire::kHeaderBytes);
  }
  return WriteAll(buf.data(), buf.size(), deadline);
}

bool Link::InputWaiting() {
  if (rpos_ < rlen_) return true;
  {
    std::lock_guard lk(ssl_mu_);
    if (SSL_has_pending(ssl_)) return true;
  }
  int queued = 0;
  return ioctl(fd_.get(), FIONREAD, &queued) == 0 && queued > 0;
}

Status Link::SendJson(wire::Type type, const Json& doc, Micros timeout, uint64_t seq) {
  std::string text = doc.dump();
  wire::Header h;
  h.type = type;
  h.seq = seq;
  h.payload_bytes = static_cast<uint32_t>(text.size());
  return Send(h, text.data(), timeout);
}

Status Link::ReadExact(uint8_t* p, size_t n, Micros idle_timeout) {
  auto deadline = Clock::now() + idle_timeout;
  while (n) {
    if (rpos_ < rlen_) {
      size_t k = std::min(n, rlen_ - rpos_);
      std::memcpy(p, rbuf_.data() + rpos_, k);
      rpos_ += k;
      p += k;
      n -= k;
      continue;
    }
    if (closed_) return Status::Failure("connection closed");
    int r, err;
    {
      std::lock_guard lk(ssl_mu_);
      ERR_clear_error();
      r = SSL_read(ssl_, rbuf_.data(), static_cast<int>(rbuf_.size()));
      err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    }
    if (r > 0) {
      rpos_ = 0;
      rlen_ = static_cast<size_t>(r);
      bytes_received_ += static_cast<uint64_t>(r);
      deadline = Clock::now() + idle_timeout;
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
      return Status::Failure("peer " + peer_ + " closed the connection");
    if (Clock::now() >= deadline)
      return Status::Failure("nothing from " + peer_ + " for " + FormatDuration(idle_timeout) +
                             ": timed out");
    if (err == SSL_ERROR_WANT_READ)
      PollFor(fd_.get(), POLLIN, MsUntil(deadline));
    else if (err == SSL_ERROR_WANT_WRITE)
      PollFor(fd_.get(), POLLOUT, MsUntil(deadline));
    else if (err == SSL_ERROR_SYSCALL && errno == 0)
      return Status::Failure("peer " + peer_ + " closed the connection");
    else
      return Status::Failure("receive from " + peer_ + ": " +
                             (err == SSL_ERROR_SYSCALL ? std::strerror(errno) : TlsErrors()));
  }
  return Status::Ok();
}

Status Link::Recv(wire::Header* h, std::vector<uint8_t>* payload, Micros idle_timeout) {
  uint8_t hdr[wire::kHeaderBytes];
  CK_RETURN_IF_ERROR(ReadExact(hdr, sizeof hdr, idle_timeout));
  auto dh = wire::DecodeHeader(hdr);
  if (!dh.ok()) return dh.status().Annotate("from " + peer_);
  *h = *dh;
  payload->resize(h->payload_bytes);
  if (h->payload_bytes)
    CK_RETURN_IF_ERROR(ReadExact(payload->data(), h->payload_bytes, idle_timeout));
  return Status::Ok();
}

}  // namespace cloudkeep::mirror
