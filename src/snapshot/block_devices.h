// What this machine has attached: block devices from /sys/block, mounts
// from /proc/self/mountinfo, stable names from /dev/disk/by-id.
//
// Paths are parameters so that tests can point them at a fixture tree.
#pragma once

#include <string>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "snapshot/model.h"

namespace cloudkeep::snapshot {

// Defined in core, where the modules that are not snapshot's read them too.
using cloudkeep::MountEntry;
using cloudkeep::ReadMountInfo;
using cloudkeep::SystemPaths;

// Every disk and partition; loop, ram and zram devices only when include_all.
Result<std::vector<Volume>> ListBlockDevices(bool include_all, const SystemPaths& paths = {});

// Describes one block device or image file as a Volume; kUsage if it does not
// exist or is neither. An image file's mountpoints are those of the loop
// devices backed by it.
Result<Volume> DescribeVolume(const std::string& path, const SystemPaths& paths = {});

// Mountpoints of the block device with this number (empty when unmounted).
std::vector<MountEntry> MountsOfDevice(unsigned major, unsigned minor,
                                       const SystemPaths& paths = {});

// Loop devices ("/dev/loop3") whose backing file is the file at `path`,
// matched by device and inode (a renamed or re-linked file still matches).
std::vector<std::string> LoopDevicesBackedBy(const std::string& path,
                                             const SystemPaths& paths = {});

// Other processes that hold the file at `path` open for writing, as
// "PID (COMMAND)": what fuser(1) finds, from /proc/PID/fd and fdinfo flags.
std::vector<std::string> WritersOf(const std::string& path, const SystemPaths& paths = {});

// "xfs", "btrfs", "ext4" or "" from the superblock at the start of `path`.
std::string ProbeFilesystem(const std::string& path);

}  // namespace cloudkeep::snapshot
