#include "providers/aws/aws_provider.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <regex>
#include <thread>

#include "aws/http.h"
#include "core/log.h"

namespace cloudkeep::aws {

namespace fs = std::filesystem;
using snapshot::DeleteOutcome;
using snapshot::DeleteResult;
using snapshot::Snapshot;
using snapshot::Volume;

namespace {

constexpr const char* kTagPrefix = "cloudkeep:";
constexpr const char* kNvmePrefix = "nvme-Amazon_Elastic_Block_Store_";
// DescribeSnapshots' largest page.
constexpr int kPageSize = 1000;

class AwsCapture final : public snapshot::CaptureHandle {
 public:
  std::vector<Ec2Snapshot> snapshots;
  std::map<std::string, std::string> devices;  // volume id -> local device
  bool wait = false;
};

bool IsHexId(const std::string& id, const std::string& prefix) {
  if (id.rfind(prefix, 0) != 0) return false;
  std::string hex = id.substr(prefix.size());
  if (hex.size() != 8 && hex.size() != 17) return false;
  return std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void AddTags(Params& p, const std::string& prefix, const std::map<std::string, std::string>& tags) {
  int i = 1;
  for (const auto& [k, v] : tags) {
    p.emplace_back(fmt::format("{}Tag.{}.Key", prefix, i), k);
    p.emplace_back(fmt::format("{}Tag.{}.Value", prefix, i), v);
    ++i;
  }
}

std::string MalformedSnapshot(const std::string& id) {
  return fmt::format("malformed snapshot id '{}': expected snap- followed by 8 or 17 hex digits",
                     id);
}

}  // namespace

bool IsVolumeId(const std::string& id) {
  return IsHexId(id, "vol-");
}

bool IsRegionName(const std::string& region) {
  static const std::regex re("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]{1,2}$");
  return std::regex_match(region, re);
}

std::map<std::string, std::string> MapEbsDevices(const std::string& by_id_dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(by_id_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(kNvmePrefix, 0) != 0 || name.find("-part") != std::string::npos) continue;
    // The NVMe serial is the volume id without its dash: "vol0123456789abcdef0".
    std::string serial = name.substr(std::string(kNvmePrefix).size());
    if (serial.rfind("vol", 0) != 0) continue;
    std::string vid = serial[3] == '-' ? serial : "vol-" + serial.substr(3);
    if (!IsVolumeId(vid)) continue;
    fs::path target = fs::canonical(e.path(), ec);
    if (!ec) out[vid] = target.string();
  }
  return out;
}

std::map<std::string, std::string> CreateTags(const snapshot::SnapshotMetadata& meta,
                                              const std::string& volume_id) {
  std::map<std::string, std::string> tags = meta.tags;
  tags["created-by"] = "cloudkeep";
  tags[std::string(kTagPrefix) + "volume"] = volume_id;
  tags[std::string(kTagPrefix) + "consistency"] = snapshot::ConsistencyName(meta.consistency);
  for (const auto& [k, v] : meta.database) tags[kTagPrefix + k] = v;
  if (meta.freeze_us) tags[std::string(kTagPrefix) + "freeze_us"] = std::to_string(*meta.freeze_us);
  if (meta.lock_us) tags[std::string(kTagPrefix) + "lock_us"] = std::to_string(*meta.lock_us);
  return tags;
}

Snapshot ToSnapshot(const Ec2Snapshot& e) {
  Snapshot s;
  s.id = e.id;
  s.volume_id = e.volume_id;
  auto t = ParseRfc3339(e.start_time);
  if (t.ok()) s.created = *t;
  s.state = e.state;
  s.progress = e.progress;
  s.size_bytes = e.volume_size_gib << 30;
  s.description = e.description;
  for (const auto& [k, v] : e.tags) {
    if (k.rfind(kTagPrefix, 0) != 0) {
      s.tags[k] = v;
      continue;
    }
    std::string key = k.substr(std::string(kTagPrefix).size());
    if (key == "consistency") {
      if (auto c = snapshot::ParseConsistency(v)) s.consistency = *c;
    } else if (key == "freeze_us" || key == "lock_us") {
      try {
        (key == "freeze_us" ? s.freeze_us : s.lock_us) = std::stoll(v);
      } catch (...) {
        // A hand-edited tag is not worth failing a listing over.
      }
    } else if (key == "device") {
      s.volume_device = v;
    } else if (key != "volume") {
      s.database[key] = v;
    }
  }
  return s;
}

AwsProvider::AwsProvider(AwsProviderOptions options)
    : options_(std::move(options)),
      imds_(ImdsOptions::FromEnvironment()),
      credentials_(
          ChainOptions{options_.profile, options_.region, "", "", std::chrono::seconds(300)},
          &imds_) {}

AwsProvider::~AwsProvider() = default;

Result<Ec2Client*> AwsProvider::Client() {
  if (client_) return client_.get();
  CK_ASSIGN_OR_RETURN(std::string region, credentials_.Region());
  if (!IsRegionName(region))
    return Status::Usage(
        fmt::format("unknown AWS region '{}': expected a region name such as us-east-1", region));
  Ec2Options o;
  o.region = region;
  o.endpoint = options_.endpoint_url;
  if (o.endpoint.empty()) {
    const char* e = std::getenv("AWS_ENDPOINT_URL_EC2");
    if (!e || !*e) e = std::getenv("AWS_ENDPOINT_URL");
    o.endpoint = e && *e ? e : fmt::format("https://ec2.{}.amazonaws.com", region);
  }
  CK_RETURN_IF_ERROR(ParseUrl(o.endpoint).status());
  log::Debug("aws: region {}, endpoint {}", region, o.endpoint);
  client_ = std::make_unique<Ec2Client>(o, &credentials_);
  return client_.get();
}

Result<std::string> AwsProvider::InstanceId() {
  if (!instance_id_.empty()) return instance_id_;
  auto id = imds_.Get("/latest/meta-data/instance-id");
  if (!id.ok())
    return Status::Failure(
        "cannot tell which EC2 instance this is (" + id.status().message() +
        "): name volumes as vol-… ids instead of using --all-attached / volumes");
  instance_id_ = *id;
  return instance_id_;
}

Result<std::vector<Ec2Volume>> AwsProvider::DescribeVolumes(const Params& base) {
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  std::vector<Ec2Volume> out;
  std::string token;
  do {
    Params p = base;
    if (!token.empty()) p.emplace_back("NextToken", token);
    CK_ASSIGN_OR_RETURN(XmlNode doc, ec2->CallOrError("DescribeVolumes", p));
    CK_ASSIGN_OR_RETURN(VolumePage page, ParseDescribeVolumes(doc));
    for (auto& v : page.volumes) out.push_back(std::move(v));
    token = page.next_token;
  } while (!token.empty());
  return out;
}

Volume AwsProvider::ToVolume(const Ec2Volume& v,
                             const std::map<std::string, std::string>& devices) {
  Volume vol;
  vol.id = v.id;
  vol.kind =
      v.type.empty() ? "ebs" : "ebs/" + v.type;  // "ebs/gp3": the table shows the volume type
  vol.size_bytes = v.size_gib << 30;
  vol.attributes["volume_type"] = v.type;
  vol.attributes["availability_zone"] = v.availability_zone;
  vol.attributes["state"] = v.state;
  for (const auto& a : v.attachments) {
    if (!instance_id_.empty() && a.instance_id != instance_id_) continue;
    vol.attributes["aws_device"] = a.device;
    vol.attributes["instance_id"] = a.instance_id;
    vol.attributes["delete_on_termination"] = a.delete_on_termination ? "true" : "false";
  }
  auto it = devices.find(v.id);
  if (it != devices.end()) {
    vol.device = it->second;
    auto local = snapshot::DescribeVolume(it->second, options_.paths);
    if (local.ok()) {
      vol.mountpoint = local->mountpoint;
      vol.mountpoints = local->mountpoints;
      vol.filesystem = local->filesystem;
    }
  }
  return vol;
}

Result<std::vector<Volume>> AwsProvider::ListVolumes(bool include_all) {
  (void)include_all;  // EBS has no loop or ram devices to hide
  CK_RETURN_IF_ERROR(Client().status());
  CK_ASSIGN_OR_RETURN(std::string instance, InstanceId());
  CK_ASSIGN_OR_RETURN(auto vols, DescribeVolumes({{"Filter.1.Name", "attachment.instance-id"},
                                                  {"Filter.1.Value.1", instance}}));
  auto devices = MapEbsDevices(options_.paths.by_id);
  std::vector<Volume> out;
  for (const auto& v : vols) out.push_back(ToVolume(v, devices));
  std::sort(out.begin(), out.end(), [](const Volume& a, const Volume& b) {
    return a.attributes.at("aws_device") < b.attributes.at("aws_device");
  });
  return out;
}

Result<Volume> AwsProvider::ResolveVolume(const std::string& spec) {
  if (IsVolumeId(spec)) {
    CK_ASSIGN_OR_RETURN(auto vols, DescribeVolumes({{"VolumeId.1", spec}}));
    if (vols.empty()) return Status::Usage(fmt::format("EBS volume '{}' not found", spec));
    return ToVolume(vols.front(), MapEbsDevices(options_.paths.by_id));
  }
  if (spec.rfind("/dev/", 0) == 0) {
    CK_ASSIGN_OR_RETURN(auto vols, ListVolumes(false));
    std::error_code ec;
    std::string real = fs::canonical(spec, ec).string();
    for (auto& v : vols) {
      if (v.device == spec || (!ec && v.device == real) || v.attributes["aws_device"] == spec)
        return v;
    }
    return Status::Usage(fmt::format("'{}' is not an EBS volume attached to this instance", spec));
  }
  return Status::Usage(
      fmt::format("malformed volume '{}': expected an EBS volume id (vol- and 8 or 17 hex digits) "
                  "or a /dev path",
                  spec));
}

std::string AwsProvider::CanonicalVolumeId(const std::string& spec) {
  if (spec.rfind("/dev/", 0) == 0) {
    auto v = ResolveVolume(spec);
    if (v.ok()) return v->id;
  }
  return spec;
}

Status AwsProvider::Prepare(const snapshot::CreateRequest& request) {
  // Everything that can fail slowly (region, credentials, IMDS) fails here,
  // before any filesystem is frozen.
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  (void)ec2;
  CK_RETURN_IF_ERROR(credentials_.Get().status());
  if (request.all_attached) CK_RETURN_IF_ERROR(InstanceId().status());
  for (const auto& v : request.volumes)
    if (!IsVolumeId(v.id)) return Status::Usage(fmt::format("'{}' is not an EBS volume", v.id));
  if (!request.all_attached && request.exclude_boot)
    return Status::Usage("--exclude-boot only applies with --all-attached");
  return Status::Ok();
}

Result<std::unique_ptr<snapshot::CaptureHandle>> AwsProvider::Capture(
    const snapshot::CreateRequest& request) {
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  auto cap = std::make_unique<AwsCapture>();
  cap->wait = request.wait;
  for (const auto& v : request.volumes) cap->devices[v.id] = v.device;
  const auto& meta = request.metadata;
  if (request.all_attached) {
    // One CreateSnapshots call: EBS takes every volume at the same instant.
    Params p = {
        {"InstanceSpecification.InstanceId", instance_id_},
        {"InstanceSpecification.ExcludeBootVolume", request.exclude_boot ? "true" : "false"},
        {"TagSpecification.1.ResourceType", "snapshot"}};
    auto tags = CreateTags(meta, "");
    tags.erase(std::string(kTagPrefix) + "volume");  // EBS records the volume id itself
    AddTags(p, "TagSpecification.1.", tags);
    if (!meta.description.empty()) p.emplace_back("Description", meta.description);
    CK_ASSIGN_OR_RETURN(XmlNode doc, ec2->CallOrError("CreateSnapshots", p));
    CK_ASSIGN_OR_RETURN(cap->snapshots, ParseCreateSnapshots(doc));
    cap->notes.push_back(
        fmt::format("CreateSnapshots: {} volume{} of {} captured at one instant (crash-consistent "
                    "across volumes)",
                    cap->snapshots.size(), cap->snapshots.size() == 1 ? "" : "s", instance_id_));
  } else {
    if (request.volumes.size() > 1)
      cap->notes.push_back(
          "volumes named one by one are captured by separate CreateSnapshot calls; use "
          "--all-attached for one instant across the instance's volumes");
    for (const auto& v : request.volumes) {
      Params p = {{"VolumeId", v.id}, {"TagSpecification.1.ResourceType", "snapshot"}};
      AddTags(p, "TagSpecification.1.", CreateTags(meta, v.id));
      if (!meta.description.empty()) p.emplace_back("Description", meta.description);
      auto doc = ec2->CallOrError("CreateSnapshot", p);
      if (!doc.ok()) {
        Abandon(std::move(cap));
        return doc.status();
      }
      CK_ASSIGN_OR_RETURN(Ec2Snapshot s, ParseCreateSnapshot(*doc));
      cap->snapshots.push_back(std::move(s));
    }
  }
  return std::unique_ptr<snapshot::CaptureHandle>(std::move(cap));
}

Result<std::vector<Snapshot>> AwsProvider::Finalize(std::unique_ptr<snapshot::CaptureHandle> handle,
                                                    const snapshot::SnapshotMetadata& metadata) {
  auto* cap = static_cast<AwsCapture*>(handle.get());
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  std::vector<std::string> ids;
  for (const auto& s : cap->snapshots) ids.push_back(s.id);
  // Freeze and lock windows are measured after the thaw, so they are tagged now.
  std::map<std::string, std::string> late;
  if (metadata.freeze_us)
    late[std::string(kTagPrefix) + "freeze_us"] = std::to_string(*metadata.freeze_us);
  if (metadata.lock_us)
    late[std::string(kTagPrefix) + "lock_us"] = std::to_string(*metadata.lock_us);
  if (!late.empty() && !ids.empty()) {
    Params p;
    for (size_t i = 0; i < ids.size(); ++i)
      p.emplace_back(fmt::format("ResourceId.{}", i + 1), ids[i]);
    AddTags(p, "", late);
    CK_RETURN_IF_ERROR(ec2->CallOrError("CreateTags", p).status());
    for (auto& s : cap->snapshots)
      for (const auto& [k, v] : late) s.tags[k] = v;
  }
  if (cap->wait && !ids.empty()) {
    log::Progress progress("waiting for EBS to complete the snapshots");
    int delay_ms = 500;
    for (;;) {
      Params p;
      for (size_t i = 0; i < ids.size(); ++i)
        p.emplace_back(fmt::format("SnapshotId.{}", i + 1), ids[i]);
      CK_ASSIGN_OR_RETURN(XmlNode doc, ec2->CallOrError("DescribeSnapshots", p));
      CK_ASSIGN_OR_RETURN(SnapshotPage page, ParseDescribeSnapshots(doc));
      size_t done = 0;
      uint64_t percent = 0;
      for (const auto& s : page.snapshots) {
        if (s.state == "error")
          return Status::Failure(fmt::format("EBS snapshot {} failed (state 'error')", s.id));
        done += s.state == "completed";
        percent += std::strtoull(s.progress.c_str(), nullptr, 10);
      }
      progress.Update(percent, 100 * page.snapshots.size());
      log::Debug("aws: {}/{} snapshots completed", done, page.snapshots.size());
      if (done == page.snapshots.size()) {
        cap->snapshots = page.snapshots;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      delay_ms = std::min(delay_ms * 3 / 2, 15000);
    }
    progress.Finish();
  }
  std::vector<Snapshot> out;
  for (const auto& e : cap->snapshots) {
    Snapshot s = ToSnapshot(e);
    // CreateSnapshots' reply omits tags; the request's are the snapshot's.
    if (e.tags.empty()) {
      for (const auto& [k, v] : metadata.tags) s.tags[k] = v;
      s.tags["created-by"] = "cloudkeep";
      s.database = metadata.database;
      s.consistency = metadata.consistency;
    }
    s.freeze_us = metadata.freeze_us;
    s.lock_us = metadata.lock_us;
    auto d = cap->devices.find(s.volume_id);
    if (d != cap->devices.end()) s.volume_device = d->second;
    out.push_back(std::move(s));
  }
  return out;
}

void AwsProvider::Abandon(std::unique_ptr<snapshot::CaptureHandle> handle) {
  auto* cap = static_cast<AwsCapture*>(handle.get());
  if (!cap || cap->snapshots.empty()) return;
  std::vector<std::string> ids;
  for (const auto& s : cap->snapshots) ids.push_back(s.id);
  auto r = DeleteSnapshots(ids, {});
  if (!r.ok()) log::Warn("could not delete abandoned snapshots: {}", r.status().message());
}

Result<std::vector<Snapshot>> AwsProvider::ListSnapshots(const snapshot::SnapshotFilter& filter) {
  for (const auto& v : filter.volume_ids)
    if (!IsVolumeId(v))
      return Status::Usage(
          fmt::format("malformed volume '{}': expected an EBS volume id (vol- and 8 or 17 hex "
                      "digits) or an attached /dev path",
                      v));
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  Params base = {{"Owner.1", "self"}, {"MaxResults", std::to_string(kPageSize)}};
  int f = 1;
  if (!filter.volume_ids.empty()) {
    base.emplace_back(fmt::format("Filter.{}.Name", f), "volume-id");
    for (size_t i = 0; i < filter.volume_ids.size(); ++i)
      base.emplace_back(fmt::format("Filter.{}.Value.{}", f, i + 1), filter.volume_ids[i]);
    ++f;
  }
  for (const auto& [k, v] : filter.tags) {
    base.emplace_back(fmt::format("Filter.{}.Name", f), "tag:" + k);
    base.emplace_back(fmt::format("Filter.{}.Value.1", f), v);
    ++f;
  }
  std::vector<Snapshot> out;
  std::string token;
  do {
    Params p = base;
    if (!token.empty()) p.emplace_back("NextToken", token);
    CK_ASSIGN_OR_RETURN(XmlNode doc, ec2->CallOrError("DescribeSnapshots", p));
    CK_ASSIGN_OR_RETURN(SnapshotPage page, ParseDescribeSnapshots(doc));
    for (const auto& e : page.snapshots) {
      Snapshot s = ToSnapshot(e);
      if (filter.created_before && s.created >= *filter.created_before) continue;
      out.push_back(std::move(s));
    }
    token = page.next_token;
  } while (!token.empty());
  std::stable_sort(out.begin(), out.end(),
                   [](const Snapshot& a, const Snapshot& b) { return a.created < b.created; });
  return out;
}

Result<Snapshot> AwsProvider::GetSnapshot(const std::string& id) {
  if (!snapshot::IsSnapshotId(id)) return Status::Usage(MalformedSnapshot(id));
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  CK_ASSIGN_OR_RETURN(Ec2Reply reply, ec2->Call("DescribeSnapshots", {{"SnapshotId.1", id}}));
  if (!reply.ok) {
    if (reply.error.code == "InvalidSnapshot.NotFound")
      return Status::Usage(fmt::format("snapshot '{}' not found in {}", id, ec2->region()));
    return ec2->ErrorStatus("DescribeSnapshots", reply.error);
  }
  CK_ASSIGN_OR_RETURN(SnapshotPage page, ParseDescribeSnapshots(reply.doc));
  if (page.snapshots.empty())
    return Status::Usage(fmt::format("snapshot '{}' not found in {}", id, ec2->region()));
  return ToSnapshot(page.snapshots.front());
}

Result<std::vector<DeleteOutcome>> AwsProvider::DeleteSnapshots(
    const std::vector<std::string>& ids, const snapshot::DeleteOptions& options) {
  for (const auto& id : ids)
    if (!snapshot::IsSnapshotId(id)) return Status::Usage(MalformedSnapshot(id));
  CK_ASSIGN_OR_RETURN(Ec2Client * ec2, Client());
  std::vector<DeleteOutcome> outcomes(ids.size());
  if (ids.empty()) return outcomes;
  int workers = options.concurrency > 0 ? options.concurrency : options_.default_concurrency;
  workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(workers), ids.size()));
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex fatal_mu;
  Status fatal;

  auto work = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= ids.size() || stop.load()) return;
      DeleteOutcome& o = outcomes[i];
      o.snapshot_id = ids[i];
      Params p = {{"SnapshotId", ids[i]}};
      if (options.dry_run) p.emplace_back("DryRun", "true");
      auto reply = ec2->Call("DeleteSnapshot", p);
      if (!reply.ok()) {
        o.result = DeleteResult::kFailed;
        o.reason = reply.status().message();
      } else if (reply->ok) {
        o.result = options.dry_run ? DeleteResult::kWouldDelete : DeleteResult::kDeleted;
      } else {
        const Ec2Error& e = reply->error;
        if (e.code == "DryRunOperation") {
          o.result = DeleteResult::kWouldDelete;
        } else if (e.code == "InvalidSnapshot.InUse") {
          o.result = DeleteResult::kSkipped;
          o.reason = e.message;
        } else if (e.code == "InvalidSnapshot.NotFound") {
          o.result = DeleteResult::kAlreadyGone;
        } else if (e.code == "UnauthorizedOperation" || e.code == "AuthFailure" ||
                   e.code == "SignatureDoesNotMatch" || e.code == "ExpiredToken") {
          // Every other deletion would fail the same way: stop and say why once.
          std::lock_guard<std::mutex> lock(fatal_mu);
          if (fatal.ok()) fatal = ec2->ErrorStatus("DeleteSnapshot", e);
          stop = true;
          o.result = DeleteResult::kFailed;
          o.reason = e.code;
        } else {
          o.result = DeleteResult::kFailed;
          o.reason = e.code + ": " + e.message;
        }
      }
      done++;
    }
  };
  log::Progress progress(options.dry_run ? "checking deletions (dry run)" : "deleting snapshots");
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(work);
  while (done.load() < ids.size() && !stop.load()) {
    progress.Update(done.load(), ids.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : pool) t.join();
  progress.Finish();
  if (!fatal.ok()) return fatal;
  log::Debug("aws: {} deletions, {} retried calls", ids.size(), ec2->retries());
  return outcomes;
}

}  // namespace cloudkeep::aws
