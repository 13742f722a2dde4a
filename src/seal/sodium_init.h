// Internal to ck_seal: libsodium is initialised once, before its first use.
//
// sodium_init() is itself safe to call from several threads and more than
// once; the function-local static makes the check free after the first call.
#pragma once

namespace cloudkeep::seal {

// Aborts when libsodium cannot initialise (no entropy source): nothing in
// this library is safe without its random numbers.
void EnsureSodium();

}  // namespace cloudkeep::seal
