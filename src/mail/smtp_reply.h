// SmtpReply and its parser: the server side of an SMTP exchange, as text.
//
// RFC 5321 §4.2: a reply is one or more lines "CODE-text" ending in one line
// "CODE text" (or a bare "CODE"), every line with the same three-digit code.
// The parser is incremental: bytes from the socket are appended and complete
// replies are taken off the front, so a reply split across reads, or several
// replies arriving in one read (pipelining), come out the same.
// Server input is untrusted: lines and replies are bounded, codes checked.
//
// Thread safety: a parser is a plain value; use one per connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::mail {

struct SmtpReply {
  int code = 0;                    // 200..599
  std::vector<std::string> lines;  // the text of each line, code and separator removed
  // 2yz: positive completion; 3yz: positive intermediate (RFC 5321 §4.2.1).
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  // All lines joined with a space: for messages and reports.
  std::string text() const;
};

class SmtpReplyParser {
 public:
  // RFC 5321 §4.5.3.1.5 puts a reply line at 512 octets; real servers send
  // longer EHLO lines, so allow some slack, but not unbounded memory.
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxLines = 200;

  void Feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete reply, nullopt when more bytes are needed, or a
  // kFailure status for a malformed reply (the connection is then unusable).
  Result<std::optional<SmtpReply>> Next();
  // Bytes not yet consumed: after STARTTLS's 220 there must be none
  // (a server sending more is a command-injection risk, RFC 3207 §5).
  size_t pending() const { return buffer_.size() - pos_; }

 private:
  std::string buffer_;
  size_t pos_ = 0;
  SmtpReply partial_;
};

// Parses a complete text holding exactly one reply (for tests and fuzzing).
Result<SmtpReply> ParseSmtpReply(std::string_view text);

}  // namespace cloudkeep::mail
