// RetentionPolicy: which snapshots of one volume to keep and which to remove.
//
// The semantics are restic's `forget` (internal/restic/snapshot_policy.go),
// the ones operators already know:
//  - snapshots are considered newest first;
//  - --keep-last N keeps the N newest;
//  - --keep-hourly/daily/weekly/monthly/yearly N keep the newest snapshot of
//    each of the N most recent calendar periods *that have a snapshot*
//    (empty periods do not count); periods are in local time, weeks are ISO
//    weeks;
//  - --keep-within AGE keeps every snapshot taken within AGE of the newest
//    snapshot (not of "now"), so a volume whose backups stopped keeps them;
//  - a snapshot kept by any rule is kept (rules are ORed), with every
//    reason recorded; -1 as a count means unlimited.
// On top of restic's rules, two of cloudkeep's own:
//  - --older-than AGE (the original tool's -o DAYS): only snapshots older
//    than AGE, measured from now, may be removed; alone, it removes all of
//    them;
//  - --max-count N: never keep more than N; the oldest kept go first.
//
// ApplyRetention is a pure function of its inputs and the clock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/duration.h"
#include "snapshot/model.h"

namespace cloudkeep::snapshot {

struct RetentionPolicy {
  int keep_last = 0;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  std::optional<Micros> keep_within;
  std::optional<Micros> older_than;
  std::optional<int> max_count;

  // True when no rule is set: nothing may be removed.
  bool empty() const;
  // "keep 7 daily, 4 weekly; older than 7d" for logs and dry runs.
  std::string Describe() const;
};

struct RetentionDecision {
  Snapshot snapshot;
  bool keep = true;
  std::vector<std::string> reasons;  // why it is kept, or why it goes
};

// Decides for every snapshot in `snapshots` (one volume's; any order).
// Decisions come back newest first.
std::vector<RetentionDecision> ApplyRetention(std::vector<Snapshot> snapshots,
                                              const RetentionPolicy& policy, TimePoint now);

}  // namespace cloudkeep::snapshot
