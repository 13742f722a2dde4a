// Every byte string a responder can receive: it must never crash, never
// answer with more bytes than it got, and only answer probes and hellos.
#include <cstdint>
#include <cstring>
#include <vector>

#include "latency/wire.h"

using namespace cloudkeep::latency;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> msg(data, data + size);
  bool answered = wire::MakeReply(msg, 12345, "fuzz-name", "fuzz-zone");
  if (msg.size() != size) __builtin_trap();
  if (answered) {
    auto t = wire::PeekType({data, size});
    if (!t || (*t != wire::Type::kProbe && *t != wire::Type::kHello)) __builtin_trap();
    auto reply = wire::DecodeProbe(msg);
    if (!reply || (reply->type != wire::Type::kReply && reply->type != wire::Type::kHelloReply))
      __builtin_trap();
    if (reply->type == wire::Type::kHelloReply && !wire::DecodeHelloReply(msg)) __builtin_trap();
    if (wire::MakeReply(msg, 1, "", "")) __builtin_trap();  // a reply is never answered
  }
  (void)wire::DecodeProbe({data, size}, true);
  (void)wire::DecodeHelloReply({data, size});
  (void)wire::DecodeControl({data, size}, wire::Type::kControl, "token");
  (void)wire::DecodeControl({data, size}, wire::Type::kControlReply, "");
  return 0;
}
