#include "snapshot/orchestrate.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"

namespace cloudkeep::snapshot {

Result<CreateOutcome> CreateSnapshots(Provider& provider, CreateRequest request,
                                      ConsistencyBracket& session) {
  CK_RETURN_IF_ERROR(session.Validate(request.volumes));
  CK_RETURN_IF_ERROR(provider.Prepare(request));
  CreateOutcome outcome;
  SnapshotMetadata& meta = request.metadata;

  // On the failure paths the returned error is the cause; a post hook that
  // also failed is logged beside it.
  auto log_post_hooks = [&] {
    if (!session.post_hook_error().empty()) log::Error("{}", session.post_hook_error());
  };
  Status begun = session.Begin(request.volumes, &meta);
  if (!begun.ok()) {
    Status ended = session.End(&meta);
    if (!ended.ok()) log::Error("{}", ended.message());
    log_post_hooks();
    return begun;
  }
  auto capture = provider.Capture(request);
  // Thaw and unlock before anything slow, whatever the capture did.
  Status ended = session.End(&meta);
  if (!capture.ok() || !ended.ok()) log_post_hooks();
  if (!capture.ok()) {
    // The capture's error is the cause; a thaw that failed too must still be
    // seen: a filesystem may have stayed frozen.
    if (!ended.ok()) log::Error("{}", ended.message());
    return capture.status();
  }
  if (!ended.ok()) {
    provider.Abandon(std::move(capture).value());
    return ended;
  }
  std::unique_ptr<CaptureHandle> handle = std::move(capture).value();
  outcome.notes = handle->notes;
  for (const auto& n : session.notes()) outcome.notes.push_back(n);
  outcome.post_hook_error = session.post_hook_error();
  auto finalized = provider.Finalize(std::move(handle), meta);
  if (!finalized.ok()) {
    log_post_hooks();
    return finalized.status();
  }
  outcome.snapshots = std::move(finalized).value();
  return outcome;
}

Result<PruneReport> PruneVolumes(Provider& provider, const std::vector<std::string>& volume_specs,
                                 const PruneOptions& options, const Clock& clock) {
  if (options.policy.empty()) {
    return Status::Usage(
        "no retention policy given: add -o AGE or a --keep-* rule (see 'cloudkeep snapshot prune "
        "--help')");
  }
  if (volume_specs.empty()) return Status::Usage("prune needs at least one -v VOLUME");
  PruneReport report;
  std::vector<std::string> to_delete;
  for (const auto& spec : volume_specs) {
    std::string vid = provider.CanonicalVolumeId(spec);
    // Two specs for one volume ("-v /dev/xvdf -v vol-0abc") are one volume:
    // weighed, reported and deleted from once.
    if (std::any_of(report.volumes.begin(), report.volumes.end(),
                    [&](const PruneVolumeReport& v) { return v.volume_id == vid; }))
      continue;
    SnapshotFilter filter;
    filter.volume_ids = {vid};
    CK_ASSIGN_OR_RETURN(auto listed, provider.ListSnapshots(filter));
    // A damaged record belongs to no known volume and has no time: the policy
    // cannot weigh it, and it is never removed by a prune.
    std::vector<Snapshot> snaps;
    for (auto& s : listed) {
      if (!s.damaged.empty()) {
        if (std::find(report.damaged.begin(), report.damaged.end(), s.id) == report.damaged.end())
          report.damaged.push_back(s.id);
        continue;
      }
      snaps.push_back(std::move(s));
    }
    PruneVolumeReport vr;
    vr.volume_id = vid;
    auto decisions = ApplyRetention(std::move(snaps), options.policy, clock.Now());
    size_t keep_count = 0;
    for (const auto& d : decisions) keep_count += d.keep;
    if (!options.allow_empty && !decisions.empty()) {
      if (keep_count == 0) {
        return Status::Usage(
            fmt::format("the policy would remove every snapshot of volume '{}' ({}); add "
                        "--allow-empty if that is intended",
                        vid, decisions.size()));
      }
      if (!decisions.front().keep) {
        return Status::Usage(
            fmt::format("the policy would remove the newest snapshot of volume '{}' ({}); add "
                        "--allow-empty if that is intended",
                        vid, decisions.front().snapshot.id));
      }
    }
    for (auto& d : decisions) {
      if (!d.keep) to_delete.push_back(d.snapshot.id);
      vr.entries.push_back({std::move(d), std::nullopt});
    }
    report.volumes.push_back(std::move(vr));
  }

  std::map<std::string, DeleteOutcome> outcomes;
  if (!to_delete.empty()) {
    DeleteOptions dopts;
    dopts.dry_run = options.dry_run;
    dopts.concurrency = options.concurrency;
    CK_ASSIGN_OR_RETURN(auto results, provider.DeleteSnapshots(to_delete, dopts));
    for (auto& r : results) outcomes[r.snapshot_id] = r;
  }
  for (auto& vr : report.volumes) {
    for (auto& e : vr.entries) {
      if (e.decision.keep) {
        ++report.kept;
        continue;
      }
      auto it = outcomes.find(e.decision.snapshot.id);
      if (it == outcomes.end()) continue;
      e.outcome = it->second;
      switch (it->second.result) {
        case DeleteResult::kDeleted:
        case DeleteResult::kAlreadyGone:
        case DeleteResult::kWouldDelete:
          ++report.removed;
          break;
        case DeleteResult::kSkipped:
          ++report.skipped;
          break;
        case DeleteResult::kFailed:
          ++report.failed;
          break;
      }
    }
  }
  return report;
}

}  // namespace cloudkeep::snapshot
