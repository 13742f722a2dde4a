// `cloudkeep volumes`: what can be snapshotted on this machine.
#include <algorithm>

#include "cli/app.h"

namespace cloudkeep::cli {

void AddVolumesCommand(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("volumes", "List the volumes attached to this machine");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("--all", *all, "Also list loop and ram devices");
  cmd->footer(
      "Shows each block device and partition with a stable id (from /dev/disk/by-id where one "
      "exists),\n"
      "its size, where it is mounted and its filesystem. With --provider aws: the EBS volumes "
      "attached\n"
      "to this instance and the local device each one is.\n\n"
      "Examples:\n"
      "  cloudkeep volumes\n"
      "  cloudkeep volumes --all --json");
  cmd->callback(Action(ctx, [&ctx, all]() -> Status {
    CK_ASSIGN_OR_RETURN(auto provider, MakeProvider(ctx));
    CK_ASSIGN_OR_RETURN(auto volumes, provider->ListVolumes(*all));
    if (ctx.global.json) {
      Json doc = {{"volumes", Json::array()}};
      for (const auto& v : volumes) doc["volumes"].push_back(snapshot::VolumeToJson(v));
      PrintJson(doc);
      return Status::Ok();
    }
    // On AWS the name the volume was attached as (/dev/sdf) differs from the
    // device the instance sees (/dev/nvme1n1); both are shown.
    bool aws = std::any_of(volumes.begin(), volumes.end(), [](const snapshot::Volume& v) {
      return v.attributes.count("aws_device") > 0;
    });
    std::vector<std::string> head = {"ID", "DEVICE", "KIND", "SIZE", "MOUNTPOINT", "FS"};
    if (aws) head.insert(head.begin() + 2, "ATTACHED AS");
    std::vector<Table::Align> align = {Table::Align::kLeft, Table::Align::kLeft,
                                       Table::Align::kLeft, Table::Align::kRight};
    if (aws) align.insert(align.begin() + 2, Table::Align::kLeft);
    Table t(head, align);
    for (const auto& v : volumes) {
      std::string mp = v.mountpoint;
      if (v.mountpoints.size() > 1) mp += fmt::format(" (+{})", v.mountpoints.size() - 1);
      std::vector<std::string> row = {v.id,
                                      v.device.empty() ? "-" : v.device,
                                      v.kind,
                                      FormatBytes(v.size_bytes),
                                      mp.empty() ? "-" : mp,
                                      v.filesystem.empty() ? "-" : v.filesystem};
      if (aws) {
        auto it = v.attributes.find("aws_device");
        row.insert(row.begin() + 2, it == v.attributes.end() ? "-" : it->second);
      }
      t.AddRow(row);
    }
    PrintText(t.Render());
    return Status::Ok();
  }));
}

}  // namespace cloudkeep::cli
