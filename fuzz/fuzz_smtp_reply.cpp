// Fuzzes the SMTP reply parser: server replies are untrusted input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail/smtp_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)cloudkeep::mail::ParseSmtpReply(in);
  // The incremental path, fed in two pieces, must never crash either.
  cloudkeep::mail::SmtpReplyParser p;
  p.Feed(in.substr(0, size / 2));
  for (int i = 0; i < 4; ++i) {
    auto r = p.Next();
    if (!r.ok() || !r->has_value()) break;
  }
  p.Feed(in.substr(size / 2));
  while (true) {
    auto r = p.Next();
    if (!r.ok() || !r->has_value()) break;
  }
  return 0;
}
