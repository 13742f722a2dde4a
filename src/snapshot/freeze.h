// Filesystem freeze: which mountpoints a run freezes, and the FIFREEZE /
// FITHAW ioctls themselves.
//
// The ioctls are called directly, never through fsfreeze(8): a freeze that
// silently did not happen because fsfreeze was not in cron's PATH is one of
// the failures cloudkeep exists to avoid. Targets are resolved once, before
// anything is touched, into a fixed order (sorted by path); a run freezes in
// that order and thaws in reverse.
//
// Functions here are stateless and safe to call from any thread; a
// FreezeTarget's descriptor belongs to whoever holds the value.
#pragma once

#include <string>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "snapshot/block_devices.h"
#include "snapshot/model.h"

namespace cloudkeep::snapshot {

struct FreezeRequest {
  std::vector<std::string> mountpoints;  // named by the user; empty: those of the volumes
  bool allow_root = false;               // --freeze-root
};

// The mountpoints to freeze, sorted and without duplicates. kUsage when a
// named path is not a mountpoint, when "/" would be frozen without
// allow_root, or when nothing at all would be frozen.
Result<std::vector<std::string>> ResolveFreezeTargets(const FreezeRequest& request,
                                                      const std::vector<Volume>& volumes,
                                                      const std::vector<MountEntry>& mounts);

// kUsage when an image file among `volumes` lives on one of `mountpoints`:
// the reflink copy of it would be written to a frozen filesystem and block.
Status CheckNothingWrittenToFrozen(const std::vector<std::string>& mountpoints,
                                   const std::vector<Volume>& volumes);

// An open directory on a mountpoint, as FIFREEZE wants it.
Result<UniqueFd> OpenMountpoint(const std::string& mountpoint);

// FIFREEZE. EBUSY (frozen already, by someone else) and EOPNOTSUPP are
// failures: the caller must not claim a freeze it did not make.
Status Freeze(int fd, const std::string& mountpoint);
// FITHAW. Returns false with *not_frozen = true when the filesystem was not
// frozen any more (EINVAL): someone — the watchdog — thawed it first.
Status Thaw(int fd, const std::string& mountpoint, bool* not_frozen);

}  // namespace cloudkeep::snapshot
