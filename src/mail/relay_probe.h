// Relay probe: is this SMTP server an open relay (rule 1)?
//
// Runs a battery of MAIL FROM / RCPT TO pairs that ask the server to pass
// mail from an outside sender to an outside recipient: the 16 pairs of nmap's
// smtp-open-relay script (null sender, external to external, the server's
// own name and [ip] as sender, the percent hack, quoted local parts, double
// @, source routes, bang paths) and three more (an unqualified sender, a
// localhost sender, a sender in the recipient's domain). A pair "relays" when
// both MAIL and RCPT get a 2xx reply. DATA is never sent: every attempt ends
// in RSET and every session in QUIT (SmtpClient refuses DATA in any case).
// STARTTLS is used when offered, so the probe sees what a real client sees.
//
// Servers throttle clients that collect errors (Postfix sleeps after 10 and
// hangs up after 20), so the probe opens a fresh session after a few rejections.
//
// Each reply is bounded by its timeout, the whole probe by the deadline in
// RelayOptions::smtp (--deadline): 19 forms of three commands each, plus
// the sessions, are many timeouts long. When it passes the probe stops at
// once; the forms not answered by then stay untested, never "refused".
//
// Thread safety: functions only; no shared state.
#pragma once

#include <string>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "mail/smtp_client.h"

namespace cloudkeep::mail {

struct RelayOptions {
  std::string helo = "relay-probe.example.org";  // our EHLO name
  std::string from_local = "antispam";
  std::string sender_domain = "example.org";  // an outside sender's domain
  std::string to_local = "relaytest";
  std::string external_domain =
      "example.net";  // the outside recipient's domain (never delivered to)
  bool starttls = true;
  int rejections_per_session = 8;
  SmtpOptions smtp;
};

struct RelayAttempt {
  std::string name;  // what trick this is, e.g. "percent hack via [ip]"
  std::string mail_from;
  std::string rcpt_to;
  int mail_code = 0;  // 0: not sent
  int rcpt_code = 0;  // 0: not sent (MAIL was refused)
  std::string reply;  // text of the deciding reply
  bool accepted = false;
  // Answered: MAIL refused, or MAIL accepted and RCPT answered (a 421 is
  // the server closing, not an answer). An untested form proves nothing.
  bool tested() const;
};

struct RelayReport {
  std::string host;
  std::string address;
  uint16_t port = 25;
  SmtpReply greeting;
  std::string greeting_name;  // first word of the 220 greeting
  std::string ehlo_name;      // first word of the 250 EHLO reply
  TlsResult tls;
  // STARTTLS was offered but the handshake failed, so the battery ran on new
  // plain-text sessions: a relay that is open without TLS is open to anyone.
  bool plaintext_fallback = false;
  bool auth_required = false;  // 530 seen: the server wants authentication first
  int sessions = 0;
  std::vector<RelayAttempt> attempts;
  std::vector<std::string> transcript;  // every command sent, all sessions
  std::string error;                    // the battery stopped early because of this
  // The deadline passed before every form was answered (error says which).
  bool deadline_reached = false;

  int accepted() const;
  int tested() const;  // forms answered, of attempts.size()
  bool open_relay() const { return accepted() > 0; }
  // Every form answered: only then is "not an open relay" a verdict.
  bool complete() const {
    return !deadline_reached && error.empty() && !attempts.empty() &&
           tested() == static_cast<int>(attempts.size());
  }
};

// The pairs, given the server's name as it announced itself and its address.
std::vector<RelayAttempt> RelayBattery(const std::string& server_name, const std::string& ip,
                                       const RelayOptions& options);

// Connects, runs the battery, QUITs. Fails only when no session at all could
// be opened; later trouble is recorded in `error` with the attempts so far.
Result<RelayReport> ProbeRelay(const SmtpEndpoint& endpoint, const RelayOptions& options);

// The report of a probe that could not open its first session (`error`):
// every form untested, and the deadline noted when it is what stopped it.
RelayReport NothingTested(const SmtpEndpoint& endpoint, const RelayOptions& options,
                          std::string error);

// Connects, reads the greeting, EHLO, STARTTLS (when offered), QUIT — no
// MAIL at all: for `mail check --no-relay-test`.
Result<RelayReport> ProbeGreeting(const SmtpEndpoint& endpoint, const RelayOptions& options);

Json RelayReportToJson(const RelayReport& report);
Json TlsResultToJson(const TlsResult& tls);

}  // namespace cloudkeep::mail
