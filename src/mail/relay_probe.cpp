#include "mail/relay_probe.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include "core/duration.h"
#include "core/log.h"

namespace cloudkeep::mail {

bool RelayAttempt::tested() const {
  if (mail_code == 0 || mail_code == 421) return false;
  if (mail_code / 100 != 2) return true;
  return rcpt_code != 0 && rcpt_code != 421;
}

int RelayReport::tested() const {
  int n = 0;
  for (const auto& a : attempts) n += a.tested() ? 1 : 0;
  return n;
}

int RelayReport::accepted() const {
  int n = 0;
  for (const auto& a : attempts) n += a.accepted ? 1 : 0;
  return n;
}

std::vector<RelayAttempt> RelayBattery(const std::string& server_name, const std::string& ip,
                                       const RelayOptions& o) {
  const std::string& dom = o.external_domain;
  const std::string& to = o.to_local;
  const std::string srv = server_name.empty() ? "[" + ip + "]" : server_name;
  // A v6 literal is written [IPv6:addr] (RFC 5321 §4.1.3).
  in6_addr a6;
  const std::string lit =
      inet_pton(AF_INET6, ip.c_str(), &a6) == 1 ? "[IPv6:" + ip + "]" : "[" + ip + "]";
  const std::string ext = to + "@" + dom;
  const std::string from_ip = o.from_local + "@" + lit;
  // nmap smtp-open-relay's 16 pairs, in its order, then ours.
  std::vector<RelayAttempt> b;
  auto add = [&b](std::string name, std::string from, std::string rcpt) {
    RelayAttempt a;
    a.name = std::move(name);
    a.mail_from = std::move(from);
    a.rcpt_to = std::move(rcpt);
    b.push_back(std::move(a));
  };
  add("null sender", "", ext);
  add("external to external", o.from_local + "@" + o.sender_domain, ext);
  add("server name as sender", o.from_local + "@" + srv, ext);
  add("[ip] as sender", from_ip, ext);
  add("percent hack via [ip]", from_ip, to + "%" + dom + "@" + lit);
  add("percent hack via server name", from_ip, to + "%" + dom + "@" + srv);
  add("quoted address", from_ip, "\"" + ext + "\"");
  add("quoted percent hack", from_ip, "\"" + to + "%" + dom + "\"");
  add("double @ via [ip]", from_ip, ext + "@" + lit);
  add("quoted local part via [ip]", from_ip, "\"" + ext + "\"@" + lit);
  add("double @ via server name", from_ip, ext + "@" + srv);
  add("source route via [ip]", from_ip, "@" + lit + ":" + ext);
  add("source route via server name", from_ip, "@" + srv + ":" + ext);
  add("bang path", from_ip, dom + "!" + to);
  add("bang path via [ip]", from_ip, dom + "!" + to + "@" + lit);
  add("bang path via server name", from_ip, dom + "!" + to + "@" + srv);
  add("unqualified sender", o.from_local, ext);
  add("localhost sender", o.from_local + "@localhost", ext);
  add("sender in recipient's domain", o.from_local + "@" + dom, ext);
  return b;
}

namespace {

std::string FirstWord(const std::string& s) {
  return s.substr(0, s.find(' '));
}

// The deadline has passed: the probe asks nothing more, and what was not
// answered stays untested.
void StopAtDeadline(RelayReport& r, const RelayOptions& o) {
  r.deadline_reached = true;
  r.error = fmt::format("the deadline of {} was reached", FormatDuration(o.smtp.deadline.budget()));
}

// One session: connect, EHLO, STARTTLS when offered, EHLO again. After a
// failed handshake the connection is unusable (RFC 3207 section 4.1 leaves
// no way back), so the session is opened again without STARTTLS, and so are
// the later ones.
Result<std::unique_ptr<SmtpClient>> OpenSession(const SmtpEndpoint& ep, const RelayOptions& o,
                                                RelayReport& r) {
  CK_ASSIGN_OR_RETURN(auto c, SmtpClient::Connect(ep, o.smtp));
  ++r.sessions;
  if (r.sessions == 1) {
    r.address = c->peer_address();
    r.greeting = c->greeting();
    if (!c->greeting().lines.empty()) r.greeting_name = FirstWord(c->greeting().lines[0]);
  }
  auto flush = [&] {
    r.transcript.insert(r.transcript.end(), c->transcript().begin(), c->transcript().end());
  };
  if (c->greeting().code != 220) {
    (void)c->Quit();
    flush();
    return Status::Failure(
        fmt::format("server greeted with {} {}", c->greeting().code, c->greeting().text()));
  }
  auto hello = c->Hello(o.helo);
  if (!hello.ok() || !hello->positive()) {
    flush();
    return Status::Failure(hello.ok()
                               ? fmt::format("EHLO refused: {} {}", hello->code, hello->text())
                               : hello.status().message());
  }
  if (r.sessions == 1 && !hello->lines.empty()) r.ehlo_name = FirstWord(hello->lines[0]);
  if (o.starttls && !r.plaintext_fallback && c->HasExtension("STARTTLS")) {
    TlsResult tls = c->StartTls(ep.host);
    if (r.sessions == 1) r.tls = tls;
    if (!tls.established) {
      flush();
      // A handshake the deadline cut short says nothing about the server's
      // TLS, and there is no time left for a plain-text session either.
      if (tls.deadline_reached) return Status::Failure(tls.error);
      c.reset();
      log::Warn("STARTTLS with {} failed ({}); testing relaying in plain text", ep.host, tls.error);
      r.plaintext_fallback = true;
      return OpenSession(ep, o, r);
    }
    hello = c->Hello(o.helo);
    if (!hello.ok() || !hello->positive()) {
      flush();
      return Status::Failure("EHLO after STARTTLS refused");
    }
  } else if (r.sessions == 1) {
    r.tls.offered = c->HasExtension("STARTTLS");
  }
  return c;
}

}  // namespace

Result<RelayReport> ProbeGreeting(const SmtpEndpoint& ep, const RelayOptions& o) {
  RelayReport r;
  r.host = ep.host;
  r.port = ep.port;
  CK_ASSIGN_OR_RETURN(auto c, OpenSession(ep, o, r));
  c->Quit();
  r.transcript.insert(r.transcript.end(), c->transcript().begin(), c->transcript().end());
  return r;
}

Result<RelayReport> ProbeRelay(const SmtpEndpoint& ep, const RelayOptions& o) {
  RelayReport r;
  r.host = ep.host;
  r.port = ep.port;
  CK_ASSIGN_OR_RETURN(auto c, OpenSession(ep, o, r));
  std::string name = r.greeting_name.empty() ? r.ehlo_name : r.greeting_name;
  r.attempts = RelayBattery(name, r.address, o);
  int rejections = 0;
  int reconnects = 0;
  auto finish = [&] {
    if (c) {
      c->Quit();
      r.transcript.insert(r.transcript.end(), c->transcript().begin(), c->transcript().end());
      c.reset();
    }
  };
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    auto& a = r.attempts[i];
    if (o.smtp.deadline.expired()) {
      StopAtDeadline(r, o);
      break;
    }
    if (!c) {
      // A new session for the remaining pairs (throttling or a dropped connection).
      auto next = OpenSession(ep, o, r);
      if (!next.ok()) {
        if (o.smtp.deadline.expired())
          StopAtDeadline(r, o);
        else
          r.error = next.status().message();
        break;
      }
      c = std::move(next).value();
      rejections = 0;
    }
    auto mail = c->Command("MAIL FROM:<" + a.mail_from + ">");
    bool io_error = !mail.ok();
    if (mail.ok()) {
      a.mail_code = mail->code;
      a.reply = mail->text();
      if (mail->code == 530) r.auth_required = true;
      if (mail->code / 100 == 2) {
        auto rcpt = c->Command("RCPT TO:<" + a.rcpt_to + ">");
        io_error = !rcpt.ok();
        if (rcpt.ok()) {
          a.rcpt_code = rcpt->code;
          a.reply = rcpt->text();
          if (rcpt->code == 530) r.auth_required = true;
          a.accepted = rcpt->code / 100 == 2;
        }
      }
    }
    if (!io_error && !a.accepted) ++rejections;
    // Every attempt ends in RSET so the next one starts a clean transaction (§4.1.1.5).
    if (!io_error) io_error = !c->Command("RSET").ok();
    if (io_error && o.smtp.deadline.expired()) {
      // The reply was cut short by the deadline: this form stays untested.
      StopAtDeadline(r, o);
      break;
    }
    if (io_error) {
      log::Debug("relay probe: session ended during '{}'; reconnecting", a.name);
      r.transcript.insert(r.transcript.end(), c->transcript().begin(), c->transcript().end());
      c.reset();
      if (a.mail_code == 0 && ++reconnects <= 3) --i;  // the pair was never answered: retry it
      if (reconnects > 3) {
        r.error = "the server keeps closing the connection";
        break;
      }
      continue;
    }
    if (rejections >= o.rejections_per_session && i + 1 < r.attempts.size()) finish();
  }
  finish();
  return r;
}

RelayReport NothingTested(const SmtpEndpoint& ep, const RelayOptions& o, std::string error) {
  RelayReport r;
  r.host = ep.host;
  r.address = ep.address;
  r.port = ep.port;
  r.attempts = RelayBattery(ep.host, ep.address.empty() ? ep.host : ep.address, o);
  r.error = std::move(error);
  if (o.smtp.deadline.expired()) StopAtDeadline(r, o);
  return r;
}

Json TlsResultToJson(const TlsResult& t) {
  Json j = {{"offered", t.offered}, {"established", t.established}};
  if (t.established) {
    j["version"] = t.version;
    j["cipher"] = t.cipher;
    j["certificate_valid"] = t.certificate_valid;
    if (!t.certificate_valid) j["certificate_error"] = t.certificate_error;
  }
  if (!t.error.empty()) j["error"] = t.error;
  if (t.deadline_reached) j["deadline_reached"] = true;
  return j;
}

Json RelayReportToJson(const RelayReport& r) {
  Json j = {{"host", r.host},
            {"address", r.address},
            {"port", r.port},
            {"greeting", fmt::format("{} {}", r.greeting.code, r.greeting.text())},
            {"greeting_name", r.greeting_name},
            {"ehlo_name", r.ehlo_name},
            {"tls", TlsResultToJson(r.tls)},
            {"plaintext_fallback", r.plaintext_fallback},
            {"open_relay", r.open_relay()},
            {"accepted", r.accepted()},
            {"tested", r.tested()},
            {"forms", r.attempts.size()},
            {"complete", r.complete()},
            {"deadline_reached", r.deadline_reached},
            {"verdict", r.open_relay() ? "open relay"
                        : r.complete() ? "not an open relay"
                                       : "unknown"},
            {"auth_required", r.auth_required},
            {"sessions", r.sessions},
            {"attempts", Json::array()}};
  for (const auto& a : r.attempts) {
    j["attempts"].push_back({{"name", a.name},
                             {"mail_from", a.mail_from},
                             {"rcpt_to", a.rcpt_to},
                             {"mail_code", a.mail_code},
                             {"rcpt_code", a.rcpt_code},
                             {"accepted", a.accepted},
                             {"tested", a.tested()},
                             {"reply", a.reply}});
  }
  j["commands_sent"] = r.transcript;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace cloudkeep::mail
