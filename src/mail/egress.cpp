#include "mail/egress.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>

#include "core/fs.h"
#include "mail/ptr_check.h"
#include "mail/smtp_client.h"
#include "mail/smtp_reply.h"

namespace cloudkeep::mail {

const char* EgressResultName(EgressResult r) {
  switch (r) {
    case EgressResult::kOpen:
      return "open";
    case EgressResult::kProxy:
      return "proxy";
    case EgressResult::kDropped:
      return "dropped";
    case EgressResult::kRefused:
      return "refused";
    case EgressResult::kUnreachable:
      return "unreachable";
    case EgressResult::kReset:
      return "reset";
    case EgressResult::kSilent:
      return "silent";
    case EgressResult::kRejected:
      return "rejected";
    case EgressResult::kTlsFailed:
      return "tls failed";
    case EgressResult::kNotRun:
      return "not run";
  }
  return "?";
}

const char* EgressVerdictName(EgressVerdict v) {
  switch (v) {
    case EgressVerdict::kOpen:
      return "open";
    case EgressVerdict::kBlocked:
      return "blocked";
    case EgressVerdict::kUnknown:
      return "unknown";
    case EgressVerdict::kNotTested:
      return "not tested";
  }
  return "?";
}

Result<EgressTarget> ParseEgressTarget(const std::string& text) {
  EgressTarget t;
  t.text = text;
  if (text.empty()) return Status::Usage("empty egress target: expected DOMAIN, HOST or HOST:PORT");
  if (IsIpAddress(text)) {
    t.name = text;
    return t;
  }
  const bool has_port = text.front() == '[' || std::count(text.begin(), text.end(), ':') == 1;
  if (has_port) {
    CK_ASSIGN_OR_RETURN(SmtpEndpoint ep, ParseSmtpEndpoint(text));
    if (ep.port == 0) return Status::Usage(fmt::format("bad egress target '{}': port 0", text));
    t.name = ep.host;
    t.port = ep.port;
  } else {
    t.name = text;
    t.is_domain = true;
  }
  if (!IsIpAddress(t.name)) {
    // A host name: letters, digits, hyphens, dots; no empty label.
    std::string n = t.name;
    if (!n.empty() && n.back() == '.') n.pop_back();
    bool ok =
        !n.empty() && n.size() <= 253 && n.front() != '.' && n.find("..") == std::string::npos;
    for (char c : n)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
        ok = false;
    if (!ok)
      return Status::Usage(fmt::format(
          "bad egress target '{}': expected DOMAIN, HOST, HOST:PORT or an address", text));
    t.name = n;
  }
  return t;
}

std::vector<std::string> DefaultEgressTargets() {
  if (const char* env = std::getenv("CLOUDKEEP_MAIL_EGRESS_TARGETS"); env && *env) {
    std::vector<std::string> out;
    std::string s = env;
    std::replace(s.begin(), s.end(), ',', ' ');
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    if (!out.empty()) return out;
  }
  // Three large mailbox providers on different networks: one of them being
  // down does not look like a block.
  return {"gmail.com", "outlook.com", "yahoo.com"};
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// "mx.google.com" -> "google.com": the last two labels. A heuristic (no
// public-suffix list), good enough to tell the target's own servers from a
// proxy that names itself.
std::string Parent(const std::string& host) {
  std::string h = Lower(host);
  auto last = h.rfind('.');
  if (last == std::string::npos || last == 0) return h;
  auto prev = h.rfind('.', last - 1);
  return prev == std::string::npos ? h : h.substr(prev + 1);
}

// The host name a greeting or EHLO line starts with ("mx.example.com ESMTP ...").
std::string FirstWord(const std::vector<std::string>& lines) {
  if (lines.empty()) return "";
  std::string l = lines[0];
  auto sp = l.find(' ');
  return Lower(sp == std::string::npos ? l : l.substr(0, sp));
}

int Millis(std::chrono::steady_clock::time_point t0) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

// One connection: plain or TLS, every wait bounded.
class Conn {
 public:
  ~Conn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
  }
  // Non-blocking connect; kOpen on success, or the connect result.
  EgressResult Connect(const std::string& address, uint16_t port, int timeout_ms,
                       std::string* detail) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (IsIpv6(address)) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(port);
      inet_pton(AF_INET6, address.c_str(), &s6->sin6_addr);
      len = sizeof(*s6);
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(port);
      inet_pton(AF_INET, address.c_str(), &s4->sin_addr);
      len = sizeof(*s4);
    }
    fd_ = UniqueFd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd_.get() < 0) {
      *detail = fmt::format("socket: {}", std::strerror(errno));
      return EgressResult::kNotRun;
    }
    int rc = connect(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len);
    int err = rc == 0 ? 0 : errno;
    if (rc != 0 && err == EINPROGRESS) {
      pollfd p{fd_.get(), POLLOUT, 0};
      int n = poll(&p, 1, timeout_ms);
      if (n == 0) {
        *detail = fmt::format(
            "no answer to the connection attempt in {} ms: packets silently "
            "dropped",
            timeout_ms);
        return EgressResult::kDropped;
      }
      socklen_t el = sizeof(err);
      getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    }
    switch (err) {
      case 0:
        return EgressResult::kOpen;
      case ECONNREFUSED:
        *detail = "connection refused (TCP reset on connect)";
        return EgressResult::kRefused;
      case EHOSTUNREACH:
      case ENETUNREACH:
      case EACCES:
      case EPERM:
        *detail = fmt::format("{} (ICMP unreachable or a local firewall rule)", std::strerror(err));
        return EgressResult::kUnreachable;
      case ETIMEDOUT:
        *detail = "connect timed out: packets silently dropped";
        return EgressResult::kDropped;
      case ECONNRESET:
        *detail = "reset during connect";
        return EgressResult::kReset;
      default:
        *detail = fmt::format("connect: {}", std::strerror(err));
        return EgressResult::kUnreachable;
    }
  }
  // TLS on the connected socket (port 465); no certificate check: the
  // question is whether the path is open, not whether to trust the server.
  bool StartTls(const std::string& sni, int timeout_ms, std::string* detail) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) return Fail("SSL_CTX_new failed", detail);
    ssl_ = SSL_new(ctx_);
    if (!ssl_) return Fail("SSL_new failed", detail);
    SSL_set_fd(ssl_, fd_.get());
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      int r = SSL_connect(ssl_);
      if (r == 1) return true;
      int e = SSL_get_error(ssl_, r);
      int left = timeout_ms - Millis(t0);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && left > 0) {
        pollfd p{fd_.get(), static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        if (poll(&p, 1, left) > 0) continue;
      }
      unsigned long code = ERR_get_error();
      char buf[256] = "";
      if (code) ERR_error_string_n(code, buf, sizeof buf);
      return Fail(left <= 0 ? "TLS handshake timed out"
                            : fmt::format("TLS handshake failed{}{}", *buf ? ": " : "", buf),
                  detail);
    }
  }
  // Reads one reply; nullopt with `result` set when none came.
  std::optional<SmtpReply> Read(int timeout_ms, EgressResult* result, std::string* detail) {
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      auto next = parser_.Next();
      if (!next.ok()) {
        *result = EgressResult::kProxy;
        *detail = "not SMTP: " + next.status().message();
        return std::nullopt;
      }
      if (*next) return **next;
      int left = timeout_ms - Millis(t0);
      if (ssl_ && SSL_pending(ssl_) > 0) left = 0;
      pollfd p{fd_.get(), POLLIN, 0};
      if (!(ssl_ && SSL_pending(ssl_) > 0) && (left <= 0 || poll(&p, 1, left) <= 0)) {
        *result = EgressResult::kSilent;
        *detail = fmt::format("connected, but no reply in {} ms", timeout_ms);
        return std::nullopt;
      }
      char buf[4096];
      ssize_t n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : recv(fd_.get(), buf, sizeof buf, 0);
      if (n > 0) {
        parser_.Feed(std::string_view(buf, static_cast<size_t>(n)));
        continue;
      }
      if (ssl_ && n < 0) {
        int e = SSL_get_error(ssl_, static_cast<int>(n));
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      }
      if (!ssl_ && n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      *result = EgressResult::kReset;
      *detail = n == 0 ? "connected, then closed before a reply"
                       : fmt::format("connected, then reset: {}", std::strerror(errno));
      return std::nullopt;
    }
  }
  bool Send(const std::string& line) {
    std::string data = line + "\r\n";
    if (ssl_) return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) > 0;
    return send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(data.size());
  }

 private:
  bool Fail(const std::string& msg, std::string* detail) {
    *detail = msg;
    return false;
  }
  UniqueFd fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  SmtpReplyParser parser_;
};

// Is `name` (from a greeting or EHLO line) the target's own?
bool OwnName(Resolver& resolver, const std::string& name, const std::string& host,
             const std::string& address) {
  if (name.empty()) return false;
  if (Lower(name) == Lower(host) || Parent(name) == Parent(host)) return true;
  DnsAnswer a = resolver.Query(name, IsIpv6(address) ? RrType::kAAAA : RrType::kA);
  if (a.ok())
    for (const auto& r : a.records)
      if (SameAddress(r, address)) return true;
  return false;
}

EgressProbe Probe(Resolver& resolver, const std::string& target, const std::string& host,
                  const std::string& address, uint16_t port, const EgressOptions& o) {
  EgressProbe p;
  p.target = target;
  p.host = host;
  p.address = address;
  p.port = port;
  p.implicit_tls = port == 465;
  auto t0 = std::chrono::steady_clock::now();
  if (o.deadline.expired()) {
    p.detail = "the deadline passed before this probe";
    return p;
  }
  const int timeout = o.deadline.ClampMillis(o.timeout_ms);
  Conn c;
  p.result = c.Connect(address, port, timeout, &p.detail);
  if (p.result == EgressResult::kOpen && p.implicit_tls &&
      !c.StartTls(host, o.deadline.ClampMillis(o.timeout_ms), &p.detail))
    p.result = EgressResult::kTlsFailed;
  if (p.result != EgressResult::kOpen) {
    p.elapsed_ms = Millis(t0);
    return p;
  }
  EgressResult why = EgressResult::kSilent;
  auto greeting = c.Read(o.deadline.ClampMillis(o.timeout_ms), &why, &p.detail);
  if (!greeting) {
    p.result = why;
    p.elapsed_ms = Millis(t0);
    return p;
  }
  p.banner = fmt::format("{} {}", greeting->code, greeting->text());
  if (greeting->code != 220) {
    p.result = EgressResult::kRejected;
    p.detail = fmt::format("the server answered but refuses this client: {}", p.banner);
    c.Send("QUIT");
    p.elapsed_ms = Millis(t0);
    return p;
  }
  std::string greeter = FirstWord(greeting->lines);
  std::string ehlo_name;
  // EHLO and QUIT only: never MAIL FROM, RCPT or DATA.
  if (c.Send("EHLO " + o.helo)) {
    EgressResult ignored = EgressResult::kSilent;
    std::string ignored_detail;
    if (auto ehlo = c.Read(o.deadline.ClampMillis(o.timeout_ms), &ignored, &ignored_detail);
        ehlo && ehlo->code == 250)
      ehlo_name = FirstWord(ehlo->lines);
  }
  c.Send("QUIT");
  p.elapsed_ms = Millis(t0);
  if (host.empty()) {
    p.result = EgressResult::kOpen;
    p.detail = "SMTP greeting (an address target: its name is not checked)";
    return p;
  }
  const bool own =
      OwnName(resolver, greeter, host, address) ||
      (!ehlo_name.empty() && OwnName(resolver, ehlo_name, host, address) && greeter.empty());
  if (!own) {
    p.result = EgressResult::kProxy;
    p.detail = fmt::format(
        "the greeting names {}, not {}: something between here and the target answered for it",
        greeter.empty() ? "no host" : greeter, host);
    return p;
  }
  p.result = EgressResult::kOpen;
  p.detail = fmt::format("SMTP greeting from {}", greeter);
  return p;
}

// The hosts and addresses of one target, lowest MX preference first.
std::vector<std::pair<std::string, std::string>> Addresses(Resolver& resolver,
                                                           const EgressTarget& t, int max_hosts,
                                                           std::string* error) {
  std::vector<std::pair<std::string, std::string>> out;
  if (IsIpAddress(t.name)) {
    out.push_back({"", t.name});
    return out;
  }
  std::vector<std::string> hosts;
  if (t.is_domain) {
    DnsAnswer mx = resolver.Query(t.name, RrType::kMX);
    if (mx.ok()) {
      std::vector<std::pair<int, std::string>> prefs;
      for (const auto& r : mx.records) {
        std::istringstream in(r);
        int pref = 0;
        std::string h;
        if (in >> pref >> h && h != "." && !h.empty()) prefs.push_back({pref, Lower(h)});
      }
      std::stable_sort(prefs.begin(), prefs.end());
      for (const auto& [pref, h] : prefs)
        if (static_cast<int>(hosts.size()) < max_hosts) hosts.push_back(h);
    } else if (!mx.empty()) {
      *error = fmt::format("MX lookup of {} failed: {}", t.name, DnsStatusName(mx.status));
      return out;
    }
    if (hosts.empty()) hosts.push_back(t.name);  // RFC 5321 §5.1: the implicit MX
  } else {
    hosts.push_back(t.name);
  }
  for (const auto& h : hosts) {
    DnsAnswer a = resolver.Query(h, RrType::kA);
    if (!a.ok()) a = resolver.Query(h, RrType::kAAAA);
    if (a.ok()) {
      out.push_back({h, a.records[0]});
    } else if (error->empty()) {
      *error = fmt::format("no address for {}: {}", h, DnsStatusName(a.status));
    }
  }
  return out;
}

EgressVerdict Verdict(const std::vector<EgressProbe>& probes, bool relay) {
  bool any = false, open = false, blocked = false;
  for (const auto& p : probes) {
    if (IsRelayPort(p.port) != relay) continue;
    any = true;
    if (p.result == EgressResult::kOpen || p.result == EgressResult::kRejected)
      open = true;
    else if (p.result != EgressResult::kNotRun)
      blocked = true;
  }
  if (!any) return EgressVerdict::kNotTested;
  if (open) return EgressVerdict::kOpen;
  return blocked ? EgressVerdict::kBlocked : EgressVerdict::kUnknown;
}

void ProbeTargets(Resolver& resolver, const std::vector<EgressTarget>& targets,
                  const EgressOptions& o, int pass, EgressReport* out);

}  // namespace

EgressReport ProbeEgress(Resolver& resolver, const std::vector<EgressTarget>& targets,
                         const EgressOptions& o) {
  EgressReport r;
  // pass 0: every port (or, with relay_ports_when_needed, port 25 and the
  // ports given); pass 1: 587 and 465 of the targets without a port.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 &&
        (!o.relay_ports_when_needed || Verdict(r.probes, false) == EgressVerdict::kOpen))
      break;
    ProbeTargets(resolver, targets, o, pass, &r);
  }
  r.deadline_reached = o.deadline.expired();
  r.port25 = Verdict(r.probes, false);
  r.relay = Verdict(r.probes, true);
  return r;
}

namespace {

void ProbeTargets(Resolver& resolver, const std::vector<EgressTarget>& targets,
                  const EgressOptions& o, int pass, EgressReport* out) {
  EgressReport& r = *out;
  for (const auto& t : targets) {
    std::vector<uint16_t> ports =
        t.port ? std::vector<uint16_t>{t.port} : std::vector<uint16_t>{25, 587, 465};
    if (o.relay_ports_when_needed) {
      if (pass == 0 && !t.port) ports = {25};
      if (pass == 1) ports = t.port ? std::vector<uint16_t>{} : std::vector<uint16_t>{587, 465};
    }
    if (ports.empty()) continue;
    std::string error;
    auto addrs = Addresses(resolver, t, o.max_hosts_per_domain, &error);
    if (addrs.empty()) {
      for (uint16_t port : ports) {
        EgressProbe p;
        p.target = t.text;
        p.host = t.name;
        p.port = port;
        p.implicit_tls = port == 465;
        p.detail = error.empty() ? "no address to try" : error;
        r.probes.push_back(p);
      }
      continue;
    }
    for (uint16_t port : ports)
      for (const auto& [host, address] : addrs) {
        r.probes.push_back(Probe(resolver, t.text, host, address, port, o));
        // One genuine answer on a port says enough for this target and port.
        if (r.probes.back().result == EgressResult::kOpen) break;
      }
  }
}

}  // namespace

std::string EgressAdvice(const EgressReport& r, const CloudInfo& cloud) {
  bool proxy = false, dropped = false;
  for (const auto& p : r.probes) {
    if (IsRelayPort(p.port)) continue;
    proxy |= p.result == EgressResult::kProxy;
    dropped |= p.result == EgressResult::kDropped;
  }
  if (r.port25 == EgressVerdict::kOpen && !proxy) return "";
  std::string out;
  if (r.port25 == EgressVerdict::kUnknown || r.port25 == EgressVerdict::kNotTested)
    return "Port 25 could not be checked (no target could be tried): this is not a pass; fix DNS "
           "or name reachable targets and run it again.";
  if (proxy)
    out +=
        "Something on the path answers SMTP for the targets (a transparent proxy): mail sent "
        "from here is intercepted or rewritten. ";
  if (cloud.provider == "aws") {
    out += fmt::format(
        "EC2 restricts outbound port 25 by default{}. Ask AWS to lift it: the 'Request to remove "
        "email sending limitations' form (AWS Support console, service limit increase, "
        "'EC2 - Email sending limitation'; give the Elastic IP and the reverse DNS name, which "
        "'cloudkeep --provider aws mail ptr HOST --set' sets), or send through a relay on 587 "
        "(Amazon SES: email-smtp.{}.amazonaws.com:587).",
        cloud.region.empty() ? "" : " in " + cloud.region,
        cloud.region.empty() ? "REGION" : cloud.region);
  } else {
    out += dropped ? "Outbound port 25 is silently dropped, as providers block it by default. "
                   : "Outbound port 25 does not reach the targets. ";
    out +=
        "Ask the provider to open it where it offers that (its documented port-25 request), or "
        "relay through a smarthost on 587 with authentication (Postfix: relayhost = "
        "[smtp.example.net]:587, smtp_sasl_auth_enable = yes, smtp_tls_security_level = "
        "encrypt).";
  }
  if (r.relay == EgressVerdict::kOpen)
    out += " Port 587/465 is open from here, so a relay works.";
  else if (r.relay == EgressVerdict::kBlocked)
    out +=
        " Ports 587 and 465 did not answer either: check the host's own firewall and the "
        "provider's security groups.";
  return out;
}

Json EgressReportToJson(const EgressReport& r, const CloudInfo& cloud) {
  Json probes = Json::array();
  for (const auto& p : r.probes)
    probes.push_back({{"target", p.target},
                      {"host", p.host},
                      {"address", p.address},
                      {"port", p.port},
                      {"tls", p.implicit_tls},
                      {"result", EgressResultName(p.result)},
                      {"banner", p.banner},
                      {"detail", p.detail},
                      {"elapsed_ms", p.elapsed_ms}});
  return {{"port25", EgressVerdictName(r.port25)},
          {"relay", EgressVerdictName(r.relay)},
          {"cloud", cloud.provider.empty() ? Json(nullptr) : Json(cloud.provider)},
          {"complete", r.port25 != EgressVerdict::kUnknown && !r.deadline_reached},
          {"deadline_reached", r.deadline_reached},
          {"advice", EgressAdvice(r, cloud)},
          {"probes", probes}};
}

std::string EgressReportToText(const EgressReport& r, const CloudInfo& cloud) {
  Table t({"TARGET", "HOST", "ADDRESS", "PORT", "RESULT", "DETAIL"});
  for (const auto& p : r.probes)
    t.AddRow({p.target, p.host.empty() ? "-" : p.host, p.address.empty() ? "-" : p.address,
              fmt::format("{}{}", p.port, p.implicit_tls ? "/tls" : ""), EgressResultName(p.result),
              p.detail});
  std::string out = t.Render();
  out += fmt::format("\nport 25: {}   relay ports 587/465: {}{}\n", EgressVerdictName(r.port25),
                     EgressVerdictName(r.relay),
                     cloud.provider.empty() ? "" : "   cloud: " + cloud.provider);
  std::string advice = EgressAdvice(r, cloud);
  if (!advice.empty()) out += "\n" + advice + "\n";
  return out;
}

}  // namespace cloudkeep::mail
