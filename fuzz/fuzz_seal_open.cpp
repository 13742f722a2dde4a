// A sealed object as an object store returns it: any bytes, under one of a
// few names. Invariants: Open never reads out of bounds; what opens is
// exactly kSealOverhead bytes shorter and seals again to something that
// opens to the same bytes; and the input taken as a plaintext, sealed and
// then altered at one position the input picks, never opens.
#include <cstddef>
#include <cstdint>
#include <string>

#include "seal/seal.h"

using namespace cloudkeep::seal;

namespace {

const Keys& FuzzKeys() {
  // The master key of the golden objects of tests/unit/seal/kat_test.cpp
  // (000102..1f), so that the seed corpus holds objects that open.
  static const Keys keys = [] {
    SecretKey master;
    for (size_t i = 0; i < master.bytes.size(); ++i) master.bytes[i] = static_cast<uint8_t>(i);
    return DeriveKeys(master);
  }();
  return keys;
}

const char* const kNames[] = {
    "snapshots/snap-0123456789abcdef0.json",
    "chunks/ab/ab0123456789abcdef0123456789abcdef0123456789abcdef01234567", "", "keys"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Keys& keys = FuzzKeys();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const char* name : kNames) {
    auto plain = Open(keys, bytes, name);
    if (!plain.ok()) {
      if (plain.status().message().find('\n') != std::string::npos) __builtin_trap();
      continue;
    }
    if (plain->size() + kSealOverhead != size) __builtin_trap();
    auto again = Open(keys, Seal(keys, *plain, name), name);
    if (!again.ok() || *again != *plain) __builtin_trap();
  }
  if (size >= 2) {
    const std::string_view plaintext(bytes.data() + 2, size - 2);
    std::string sealed = Seal(keys, plaintext, kNames[1]);
    const size_t at = (size_t{data[0]} << 8 | data[1]) % sealed.size();
    sealed[at] = static_cast<char>(sealed[at] ^ (1 + data[0] % 255));
    if (Open(keys, sealed, kNames[1]).ok()) __builtin_trap();
  }
  return 0;
}
