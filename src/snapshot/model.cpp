#include "snapshot/model.h"

#include <fmt/format.h>

namespace cloudkeep::snapshot {

const char* ConsistencyName(Consistency c) {
  switch (c) {
    case Consistency::kCrash:
      return "crash";
    case Consistency::kFilesystem:
      return "filesystem";
    case Consistency::kApplication:
      return "application";
  }
  return "crash";
}

std::optional<Consistency> ParseConsistency(const std::string& name) {
  if (name == "crash") return Consistency::kCrash;
  if (name == "filesystem") return Consistency::kFilesystem;
  if (name == "application") return Consistency::kApplication;
  return std::nullopt;
}

Json SnapshotToJson(const Snapshot& s) {
  Json j;
  j["id"] = s.id;
  if (!s.damaged.empty()) {  // nothing else about it is known
    j["state"] = s.state;
    j["damaged"] = s.damaged;
    return j;
  }
  j["volume_id"] = s.volume_id;
  if (!s.volume_device.empty()) j["volume_device"] = s.volume_device;
  // Milliseconds: several snapshots a second must still sort by time.
  j["created"] = FormatRfc3339(s.created, true);
  j["state"] = s.state;
  if (!s.progress.empty()) j["progress"] = s.progress;
  j["size_bytes"] = s.size_bytes;
  if (s.stored_bytes) j["stored_bytes"] = *s.stored_bytes;
  if (s.new_bytes) j["new_bytes"] = *s.new_bytes;
  if (s.chunks) j["chunks"] = *s.chunks;
  j["consistency"] = ConsistencyName(s.consistency);
  j["description"] = s.description;
  j["tags"] = Json::object();
  for (const auto& [k, v] : s.tags) j["tags"][k] = v;
  j["database"] = Json::object();
  for (const auto& [k, v] : s.database) j["database"][k] = v;
  if (s.freeze_us) j["freeze_us"] = *s.freeze_us;
  if (s.lock_us) j["lock_us"] = *s.lock_us;
  return j;
}

Json VolumeToJson(const Volume& v) {
  Json j;
  j["id"] = v.id;
  j["device"] = v.device;
  j["kind"] = v.kind;
  j["size_bytes"] = v.size_bytes;
  j["mountpoint"] = v.mountpoint.empty() ? Json(nullptr) : Json(v.mountpoint);
  j["mountpoints"] = v.mountpoints;
  j["filesystem"] = v.filesystem.empty() ? Json(nullptr) : Json(v.filesystem);
  for (const auto& [k, val] : v.attributes) j[k] = val;
  return j;
}

bool IsSnapshotId(const std::string& id) {
  if (id.rfind("snap-", 0) != 0) return false;
  std::string hex = id.substr(5);
  if (hex.size() != 17 && hex.size() != 8) return false;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<Tag> ParseTag(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::Usage(fmt::format("invalid tag '{}': expected KEY=VALUE", text));
  }
  return Tag{text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace cloudkeep::snapshot
