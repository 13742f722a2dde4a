// The transmission phase: after a well-formed handshake (structured replies,
// base:allocation, GO), the input is the client's stream of requests.
#include "nbd/protocol.h"
#include "nbd_fuzz_harness.h"

using namespace cloudkeep::nbd::proto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string prefix = [] {
    std::string p;
    Put32(&p, kClientFixedNewstyle | kClientNoZeroes);
    auto option = [&](uint32_t opt, const std::string& d) {
      Put64(&p, kIHaveOpt);
      Put32(&p, opt);
      Put32(&p, static_cast<uint32_t>(d.size()));
      p += d;
    };
    option(kOptStructuredReply, "");
    std::string meta;
    Put32(&meta, 0);
    Put32(&meta, 1);
    Put32(&meta, 15);
    meta += "base:allocation";
    option(kOptSetMetaContext, meta);
    std::string go;
    Put32(&go, 0);
    Put16(&go, 0);
    option(kOptGo, go);
    return p;
  }();
  cloudkeep::nbd::fuzz::Serve(prefix + std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
