// A whole untrusted message through DKIM verification: message parsing,
// both canonicalizations, header selection and the signature checks, with
// a fixed Ed25519 key record (RFC 8463 Appendix A) instead of DNS.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail/dkim_verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  cloudkeep::mail::DkimVerifyOptions o;
  o.key_record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  o.now = 1700000000;
  (void)cloudkeep::mail::DkimVerify(text, nullptr, o);
  auto msg = cloudkeep::mail::ParseMailMessage(text);
  if (msg.ok()) {
    (void)cloudkeep::mail::CanonBody(cloudkeep::mail::DkimCanon::kRelaxed, msg->body);
    for (const auto& h : msg->headers)
      (void)cloudkeep::mail::CanonHeader(cloudkeep::mail::DkimCanon::kRelaxed, h.raw);
  }
  return 0;
}
