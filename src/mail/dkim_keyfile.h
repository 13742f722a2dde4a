// Offline DKIM keys: TXT records in zone-file form, as `dkim keygen` prints
// them and as RFC 8463 Appendix A lists them,
//   brisbane._domainkey.football.example.com. IN TXT "v=DKIM1; k=ed25519; p=…"
// loaded into a StaticResolver so that `dkim verify --key-file` runs the
// same lookup path as DNS. Only TXT lines are read; ';' starts a comment,
// a record may span lines inside "( … )", and its quoted strings are
// concatenated (RFC 7208 §3.3 style, as DKIM needs for long RSA keys).
//
// Thread safety: pure function.
#pragma once

#include <memory>
#include <string_view>

#include "core/status.h"
#include "mail/resolver.h"

namespace cloudkeep::mail {

// kUsage naming the line when a TXT line cannot be read.
Result<std::unique_ptr<StaticResolver>> LoadDkimKeyFile(std::string_view text);

}  // namespace cloudkeep::mail
