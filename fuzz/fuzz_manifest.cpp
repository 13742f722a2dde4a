// Manifests are read back from disk, where they can be damaged or edited.
#include <cstddef>
#include <cstdint>
#include <string>

#include "providers/local/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto m = cloudkeep::local::DecodeManifest(bytes);
  if (m.ok()) {
    // A manifest that decodes must encode and decode to the same table.
    auto again = cloudkeep::local::DecodeManifest(cloudkeep::local::EncodeManifest(*m));
    if (!again.ok() || again->chunks != m->chunks) __builtin_trap();
  }
  return 0;
}
