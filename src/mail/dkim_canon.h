// A mail message as DKIM sees it, and the canonicalization algorithms of
// RFC 6376 §3.4 ("simple" and "relaxed", for header fields and body).
//
// Messages read from files usually have Unix line endings; DKIM is defined
// over the SMTP wire form, so ParseMailMessage turns every bare LF into CRLF
// before anything is hashed (as dkimpy and OpenDKIM do) and remembers the
// original style so a signed message can be written back in it.
//
// Thread safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::mail {

enum class DkimCanon { kSimple, kRelaxed };
const char* DkimCanonName(DkimCanon c);

struct DkimCanonPair {
  DkimCanon header = DkimCanon::kSimple;
  DkimCanon body = DkimCanon::kSimple;
};
// "relaxed/simple", "relaxed" (body simple, §3.5 "c="); kFailure naming the value.
Result<DkimCanonPair> ParseDkimCanon(std::string_view text);

struct HeaderField {
  std::string name;  // as written, before the colon, trailing WSP removed
  std::string raw;   // the whole field with its folds, ending in CRLF
};

struct MailMessage {
  std::vector<HeaderField> headers;  // in message order
  std::string body;                  // after the empty line, CRLF line endings
  bool had_body_separator = false;
  bool unix_line_endings = false;  // the input used bare LF
};

// Splits a message into header fields and body (RFC 5322 §2.2, §2.3).
Result<MailMessage> ParseMailMessage(std::string_view data);

// §3.4.1 / §3.4.2: the canonical form of one header field, CRLF included.
std::string CanonHeader(DkimCanon c, std::string_view raw_field);
// §3.4.3 / §3.4.4: the canonical form of the body.
std::string CanonBody(DkimCanon c, std::string_view body);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string ToLower(std::string_view s);

}  // namespace cloudkeep::mail
