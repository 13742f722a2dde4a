// CRC-32C (Castagnoli, the iSCSI/ext4 polynomial 0x1EDC6F41, reflected),
// the checksum of cloudkeep's on-disk metadata slots and headers. Written
// here because the one Debian library with a fast one (ISA-L) would be a
// dependency for two 4 KiB checksums per metadata write.
//
// Thread safety: pure function (its table is built once, thread-safely).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloudkeep {

// Continues `crc` (0 to start) over `size` bytes; Crc32c("123456789", 9) == 0xE3069283.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace cloudkeep
