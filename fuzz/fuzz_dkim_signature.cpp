// The DKIM-Signature parser (RFC 6376 §3.5) and the b= removal (§3.7) on
// untrusted header text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mail/dkim_signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)cloudkeep::mail::ParseDkimSignature(text);
  std::string field = "DKIM-Signature:" + std::string(text) + "\r\n";
  std::string stripped = cloudkeep::mail::DkimSignatureWithoutB(field);
  if (stripped.size() > field.size()) __builtin_trap();
  return 0;
}
