// `cloudkeep snapshot …`: create, list, show, restore, verify, delete, prune.
// Flags in, module calls, output out; the logic lives in src/snapshot.
#include <fmt/format.h>

#include "cli/app.h"
#include "core/env.h"
#include "core/log.h"
#include "snapshot/orchestrate.h"

namespace cloudkeep::cli {

namespace {

using snapshot::Snapshot;

std::string TagsText(const std::map<std::string, std::string>& tags) {
  std::string out;
  for (const auto& [k, v] : tags) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "-" : out;
}

Result<std::map<std::string, std::string>> ParseTags(const std::vector<std::string>& raw) {
  std::map<std::string, std::string> out;
  for (const auto& t : raw) {
    CK_ASSIGN_OR_RETURN(snapshot::Tag tag, snapshot::ParseTag(t));
    out[tag.key] = tag.value;
  }
  return out;
}

// Exit 1, naming them, when any listed snapshot's record is damaged: the
// good ones were listed, but the store is not all well.
Status DamagedStatus(const std::vector<Snapshot>& snaps) {
  std::vector<std::string> ids;
  for (const auto& s : snaps)
    if (!s.damaged.empty()) ids.push_back(s.id);
  if (ids.empty()) return Status::Ok();
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
  return Status::Failure(fmt::format(
      "{} snapshot(s) have a damaged manifest: {} ('cloudkeep snapshot show ID' says why, "
      "'cloudkeep snapshot delete ID' removes one)",
      ids.size(), list));
}

void PrintSnapshotTable(const std::vector<Snapshot>& snaps) {
  Table t({"ID", "VOLUME", "CREATED", "SIZE", "STORED", "CONSISTENCY", "TAGS", "DESCRIPTION"},
          {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight,
           Table::Align::kRight});
  for (const auto& s : snaps) {
    if (!s.damaged.empty()) {
      t.AddRow({s.id, "?", "-", "-", "-", "DAMAGED", "-", s.damaged});
      continue;
    }
    t.AddRow({s.id, s.volume_id, FormatLocal(s.created), FormatBytes(s.size_bytes),
              s.stored_bytes ? FormatBytes(*s.stored_bytes) : "-",
              snapshot::ConsistencyName(s.consistency), TagsText(s.tags),
              s.description.empty() ? "-" : s.description});
  }
  PrintText(t.Render());
}

struct CreateFlags {
  std::vector<std::string> volumes;
  bool all_attached = false;
  bool exclude_boot = false;
  std::vector<std::string> tags;
  std::string description;
  bool wait = false;
  snapshot::ConsistencyOptions consistency;
};

void AddCreate(CLI::App* group, Context& ctx) {
  auto f = std::make_shared<CreateFlags>();
  auto* cmd = group->add_subcommand("create", "Take a point-in-time snapshot of volumes");
  cmd->add_option("VOLUME", f->volumes, "Block device, image file, or (aws) vol-… id");
  cmd->add_flag("--all-attached", f->all_attached, "Every volume attached to this machine");
  cmd->add_flag("--exclude-boot", f->exclude_boot,
                "With --all-attached on aws: leave out the boot volume");
  cmd->add_option("--tag", f->tags, "Tag the snapshot KEY=VALUE (repeatable)");
  cmd->add_option("--description", f->description, "Free text stored with the snapshot");
  cmd->add_flag("--wait", f->wait,
                "Return only when the snapshot is usable (aws: state 'completed')");
  AddConsistencyFlags(cmd, &f->consistency);
  cmd->footer(
      "An image file on XFS or btrfs is captured by an instant reflink copy (FICLONE) and "
      "exported\n"
      "from it; any other volume is read in place, and the snapshot is then only crash-consistent "
      "if\n"
      "the volume was being written. Unchanged chunks are never stored twice.\n\n"
      "Examples:\n"
      "  cloudkeep snapshot create /srv/vm/disk.img --tag app=web --description 'before upgrade'\n"
      "  cloudkeep snapshot create /dev/sdb\n"
      "  cloudkeep --store /backup/cloudkeep snapshot create --all-attached\n"
      "  cloudkeep --provider aws snapshot create --all-attached --exclude-boot --wait");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    if (f->volumes.empty() && !f->all_attached)
      return Status::Usage("name at least one VOLUME, or pass --all-attached");
    if (!f->volumes.empty() && f->all_attached)
      return Status::Usage("give VOLUME arguments or --all-attached, not both");
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    snapshot::CreateRequest req;
    req.all_attached = f->all_attached;
    req.exclude_boot = f->exclude_boot;
    req.wait = f->wait;
    CK_ASSIGN_OR_RETURN(req.metadata.tags, ParseTags(f->tags));
    req.metadata.description = f->description;
    if (f->all_attached) {
      CK_ASSIGN_OR_RETURN(auto all, provider->ListVolumes(false));
      for (auto& v : all)
        if (v.kind != "part") req.volumes.push_back(v);
      if (req.volumes.empty()) return Status::Failure("no attached volumes found");
    } else {
      for (const auto& spec : f->volumes) {
        CK_ASSIGN_OR_RETURN(auto v, provider->ResolveVolume(spec));
        req.volumes.push_back(std::move(v));
      }
    }
    CK_ASSIGN_OR_RETURN(Environment env, ReadEnvironment());
    f->consistency.test_pause_frozen = env.test_pause_frozen;
    snapshot::ConsistencySession session(f->consistency);
    CK_ASSIGN_OR_RETURN(auto outcome,
                        snapshot::CreateSnapshots(*provider, std::move(req), session));
    for (const auto& n : outcome.notes) log::Info("{}", n);
    // Printed first, then exit 1: the snapshots exist and are listed either way.
    auto hooks_failed = [&]() -> Status {
      if (outcome.post_hook_error.empty()) return Status::Ok();
      std::vector<std::string> ids;
      for (const auto& s : outcome.snapshots) ids.push_back(s.id);
      return Status::Failure(fmt::format("snapshot {} complete, but {}", fmt::join(ids, ", "),
                                         outcome.post_hook_error));
    };
    if (ctx.global.json) {
      Json doc = {{"snapshots", Json::array()}, {"notes", outcome.notes}};
      for (const auto& s : outcome.snapshots)
        doc["snapshots"].push_back(snapshot::SnapshotToJson(s));
      if (!outcome.post_hook_error.empty()) doc["post_hook_error"] = outcome.post_hook_error;
      PrintJson(doc);
      return hooks_failed();
    }
    Table t({"ID", "VOLUME", "SIZE", "NEW", "STATE", "CONSISTENCY"},
            {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight, Table::Align::kRight});
    for (const auto& s : outcome.snapshots)
      t.AddRow({s.id, s.volume_id, FormatBytes(s.size_bytes),
                s.new_bytes ? FormatBytes(*s.new_bytes) : "-", s.state,
                snapshot::ConsistencyName(s.consistency)});
    PrintText(t.Render());
    return hooks_failed();
  }));
}

void AddList(CLI::App* group, Context& ctx) {
  struct Flags {
    std::vector<std::string> volumes, tags;
    std::string older_than;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand("list", "List snapshots, oldest first");
  cmd->add_option("-v,--volume", f->volumes, "Only snapshots of this volume (repeatable)");
  cmd->add_option("--older-than", f->older_than,
                  "Only snapshots older than AGE (a bare number is days)");
  cmd->add_option("--tag", f->tags,
                  "Only snapshots with tag KEY=VALUE (repeatable: all must match)");
  cmd->footer(
      "Examples:\n"
      "  cloudkeep snapshot list\n"
      "  cloudkeep snapshot list -v /dev/sdb --older-than 7d\n"
      "  cloudkeep --json snapshot list --tag app=db");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    snapshot::SnapshotFilter filter;
    for (const auto& v : f->volumes) filter.volume_ids.push_back(provider->CanonicalVolumeId(v));
    CK_ASSIGN_OR_RETURN(filter.tags, ParseTags(f->tags));
    if (!f->older_than.empty()) {
      CK_ASSIGN_OR_RETURN(Micros age,
                          DurationFlag(f->older_than, BareNumber::kDays, "--older-than"));
      filter.created_before = SystemClock::Default().Now() - age;
    }
    CK_ASSIGN_OR_RETURN(auto snaps, provider->ListSnapshots(filter));
    if (ctx.global.json) {
      Json doc = {{"snapshots", Json::array()}};
      for (const auto& s : snaps) doc["snapshots"].push_back(snapshot::SnapshotToJson(s));
      PrintJson(doc);
    } else {
      PrintSnapshotTable(snaps);
    }
    return DamagedStatus(snaps);
  }));
}

void AddShow(CLI::App* group, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto* cmd = group->add_subcommand("show", "Show one snapshot in detail");
  cmd->add_option("SNAPSHOT", *id, "Snapshot id (snap-…)")->required();
  cmd->footer("Example:\n  cloudkeep snapshot show snap-0a1b2c3d4e5f67890");
  cmd->callback(Action(ctx, [&ctx, id]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    CK_ASSIGN_OR_RETURN(Snapshot s, provider->GetSnapshot(*id));
    if (!s.damaged.empty()) {
      if (ctx.global.json) PrintJson(snapshot::SnapshotToJson(s));
      return Status::Failure(
          fmt::format("snapshot {} has a damaged manifest: {}", s.id, s.damaged));
    }
    if (ctx.global.json) {
      PrintJson(snapshot::SnapshotToJson(s));
      return Status::Ok();
    }
    std::string out;
    auto line = [&](const std::string& k, const std::string& v) {
      out += fmt::format("{:<13} {}\n", k + ":", v);
    };
    line("id", s.id);
    line("volume", s.volume_id);
    if (!s.volume_device.empty() && s.volume_device != s.volume_id) line("device", s.volume_device);
    line("created", FormatRfc3339(s.created) + " (" + FormatLocal(s.created) + " local)");
    line("state", s.state + (s.progress.empty() ? "" : " " + s.progress));
    line("size", fmt::format("{} ({} bytes)", FormatBytes(s.size_bytes), s.size_bytes));
    if (s.stored_bytes)
      line("stored", FormatBytes(*s.stored_bytes) + " in the store, shared chunks included");
    if (s.new_bytes) line("new", FormatBytes(*s.new_bytes) + " added by this snapshot");
    if (s.chunks) line("chunks", std::to_string(*s.chunks));
    line("consistency", snapshot::ConsistencyName(s.consistency));
    if (s.freeze_us) line("frozen", FormatMicrosHuman(static_cast<double>(*s.freeze_us)));
    if (s.lock_us) line("locked", FormatMicrosHuman(static_cast<double>(*s.lock_us)));
    for (const auto& [k, v] : s.database) line("db " + k, v);
    line("tags", TagsText(s.tags));
    line("description", s.description.empty() ? "-" : s.description);
    PrintText(out);
    return Status::Ok();
  }));
}

void AddRestore(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string id, to;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("restore", "Write a snapshot's full image to a file or block device");
  cmd->add_option("SNAPSHOT", f->id, "Snapshot id (snap-…)")->required();
  cmd->add_option("--to", f->to, "Target image file or block device")->required();
  cmd->add_flag("--force", f->force, "Replace an existing image file");
  cmd->footer(
      "A file target is written beside the target and renamed into place when complete, sparse "
      "where\n"
      "the data is zero. A block device is refused while it is mounted or in use. Every chunk is "
      "checked\n"
      "against its SHA-256 as it is written.\n\n"
      "Examples:\n"
      "  cloudkeep snapshot restore snap-0a1b2c3d4e5f67890 --to /srv/restore/disk.img\n"
      "  cloudkeep snapshot restore snap-0a1b2c3d4e5f67890 --to /dev/sdc");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    snapshot::RestoreOptions opts;
    opts.force = f->force;
    CK_RETURN_IF_ERROR(provider->Restore(f->id, f->to, opts));
    if (ctx.global.json) {
      PrintJson({{"snapshot", f->id}, {"restored_to", f->to}});
    } else {
      PrintText(fmt::format("restored {} to {}\n", f->id, f->to));
    }
    return Status::Ok();
  }));
}

void AddVerify(CLI::App* group, Context& ctx) {
  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cmd = group->add_subcommand(
      "verify", "Re-read and re-hash every chunk of the store (or of SNAPSHOTs)");
  cmd->add_option("SNAPSHOT", *ids, "Only these snapshots");
  cmd->footer(
      "Exit 1 when anything is damaged, with each broken chunk, the snapshots it belongs to and "
      "the\n"
      "byte offsets in them.\n\nExamples:\n  cloudkeep snapshot verify\n  cloudkeep snapshot "
      "verify snap-0a1b2c3d4e5f67890");
  cmd->callback(Action(ctx, [&ctx, ids]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    CK_ASSIGN_OR_RETURN(auto report, provider->Verify(*ids));
    if (ctx.global.json) {
      Json doc = {{"ok", report.ok()},
                  {"snapshots_checked", report.snapshots_checked},
                  {"chunks_checked", report.chunks_checked},
                  {"bytes_checked", report.bytes_checked},
                  {"unreferenced_chunks", report.unreferenced_chunks},
                  {"problems", Json::array()}};
      for (const auto& p : report.problems)
        doc["problems"].push_back({{"chunk", p.chunk},
                                   {"problem", p.problem},
                                   {"snapshots", p.snapshots},
                                   {"offsets", p.offsets}});
      PrintJson(doc);
    } else {
      std::string out =
          fmt::format("checked {} snapshots, {} chunks, {}\n", report.snapshots_checked,
                      report.chunks_checked, FormatBytes(report.bytes_checked));
      if (report.unreferenced_chunks)
        out += fmt::format(
            "{} chunks are not referenced by any snapshot (collected by the next delete or "
            "prune)\n",
            report.unreferenced_chunks);
      for (const auto& p : report.problems) {
        std::string offs;
        for (auto o : p.offsets) offs += (offs.empty() ? "" : ", ") + std::to_string(o);
        std::string snaps;
        for (const auto& s : p.snapshots) snaps += (snaps.empty() ? "" : ", ") + s;
        out += fmt::format("DAMAGED {}: {}; breaks {}{}\n", p.chunk, p.problem, snaps,
                           offs.empty() ? "" : " at offsets " + offs);
      }
      out +=
          report.ok() ? "store OK\n" : fmt::format("{} problems found\n", report.problems.size());
      PrintText(out);
    }
    return report.ok()
               ? Status::Ok()
               : Status::Failure(fmt::format("verify found {} problems", report.problems.size()));
  }));
}

void AddDelete(CLI::App* group, Context& ctx) {
  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cmd =
      group->add_subcommand("delete", "Delete snapshots; frees only chunks no other snapshot uses");
  cmd->add_option("SNAPSHOT", *ids, "Snapshot ids")->required();
  cmd->footer(
      "Example:\n  cloudkeep snapshot delete snap-0a1b2c3d4e5f67890 snap-0b1c2d3e4f5a67890");
  cmd->callback(Action(ctx, [&ctx, ids]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    // Every id must be valid before anything is deleted.
    for (const auto& id : *ids) CK_RETURN_IF_ERROR(provider->GetSnapshot(id).status());
    CK_ASSIGN_OR_RETURN(auto outcomes, provider->DeleteSnapshots(*ids, {}));
    size_t failed = 0;
    Json doc = {{"snapshots", Json::array()}};
    Table t({"ID", "RESULT", "REASON"});
    for (const auto& o : outcomes) {
      failed += o.result == snapshot::DeleteResult::kFailed;
      doc["snapshots"].push_back({{"id", o.snapshot_id},
                                  {"result", snapshot::DeleteResultName(o.result)},
                                  {"reason", o.reason}});
      t.AddRow(
          {o.snapshot_id, snapshot::DeleteResultName(o.result), o.reason.empty() ? "-" : o.reason});
    }
    if (ctx.global.json)
      PrintJson(doc);
    else
      PrintText(t.Render());
    return failed ? Status::Failure(fmt::format("{} snapshots could not be deleted", failed))
                  : Status::Ok();
  }));
}

void AddPrune(CLI::App* group, Context& ctx) {
  struct Flags {
    std::vector<std::string> volumes;
    std::string older_than, keep_within;
    snapshot::PruneOptions opts;
    int max_count = -1;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("prune", "Delete old snapshots of volumes by a retention policy");
  cmd->add_option("-v,--volume", f->volumes, "Volume whose snapshots to prune (repeatable)")
      ->required();
  cmd->add_option("-o,--older-than", f->older_than,
                  "Remove snapshots older than AGE (a bare number is days, as in '-o 7')");
  auto& p = f->opts.policy;
  auto count = CLI::Range(-1, 1000000);
  cmd->add_option("--keep-last", p.keep_last, "Keep the N newest snapshots (-1: all)")
      ->check(count);
  cmd->add_option("--keep-hourly", p.keep_hourly,
                  "Keep the newest snapshot of each of the last N hours that have one")
      ->check(count);
  cmd->add_option("--keep-daily", p.keep_daily, "… of each of the last N days that have one")
      ->check(count);
  cmd->add_option("--keep-weekly", p.keep_weekly, "… of each of the last N ISO weeks that have one")
      ->check(count);
  cmd->add_option("--keep-monthly", p.keep_monthly, "… of each of the last N months that have one")
      ->check(count);
  cmd->add_option("--keep-yearly", p.keep_yearly, "… of each of the last N years that have one")
      ->check(count);
  cmd->add_option("--keep-within", f->keep_within,
                  "Keep everything taken within AGE of the newest snapshot");
  cmd->add_option("--max-count", f->max_count, "Never keep more than N snapshots per volume")
      ->check(CLI::Range(0, 100000000));
  cmd->add_flag("--dry-run", f->opts.dry_run, "Show what would be removed; change nothing");
  cmd->add_flag("--allow-empty", f->opts.allow_empty,
                "Allow removing a volume's newest snapshot, or all of its snapshots");
  cmd->add_option("--concurrency", f->opts.concurrency, "Deletions in flight at once (aws)")
      ->check(CLI::Range(1, 256));
  cmd->footer(
      "Rules follow restic's 'forget': each --keep-* rule keeps the newest snapshot of each of the "
      "last\n"
      "N periods that have a snapshot (days, ISO weeks, … in local time); rules add up; "
      "--keep-within\n"
      "counts back from the newest snapshot. -o AGE removes only snapshots older than AGE; alone "
      "it\n"
      "removes every one of them, as the original cron tool did. Every snapshot is listed as kept "
      "(with\n"
      "the rule that kept it) or removed.\n\n"
      "Examples:\n"
      "  cloudkeep snapshot prune -v /dev/sdb -v /dev/sdc -o 7\n"
      "  cloudkeep snapshot prune -v /srv/disk.img --keep-daily 7 --keep-weekly 4 --keep-monthly "
      "12 --dry-run\n"
      "  cloudkeep --provider aws snapshot prune -v vol-0abc1234 --keep-within 14d --max-count 30");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    auto& policy = f->opts.policy;
    if (!f->older_than.empty()) {
      CK_ASSIGN_OR_RETURN(Micros age,
                          DurationFlag(f->older_than, BareNumber::kDays, "--older-than"));
      policy.older_than = age;
    }
    if (!f->keep_within.empty()) {
      CK_ASSIGN_OR_RETURN(Micros age,
                          DurationFlag(f->keep_within, BareNumber::kDays, "--keep-within"));
      policy.keep_within = age;
    }
    if (f->max_count >= 0) policy.max_count = f->max_count;
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    log::Info("policy: {}{}", policy.Describe(),
              f->opts.dry_run ? " (dry run: nothing is deleted)" : "");
    CK_ASSIGN_OR_RETURN(auto report, snapshot::PruneVolumes(*provider, f->volumes, f->opts,
                                                            SystemClock::Default()));
    Json doc = {
        {"dry_run", f->opts.dry_run}, {"policy", policy.Describe()}, {"volumes", Json::array()}};
    std::string text;
    for (const auto& vr : report.volumes) {
      Json jv = {{"volume_id", vr.volume_id}, {"snapshots", Json::array()}};
      Table t({"SNAPSHOT", "CREATED", "ACTION", "RESULT", "REASON"});
      for (const auto& e : vr.entries) {
        const auto& d = e.decision;
        std::string reasons;
        for (const auto& r : d.reasons) reasons += (reasons.empty() ? "" : ", ") + r;
        std::string result = e.outcome ? snapshot::DeleteResultName(e.outcome->result) : "-";
        if (e.outcome && !e.outcome->reason.empty()) reasons += " (" + e.outcome->reason + ")";
        t.AddRow({d.snapshot.id, FormatLocal(d.snapshot.created), d.keep ? "keep" : "remove",
                  result, reasons});
        Json js = {{"id", d.snapshot.id},
                   {"created", FormatRfc3339(d.snapshot.created, true)},
                   {"action", d.keep ? "keep" : "remove"},
                   {"reasons", d.reasons}};
        if (e.outcome) {
          js["result"] = snapshot::DeleteResultName(e.outcome->result);
          if (!e.outcome->reason.empty()) js["result_reason"] = e.outcome->reason;
        }
        jv["snapshots"].push_back(js);
      }
      doc["volumes"].push_back(jv);
      text += fmt::format("volume {}: {} snapshots\n", vr.volume_id, vr.entries.size());
      if (!vr.entries.empty()) text += t.Render();
      text += "\n";
    }
    doc["kept"] = report.kept;
    doc["removed"] = report.removed;
    doc["skipped"] = report.skipped;
    doc["failed"] = report.failed;
    doc["damaged"] = report.damaged;
    for (const auto& id : report.damaged)
      log::Warn(
          "snapshot {} has a damaged manifest: no policy can weigh it and prune leaves it; "
          "'cloudkeep snapshot show {}' says why, 'cloudkeep snapshot delete {}' removes it",
          id, id, id);
    text += fmt::format("{} kept, {} {}, {} skipped, {} failed\n", report.kept, report.removed,
                        f->opts.dry_run ? "would be removed" : "removed", report.skipped,
                        report.failed);
    if (ctx.global.json)
      PrintJson(doc);
    else
      PrintText(text);
    return report.failed
               ? Status::Failure(fmt::format("{} snapshots could not be deleted", report.failed))
               : Status::Ok();
  }));
}

}  // namespace

void AddSnapshotCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "snapshot", "Create, list, show, restore, verify, delete, prune, serve and mount snapshots");
  group->require_subcommand(0, 1);
  group->fallthrough();
  group->footer(
      "Commands: create, list, show, restore, verify, delete, prune; serve, mount, umount (use a "
      "snapshot\n"
      "without restoring it). 'cloudkeep snapshot COMMAND --help' explains each with examples.\n\n"
      "Examples:\n"
      "  cloudkeep --store /backup/ck snapshot create /srv/disk.img --tag env=prod\n"
      "  cloudkeep snapshot list -v /srv/disk.img\n"
      "  cloudkeep snapshot prune -v /srv/disk.img -o 7");
  AddCreate(group, ctx);
  AddList(group, ctx);
  AddShow(group, ctx);
  AddRestore(group, ctx);
  AddVerify(group, ctx);
  AddDelete(group, ctx);
  AddPrune(group, ctx);
  AddSnapshotServeCommands(group, ctx);
  for (auto* sub : group->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
