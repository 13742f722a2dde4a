// The store's "keys" object as an object-store operator may rewrite it.
// Invariants: a file that parses encodes and parses to the same fields; an
// unlock with any password fails cleanly (the fuzzer cannot know the key),
// and only cheap costs are tried so that a run stays fast.
#include <cstddef>
#include <cstdint>
#include <string>

#include "seal/seal.h"

using namespace cloudkeep::seal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto file = ParseKeyFile(text);
  if (!file.ok()) {
    if (file.status().message().find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  auto again = ParseKeyFile(EncodeKeyFile(*file));
  if (!again.ok() || again->salt != file->salt || again->nonce != file->nonce ||
      again->wrapped_key != file->wrapped_key || again->kdf.opslimit != file->kdf.opslimit ||
      again->kdf.memlimit != file->kdf.memlimit)
    __builtin_trap();
  if (file->kdf.opslimit <= 2 && file->kdf.memlimit <= 65536) {
    auto keys = UnlockKeys(*file, "fuzz");
    // Only the golden seed's password unlocks anything; "fuzz" is not it.
    if (keys.ok()) __builtin_trap();
  }
  return 0;
}
