// SPF records come from DNS, written by anyone: the parser, the macro
// expander and a full evaluation against the record itself must never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mail/spf.h"

using namespace cloudkeep::mail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  SpfRecord rec;
  std::string err;
  ParseSpfRecord(text, &rec, &err);
  MacroContext ctx;
  ctx.sender = "a@b.example";
  ctx.local = "a";
  ctx.sender_domain = ctx.domain = "b.example";
  ctx.ip = *IpAddress::Parse("2001:db8::1");
  std::string out;
  ExpandMacros(text, ctx, true, &out);
  // Evaluate it as the record of a domain whose other names echo it too.
  StaticResolver z;
  z.Add("b.example", RrType::kTXT, text);
  z.Add("b.example", RrType::kMX, "10 b.example");
  z.Add("b.example", RrType::kA, "192.0.2.1");
  z.Add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", RrType::kPTR,
        "b.example");
  SpfOptions o;
  o.now = 1;
  SpfEvaluator e(z, o);
  SpfOutcome r = e.Check("2001:db8::1", "a@b.example", "h.example");
  if (r.dns_lookups > 11) __builtin_trap();  // the limit must hold
  e.Check("192.0.2.1", "", "b.example");
  return 0;
}
