// What is on a block device image: its partitions (MBR, with logical
// partitions, or GPT) and the file system at an offset, read through any
// Backend — so that `snapshot mount --partition N` can set up a loop device
// over just that partition and mount it with the options its type needs.
//
// ReadPartitions and ProbeFilesystem parse untrusted bytes (a snapshot is
// whatever the volume held): every offset and count is checked against the
// device size, and a loop of logical partitions ends after 128.
//
// Thread safety: pure functions over the Backend (which is thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "nbd/backend.h"

namespace cloudkeep::nbd {

struct Partition {
  int number = 0;       // as Linux numbers them: MBR 1-4 primary, 5+ logical; GPT 1-128
  uint64_t offset = 0;  // bytes
  uint64_t size = 0;    // bytes
  std::string scheme;   // "mbr" or "gpt"
  std::string type;     // "0x83", or the GPT type GUID
};

// The partitions of the device; empty when it has no partition table (or
// holds a file system directly, which is checked first).
Result<std::vector<Partition>> ReadPartitions(Backend& device);

// "ext4" (also ext2/3), "xfs", "btrfs", "vfat", or "" when none is recognised.
Result<std::string> ProbeFilesystem(Backend& device, uint64_t offset, uint64_t size);

// Options for a read-only mount of a copy of a file system that may still be
// mounted elsewhere and was captured without a clean unmount:
//   ext4  ro,noload                 (no journal replay: the device is read-only)
//   xfs   ro,norecovery,nouuid      (no log recovery; the same UUID may be mounted)
//   btrfs ro,rescue=nologreplay     (no log tree replay; kernel 6.7+ gives a second
//                                    device with a mounted fsid a temporary fsid)
//   vfat  ro
std::string ReadOnlyMountOptions(const std::string& fstype);

}  // namespace cloudkeep::nbd
