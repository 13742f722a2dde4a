// The fixed newstyle handshake: client flags, then options with untrusted
// lengths (INFO/GO names and info lists, META_CONTEXT queries, LIST, unknown).
#include "nbd_fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloudkeep::nbd::fuzz::Serve(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
