// The create and prune orchestrations, written once for every provider.
//
// CreateSnapshots follows docs/design.md's data flow: resolve -> consistency
// Begin (hooks, locks, freeze) -> Provider::Capture -> consistency End (thaw,
// unlock, post hooks; always) -> Provider::Finalize. If the filesystems did not
// stay frozen for the whole capture (the watchdog thawed them), the run fails
// rather than record a consistency it did not have.
//
// PruneVolumes applies one RetentionPolicy per volume and deletes what it
// removes through the provider, reporting every snapshot's fate.
#pragma once

#include <string>
#include <vector>

#include "snapshot/consistency.h"
#include "snapshot/provider.h"
#include "snapshot/retention.h"

namespace cloudkeep::snapshot {

struct CreateOutcome {
  std::vector<Snapshot> snapshots;
  std::vector<std::string> notes;
  std::string post_hook_error;  // the snapshots are complete, but a post hook failed
};

Result<CreateOutcome> CreateSnapshots(Provider& provider, CreateRequest request,
                                      ConsistencyBracket& session);

struct PruneOptions {
  RetentionPolicy policy;
  bool dry_run = false;
  bool allow_empty = false;  // allow removing a volume's newest snapshot or all of them
  int concurrency = 0;
};

struct PruneEntry {
  RetentionDecision decision;
  std::optional<DeleteOutcome> outcome;  // for removed snapshots
};

struct PruneVolumeReport {
  std::string volume_id;
  std::vector<PruneEntry> entries;  // newest first
};

struct PruneReport {
  std::vector<PruneVolumeReport> volumes;
  size_t kept = 0, removed = 0, failed = 0, skipped = 0;
  // Snapshots whose records are damaged: listed under every volume, weighed by none.
  std::vector<std::string> damaged;
};

// kUsage when the policy is empty or when it would remove a volume's newest
// snapshot (or all of them) without allow_empty; nothing is deleted then.
Result<PruneReport> PruneVolumes(Provider& provider, const std::vector<std::string>& volume_specs,
                                 const PruneOptions& options, const Clock& clock);

}  // namespace cloudkeep::snapshot
