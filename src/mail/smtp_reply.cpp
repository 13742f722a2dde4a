#include "mail/smtp_reply.h"

#include <fmt/format.h>

namespace cloudkeep::mail {

std::string SmtpReply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += ' ';
    out += l;
  }
  return out;
}

namespace {
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}
}  // namespace

Result<std::optional<SmtpReply>> SmtpReplyParser::Next() {
  while (true) {
    size_t eol = buffer_.find('\n', pos_);
    if (eol == std::string::npos) {
      if (buffer_.size() - pos_ > kMaxLine) return Status::Failure("smtp reply line too long");
      // Compact the consumed prefix so a long session does not grow the buffer.
      if (pos_ > 0) {
        buffer_.erase(0, pos_);
        pos_ = 0;
      }
      return std::optional<SmtpReply>();
    }
    std::string_view line(buffer_.data() + pos_, eol - pos_);
    pos_ = eol + 1;
    // CRLF is the rule (§2.3.8); a bare LF is tolerated on input.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine) return Status::Failure("smtp reply line too long");
    // §4.2: Reply-code [ SP textstring ] CRLF, or Reply-code "-" text CRLF.
    if (line.size() < 3 || !IsDigit(line[0]) || !IsDigit(line[1]) || !IsDigit(line[2]))
      return Status::Failure(fmt::format("malformed smtp reply line '{}'", Printable(line)));
    // §4.2.1: the first digit is 2..5, the second 0..5.
    if (line[0] < '2' || line[0] > '5' || line[1] > '5')
      return Status::Failure(fmt::format("smtp reply code out of range in '{}'", Printable(line)));
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool last = true;
    if (line.size() > 3) {
      if (line[3] == '-') {
        last = false;
      } else if (line[3] != ' ') {
        return Status::Failure(fmt::format("malformed smtp reply line '{}'", Printable(line)));
      }
    }
    if (!partial_.lines.empty() && partial_.code != code)
      return Status::Failure(fmt::format(
          "smtp reply code changes within a multiline reply: {} then {}", partial_.code, code));
    if (partial_.lines.size() >= kMaxLines) return Status::Failure("smtp reply has too many lines");
    partial_.code = code;
    partial_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    if (last) {
      SmtpReply done = std::move(partial_);
      partial_ = SmtpReply();
      return std::optional<SmtpReply>(std::move(done));
    }
  }
}

Result<SmtpReply> ParseSmtpReply(std::string_view text) {
  SmtpReplyParser p;
  p.Feed(text);
  CK_ASSIGN_OR_RETURN(auto reply, p.Next());
  if (!reply) return Status::Failure("incomplete smtp reply");
  if (p.pending() != 0) return Status::Failure("trailing data after smtp reply");
  return *reply;
}

}  // namespace cloudkeep::mail
