// Rdata arrives from the network through libunbound: the parser must reject
// malformed records without reading past their end. The first byte picks
// the record type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail/dns_wire.h"

using namespace cloudkeep::mail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const RrType kTypes[] = {RrType::kA,   RrType::kNS, RrType::kCNAME, RrType::kSOA,
                                  RrType::kPTR, RrType::kMX, RrType::kTXT,   RrType::kAAAA};
  RrType t = kTypes[data[0] % 8];
  std::string_view rdata(reinterpret_cast<const char*>(data + 1), size - 1);
  auto text = RdataToText(t, rdata);
  // Every TXT string costs a length byte, so the text is shorter than the
  // rdata — except for a record with no strings (rdlength 0), the empty text.
  if (text && t == RrType::kTXT && !rdata.empty() && text->size() >= rdata.size()) __builtin_trap();
  auto fwd = ForwarderAddress(std::string(rdata));
  (void)fwd;
  return 0;
}
