// A peer's frame: the 40-byte header (wire::DecodeHeader) and, for a BITMAP
// frame, its payload (Bitmap::Load). Invariants: a decoded header's payload
// is within the limit, WRITE/RESYNC_DATA carry exactly their length, ZERO
// none; a loaded bitmap never counts more dirty bytes than the device has.
#include <cstdint>
#include <cstdlib>

#include "mirror/bitmap.h"
#include "mirror/wire.h"

using namespace cloudkeep::mirror;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < wire::kHeaderBytes) return 0;
  auto h = wire::DecodeHeader(data);
  if (h.ok()) {
    if (h->payload_bytes > wire::kMaxPayload) abort();
    if ((h->type == wire::Type::kWrite || h->type == wire::Type::kResyncData) &&
        h->payload_bytes != h->length)
      abort();
    if (h->type == wire::Type::kZero && h->payload_bytes != 0) abort();
    (void)wire::TypeName(h->type);
  }
  // The rest as a BITMAP payload for a device whose size the header's offset picks.
  const uint64_t device = (uint64_t{data[0]} << 20) + 65536 * (1 + data[1] % 64);
  Bitmap bm(device, 65536);
  if (bm.Load(data + wire::kHeaderBytes, size - wire::kHeaderBytes) && bm.DirtyBytes() > device)
    abort();
  return 0;
}
