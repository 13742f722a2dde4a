// The snapshot domain model shared by every provider.
//
// A Volume is something that can be snapshotted: a block device or an image
// file (local provider) or an EBS volume (AWS provider). A Snapshot is a
// full point-in-time image of one volume; providers store it incrementally
// but every snapshot restores on its own. These are plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/output.h"

namespace cloudkeep::snapshot {

// What a snapshot's contents can be trusted for (docs/design.md data flow).
enum class Consistency {
  kCrash,        // as if the power was cut: the volume may have been written during capture
  kFilesystem,   // every filesystem on it was frozen (FIFREEZE) during capture
  kApplication,  // filesystems frozen and applications (MySQL) quiesced
};
const char* ConsistencyName(Consistency c);
std::optional<Consistency> ParseConsistency(const std::string& name);

struct Volume {
  std::string id;      // stable identifier: realpath of an image, /dev/disk/by-id name, vol-…
  std::string device;  // /dev/… or the image path; empty when not attached here
  std::string kind;    // "disk", "part", "loop", "file", "ebs", …
  uint64_t size_bytes = 0;
  std::string mountpoint;  // first mountpoint, empty when not mounted
  std::vector<std::string> mountpoints;
  std::string filesystem;  // xfs, btrfs, ext4, … or empty
  std::map<std::string, std::string>
      attributes;  // provider extras (AWS device name, volume type, …)
};

struct Snapshot {
  std::string id;         // "snap-" and 17 hex digits
  std::string volume_id;  // Volume::id of the source
  std::string volume_device;
  TimePoint created{};
  std::string state = "completed";  // pending | completed | error | damaged
  // Why the snapshot's record cannot be read (state "damaged"); only id is known then.
  std::string damaged;
  std::string progress;  // "100%" on AWS
  uint64_t size_bytes = 0;
  std::optional<uint64_t> stored_bytes;  // bytes in the store referenced by this snapshot
  std::optional<uint64_t> new_bytes;     // bytes this snapshot added to the store
  std::optional<uint64_t> chunks;        // chunks referenced (zero chunks excluded)
  Consistency consistency = Consistency::kCrash;
  std::map<std::string, std::string> tags;
  std::string description;
  // Database coordinates recorded under the lock: binlog_file, binlog_position,
  // gtid_binlog_pos, relay_master_log_file, exec_master_log_pos, gtid_slave_pos …
  std::map<std::string, std::string> database;
  // Freeze and lock windows, in microseconds, when measured.
  std::optional<int64_t> freeze_us;
  std::optional<int64_t> lock_us;
};

Json SnapshotToJson(const Snapshot& s);
Json VolumeToJson(const Volume& v);

// Validates the id format: "snap-" followed by 8 or 17 lower-case hex digits.
bool IsSnapshotId(const std::string& id);

// A "K=V" tag from the command line; rejects an empty key.
struct Tag {
  std::string key, value;
};
Result<Tag> ParseTag(const std::string& text);

}  // namespace cloudkeep::snapshot
