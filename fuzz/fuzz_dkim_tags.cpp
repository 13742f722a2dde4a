// The DKIM tag-list parser (RFC 6376 §3.2) and the key record built on it
// (§3.6.1), on untrusted DNS text; the public key parse runs too, since p=
// reaches OpenSSL's DER decoder.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail/dkim_key.h"
#include "mail/dkim_tags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tags = cloudkeep::mail::ParseDkimTagList(text);
  if (tags.ok())
    for (const auto& t : *tags) (void)cloudkeep::mail::DecodeDkimBase64(t.value);
  auto rec = cloudkeep::mail::ParseDkimKeyRecord(text);
  if (rec.ok()) (void)cloudkeep::mail::DkimPublicKey::FromRecord(*rec);
  return 0;
}
