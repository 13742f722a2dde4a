// `cloudkeep mirror …`: init, run, status, promote, demote, verify, resolve.
// Flags in, module calls, output out; the logic lives in src/mirror.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <thread>

#include "cli/app.h"
#include "core/log.h"
#include "mirror/config.h"
#include "mirror/metadata.h"
#include "mirror/node.h"
#include "providers/aws/aws_provider.h"
#include "providers/aws/ec2_client.h"

namespace cloudkeep::cli {

namespace {

using namespace cloudkeep::mirror;

struct Common {
  std::string resource;
  std::string node;
  std::string run_dir;
};

std::string DefaultRunDir() {
  if (geteuid() == 0) return "/run/cloudkeep/mirror";
  const char* x = getenv("XDG_RUNTIME_DIR");
  return std::string(x && *x ? x : "/tmp") + "/cloudkeep/mirror";
}

void AddCommon(CLI::App* cmd, Common* c, bool node_required) {
  cmd->add_option("RESOURCE", c->resource, "Resource name ([resource.NAME] in the --config file)")
      ->required();
  auto* n = cmd->add_option("--node", c->node, "This node's name in the resource");
  if (node_required) n->required();
  cmd->add_option("--run-dir", c->run_dir,
                  "Directory of the daemons' control sockets (default " + DefaultRunDir() + ")");
}

Result<ResourceConfig> LoadConfig(CLI::App* root, const Common& c) {
  std::string path = "/etc/cloudkeep/cloudkeep.toml";
  if (auto* opt = root->get_config_ptr(); opt && opt->count() > 0) path = opt->as<std::string>();
  return LoadResourceConfig(path, c.resource);
}

std::string RunDir(const Common& c) {
  return c.run_dir.empty() ? DefaultRunDir() : c.run_dir;
}

Result<Json> Call(const ResourceConfig& cfg, const Common& c, const std::string& node,
                  const Json& req, Micros timeout = Micros(30'000'000)) {
  if (!cfg.FindNode(node))
    return Status::Usage("unknown node '" + node + "' in resource " + cfg.name);
  return ControlCall(ControlSocketPath(RunDir(c), cfg.name, node), req, timeout);
}

std::string Get(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "-";
}

// One row per node: from its daemon, else from its metadata file when it is on this machine.
Json OfflineStatus(const ResourceConfig& cfg, const std::string& node) {
  const NodeConfig* n = cfg.FindNode(node);
  Json j{{"resource", cfg.name}, {"node", node}, {"role", "Stopped"}, {"connection", "StandAlone"}};
  auto sb = Metadata::Peek(n->meta);
  if (!sb.ok()) {
    j["disk_state"] = "DUnknown";
    j["last_event"] = sb.status().message();
    return j;
  }
  bool incons = sb->gen.current == 0 || (sb->flags & kFlagInconsistent);
  j["disk_state"] = incons ? "Inconsistent" : (sb->flags & kFlagOutdated) ? "Outdated" : "UpToDate";
  auto m = Metadata::Open(n->meta);
  j["out_of_sync_bytes"] = m.ok() ? (*m)->DirtyBytes() : 0;
  j["generation"] = {{"current", FormatGeneration(sb->gen.current)},
                     {"bitmap", FormatGeneration(sb->gen.bitmap)}};
  return j;
}

void PrintStatus(const Json& nodes) {
  Table t({"NODE", "ROLE", "CONNECTION", "DISK", "PEER", "PEER DISK", "OUT OF SYNC", "RESYNC",
           "WRITE P50", "WRITE P99", "GENERATION"},
          {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft,
           Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight, Table::Align::kRight,
           Table::Align::kRight, Table::Align::kRight, Table::Align::kLeft});
  std::string notes;
  for (const auto& j : nodes) {
    std::string resync = "-";
    if (j.contains("resync")) {
      const auto& r = j["resync"];
      double eta = r.value("eta_seconds", -1.0);
      resync = fmt::format(
          "{:.0f}% {}/s ETA {}", r.value("percent", 0.0),
          FormatBytes(r.value("rate_bytes_per_second", uint64_t{0})),
          eta < 0 ? std::string("?") : FormatDuration(Micros(static_cast<int64_t>(eta * 1e6))));
    }
    std::string p50 = "-", p99 = "-";
    if (j.contains("write_latency") && j["write_latency"].value("writes", 0) > 0) {
      p50 = FormatMicrosHuman(j["write_latency"].value("p50_us", 0.0));
      p99 = FormatMicrosHuman(j["write_latency"].value("p99_us", 0.0));
    }
    std::string peer =
        j.contains("peer") ? j["peer"].value("node", "-") + " " + j["peer"].value("role", "") : "-";
    t.AddRow({Get(j, "node"), Get(j, "role"), Get(j, "connection"), Get(j, "disk_state"), peer,
              j.contains("peer") ? j["peer"].value("disk_state", "-") : "-",
              FormatBytes(j.value("out_of_sync_bytes", uint64_t{0})), resync, p50, p99,
              j.contains("generation") ? j["generation"].value("current", "-") : "-"});
    if (j.contains("split_brain"))
      notes += fmt::format(
          "{}: SPLIT BRAIN: {} ({} diverged: {} here, {} on the peer); nodes stay disconnected "
          "until "
          "'cloudkeep mirror resolve {} --discard NODE'\n",
          Get(j, "node"), j["split_brain"].value("reason", ""),
          FormatBytes(j["split_brain"].value("divergence_bytes", uint64_t{0})),
          FormatBytes(j["split_brain"].value("local_out_of_sync_bytes", uint64_t{0})),
          FormatBytes(j["split_brain"].value("peer_out_of_sync_bytes", uint64_t{0})),
          Get(j, "resource"));
    if (j.contains("async"))
      notes += fmt::format("{}: protocol A: {} acknowledged but not yet on the peer (at most {})\n",
                           Get(j, "node"),
                           FormatBytes(j["async"].value("unacknowledged_bytes", uint64_t{0})),
                           FormatBytes(j["async"].value("max_loss_bytes", uint64_t{0})));
    if (j.contains("fencing") && j["fencing"].value("mode", "") == "etcd") {
      const auto& f = j["fencing"];
      std::string leader = f.contains("leader") && f["leader"].is_string()
                               ? f["leader"].get<std::string>()
                               : std::string("nobody");
      notes += fmt::format(
          "{}: fencing etcd: leader {} (token {}); lease {} ms left, {}; etcd {}{}\n",
          Get(j, "node"), leader, f.value("token", int64_t{0}),
          f.value("lease_remaining_ms", int64_t{0}),
          f.value("lease_certainly_valid", false) ? "certainly valid" : "not certainly valid",
          f.value("etcd_reachable", false) ? "reachable" : "UNREACHABLE",
          f.contains("record") ? ", record " + f.value("record", "") : "");
      if (f.value("suspended", false))
        notes +=
            fmt::format("{}: I/O SUSPENDED: {}\n", Get(j, "node"), f.value("suspended_reason", ""));
      if (f.contains("not_campaigning"))
        notes += fmt::format("{}: not campaigning: {}\n", Get(j, "node"),
                             f.value("not_campaigning", ""));
    }
    if (j.contains("last_event") && Get(j, "connection") != "Connected")
      notes += fmt::format("{}: {}\n", Get(j, "node"), Get(j, "last_event"));
  }
  PrintText(t.Render() + notes);
}

// --- init ------------------------------------------------------------------

void AddInit(CLI::App* group, CLI::App* root, Context& ctx) {
  struct Flags {
    Common c;
    bool force = false, uptodate = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "init", "Write fresh metadata (generation ids, empty bitmap) for one node");
  AddCommon(cmd, &f->c, true);
  cmd->add_flag("--force", f->force, "Overwrite existing metadata of this resource and node");
  cmd->add_flag("--uptodate", f->uptodate,
                "This node's current data is the good copy (the peer gets a full sync from it); "
                "without it the node starts Inconsistent and receives a full sync");
  cmd->footer(
      "Examples:\n"
      "  cloudkeep mirror init web --config mirror.toml --node a --uptodate\n"
      "  cloudkeep mirror init web --config mirror.toml --node b");
  cmd->callback(Action(ctx, [&ctx, root, f]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, f->c));
    CK_ASSIGN_OR_RETURN(uint64_t size, ValidateLocal(cfg, f->c.node));
    const NodeConfig* n = cfg.FindNode(f->c.node);
    if (access(n->meta.c_str(), F_OK) == 0) {
      auto old = Metadata::Peek(n->meta);
      if (old.ok() && (old->resource != cfg.name || old->node != n->name))
        return Status::Usage("metadata " + n->meta + " belongs to resource " + old->resource +
                             " node " + old->node + ", not " + cfg.name + "/" + n->name +
                             " (remove it by hand to reuse the path)");
      if (!f->force)
        return Status::Usage("metadata " + n->meta + " exists (--force to overwrite it)");
    }
    // A running daemon holds the device: never rewrite metadata under it.
    CK_ASSIGN_OR_RETURN(UniqueFd lock, LockDevice(n->device));
    std::string dir = DirName(n->meta);
    if (!dir.empty() && access(dir.c_str(), F_OK) != 0)
      return Status::Usage("metadata directory " + dir + " does not exist");
    Superblock sb;
    sb.resource = cfg.name;
    sb.node = n->name;
    sb.peer = cfg.PeerOf(n->name)->name;
    sb.device_size = size;
    sb.granularity = cfg.bitmap_granularity;
    sb.al_extent_size = cfg.al_extent_size;
    sb.al_slots = cfg.al_extents;
    sb.created_unix = static_cast<uint64_t>(time(nullptr));
    sb.gen.current = f->uptodate ? NewGenerationId() : 0;
    CK_ASSIGN_OR_RETURN(auto meta, Metadata::Create(n->meta, sb));
    std::string disk = f->uptodate ? "UpToDate" : "Inconsistent";
    Json j{{"resource", cfg.name}, {"node", n->name},
           {"meta", n->meta},      {"device", n->device},
           {"size_bytes", size},   {"bitmap_granularity_bytes", cfg.bitmap_granularity},
           {"disk_state", disk},   {"generation", FormatGeneration(sb.gen.current)}};
    if (ctx.global.json) {
      PrintJson(j);
    } else {
      Table t({"RESOURCE", "NODE", "DEVICE", "SIZE", "DISK", "GENERATION", "META"});
      t.AddRow({cfg.name, n->name, n->device, FormatBytes(size), disk,
                FormatGeneration(sb.gen.current), n->meta});
      PrintText(t.Render());
    }
    return Status::Ok();
  }));
}

// service_address_cloud = "aws": the function that moves the service
// address to this node's network interface in EC2 (AssignPrivateIpAddresses
// with AllowReassignment, which takes it from the old primary's interface
// even when that instance is dead), and the Elastic IP along with it. The
// interface is checked once at start: a wrong eni is an operator's typo
// (exit 2); EC2 unreachable at start is not, as the node must still run as
// a standby.
Result<std::function<Status()>> AwsAddressTaker(const ResourceConfig& cfg, const std::string& node,
                                                const Context& ctx) {
  aws::AwsProviderOptions po;
  po.region = cfg.aws_region.empty() ? ctx.global.region : cfg.aws_region;
  po.endpoint_url = cfg.aws_endpoint_url.empty() ? ctx.global.endpoint_url : cfg.aws_endpoint_url;
  po.profile = ctx.global.profile;
  auto provider = std::make_shared<aws::AwsProvider>(po);
  const std::string eni = cfg.FindNode(node)->aws_network_interface;
  const std::string ip = cfg.service_address.substr(0, cfg.service_address.find('/'));
  const std::string eip = cfg.aws_elastic_ip;
  CK_ASSIGN_OR_RETURN(aws::Ec2Client * ec2, provider->Client());
  aws::Ec2Error err;
  aws::NetworkInterfaceQuery q;
  q.ids = {eni};
  auto found = ec2->DescribeNetworkInterfaces(q, &err);
  if (!found.ok() && err.code == "InvalidNetworkInterfaceID.NotFound")
    return Status::Usage(fmt::format(
        "node {}: aws_network_interface '{}' does not exist in EC2 ({})", node, eni, err.message));
  if (!found.ok())
    log::Warn("mirror {}/{}: cannot check aws_network_interface {} now: {}", cfg.name, node, eni,
              found.status().message());
  return std::function<Status()>([provider, eni, ip, eip]() -> Status {
    CK_ASSIGN_OR_RETURN(aws::Ec2Client * c, provider->Client());
    CK_RETURN_IF_ERROR(c->AssignPrivateIpAddresses(eni, {ip}, /*allow_reassignment=*/true)
                           .status()
                           .Annotate("AssignPrivateIpAddresses " + ip + " to " + eni));
    if (!eip.empty()) {
      aws::AssociateAddressRequest r;
      r.allocation_id = eip;
      r.network_interface_id = eni;
      r.private_ip = ip;
      r.allow_reassociation = true;
      CK_RETURN_IF_ERROR(
          c->AssociateAddress(r).status().Annotate("AssociateAddress " + eip + " to " + ip));
    }
    return Status::Ok();
  });
}

// --- run -------------------------------------------------------------------

void AddRun(CLI::App* group, CLI::App* root, Context& ctx) {
  struct Flags {
    Common c;
    std::vector<std::string> export_listen;
    std::string export_socket;
    bool primary = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "run", "The per-node daemon: connect, resync, replicate, serve the export when primary");
  AddCommon(cmd, &f->c, true);
  cmd->add_option("--export-listen", f->export_listen,
                  "ADDR:PORT where the primary serves the device over NBD (repeatable)");
  cmd->add_option("--export-socket", f->export_socket,
                  "Unix socket where the primary serves the device over NBD");
  cmd->add_flag("--primary", f->primary,
                "Promote at start, as 'mirror promote' would (refused unless UpToDate)");
  cmd->footer(
      "Runs until SIGINT or SIGTERM; logs one line per state change on stderr.\n\n"
      "Examples:\n"
      "  cloudkeep mirror run web --config mirror.toml --node a --export-listen 127.0.0.1:10809\n"
      "  cloudkeep mirror run web --config mirror.toml --node b --run-dir /run/ck");
  cmd->callback(Action(ctx, [root, f, &ctx]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, f->c));
    NodeOptions o;
    o.cfg = cfg;
    o.node = f->c.node;
    o.run_dir = RunDir(f->c);
    o.export_listen = f->export_listen;
    o.export_socket = f->export_socket;
    o.start_primary = f->primary;
    if (cfg.service_address_cloud == "aws") {
      CK_ASSIGN_OR_RETURN(o.cloud_address_take, AwsAddressTaker(cfg, f->c.node, ctx));
      o.cloud_address_name = "AWS " + cfg.FindNode(f->c.node)->aws_network_interface;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    CK_ASSIGN_OR_RETURN(auto node, Node::Start(o));
    int sig = 0;
    sigwait(&set, &sig);
    log::Info("mirror {}/{}: signal {}: stopping", cfg.name, f->c.node, sig);
    node->Stop();
    node->Wait();
    return Status::Ok();
  }));
}

// --- status ------------------------------------------------------------------

void AddStatus(CLI::App* group, CLI::App* root, Context& ctx) {
  auto f = std::make_shared<Common>();
  auto* cmd = group->add_subcommand(
      "status", "Role, connection, disk state, out-of-sync bytes, resync, latency per node");
  AddCommon(cmd, f.get(), false);
  cmd->footer(
      "Without --node every node of the resource whose daemon (or metadata) is on this machine.\n\n"
      "Examples:\n"
      "  cloudkeep mirror status web --config mirror.toml\n"
      "  cloudkeep --json mirror status web --config mirror.toml --node b");
  cmd->callback(Action(ctx, [&ctx, root, f]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, *f));
    std::vector<std::string> nodes;
    if (!f->node.empty()) {
      if (!cfg.FindNode(f->node))
        return Status::Usage("unknown node '" + f->node + "' in resource " + cfg.name);
      nodes.push_back(f->node);
    } else {
      for (auto& n : cfg.nodes) nodes.push_back(n.name);
    }
    Json all = Json::array();
    for (auto& name : nodes) {
      auto r = Call(cfg, *f, name, Json{{"cmd", "status"}}, Micros(5'000'000));
      if (r.ok()) {
        all.push_back(*r);
      } else {
        const NodeConfig* n = cfg.FindNode(name);
        if (!f->node.empty() || access(n->meta.c_str(), F_OK) == 0)
          all.push_back(OfflineStatus(cfg, name));
      }
    }
    if (all.empty())
      return Status::Failure("no node of " + cfg.name + " runs or has metadata on this machine");
    if (ctx.global.json) {
      if (!f->node.empty())
        PrintJson(all[0]);
      else
        PrintJson(Json{{"resource", cfg.name}, {"nodes", all}});
    } else {
      PrintStatus(all);
    }
    return Status::Ok();
  }));
}

// --- promote / demote / resolve ---------------------------------------------

void AddRoleCommands(CLI::App* group, CLI::App* root, Context& ctx) {
  struct Flags {
    Common c;
    bool force = false;
    std::string discard;
  };
  auto pf = std::make_shared<Flags>();
  auto* promote = group->add_subcommand("promote", "Make this node primary and serve the export");
  AddCommon(promote, &pf->c, true);
  promote->add_flag("--force", pf->force,
                    "Promote even though the data is not UpToDate (says what would be lost); with "
                    "fencing = \"etcd\": campaign for the leader key despite etcd's records");
  promote->footer(
      "With fencing = \"etcd\" the daemons elect the primary themselves; a manual promote is\n"
      "refused unless the node holds the leader key, or --force.\n\n"
      "Example:\n  cloudkeep mirror promote web --config mirror.toml --node a");
  promote->callback(Action(ctx, [&ctx, root, pf]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, pf->c));
    CK_ASSIGN_OR_RETURN(
        Json r, Call(cfg, pf->c, pf->c.node, Json{{"cmd", "promote"}, {"force", pf->force}}));
    for (auto& note : r["notes"]) log::Warn("{}", note.get<std::string>());
    if (ctx.global.json)
      PrintJson(r["status"]);
    else
      PrintStatus(Json::array({r["status"]}));
    return Status::Ok();
  }));

  auto df = std::make_shared<Flags>();
  auto* demote = group->add_subcommand(
      "demote",
      "Stop serving the export and become secondary (fencing = \"etcd\": give the leader key "
      "up and do not campaign until the next promote)");
  AddCommon(demote, &df->c, true);
  demote->footer("Example:\n  cloudkeep mirror demote web --config mirror.toml --node a");
  demote->callback(Action(ctx, [&ctx, root, df]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, df->c));
    CK_ASSIGN_OR_RETURN(Json r, Call(cfg, df->c, df->c.node, Json{{"cmd", "demote"}}));
    if (ctx.global.json)
      PrintJson(r["status"]);
    else
      PrintStatus(Json::array({r["status"]}));
    return Status::Ok();
  }));

  auto rf = std::make_shared<Flags>();
  auto* resolve = group->add_subcommand(
      "resolve", "End a split brain: the changes of --discard NODE are thrown away");
  AddCommon(resolve, &rf->c, true);
  resolve
      ->add_option("--discard", rf->discard, "The node whose changes since the split are discarded")
      ->required();
  resolve->footer(
      "The discarded node becomes the resync target at the next connect and receives every region\n"
      "either node changed since the split. Run it on either node's daemon.\n\n"
      "Example:\n  cloudkeep mirror resolve web --config mirror.toml --node b --discard b");
  resolve->callback(Action(ctx, [&ctx, root, rf]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, rf->c));
    if (!cfg.FindNode(rf->discard))
      return Status::Usage("--discard names node '" + rf->discard + "', which is not a node of " +
                           cfg.name);
    CK_ASSIGN_OR_RETURN(
        Json r, Call(cfg, rf->c, rf->c.node, Json{{"cmd", "resolve"}, {"discard", rf->discard}}));
    if (ctx.global.json)
      PrintJson(Json{{"resource", cfg.name}, {"discard", rf->discard}, {"pending", true}});
    else
      PrintText("the changes of " + rf->discard +
                " will be discarded when the nodes connect next\n");
    return Status::Ok();
  }));
}

// --- verify -------------------------------------------------------------------

void AddVerify(CLI::App* group, CLI::App* root, Context& ctx) {
  struct Flags {
    Common c;
    bool resync = false;
    uint64_t block = 0;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "verify", "Online verify: compare checksums region by region with the peer");
  AddCommon(cmd, &f->c, true);
  cmd->add_flag("--resync", f->resync,
                "Send the regions that differ from this node to the peer now");
  cmd->add_option("--block", f->block,
                  "Bytes per compared region (default: the bitmap granularity)");
  cmd->footer(
      "Runs on the primary while the device is in use; mismatches are listed with their offsets "
      "and\n"
      "marked out of sync. Exit 1 when regions differ and were not resynced.\n\n"
      "Example:\n  cloudkeep mirror verify web --config mirror.toml --node a --resync");
  cmd->callback(Action(ctx, [&ctx, root, f]() -> Status {
    CK_ASSIGN_OR_RETURN(ResourceConfig cfg, LoadConfig(root, f->c));
    CK_ASSIGN_OR_RETURN(
        Json r, Call(cfg, f->c, f->c.node,
                     Json{{"cmd", "verify"}, {"resync", f->resync}, {"block_bytes", f->block}},
                     Micros(3600'000'000)));
    if (ctx.global.json) {
      PrintJson(r);
    } else {
      Table t({"OFFSET", "LENGTH"}, {Table::Align::kRight, Table::Align::kRight});
      for (auto& m : r["mismatches"])
        t.AddRow({std::to_string(m.value("offset", uint64_t{0})),
                  std::to_string(m.value("length", uint64_t{0}))});
      std::string text =
          fmt::format("verified {} against {} in {:.1f}s: {} regions differ ({})\n",
                      FormatBytes(r.value("verified_bytes", uint64_t{0})), r.value("peer", ""),
                      r.value("seconds", 0.0), r["mismatches"].size(),
                      FormatBytes(r.value("mismatch_bytes", uint64_t{0})));
      if (!t.empty()) text += t.Render();
      if (r.value("resynced", false)) text += "resynced from " + r.value("node", "") + "\n";
      PrintText(text);
    }
    if (r.value("mismatch_bytes", uint64_t{0}) > 0 && !r.value("resynced", false))
      return Status::Failure(fmt::format("{} regions differ between {} and {}",
                                         r["mismatches"].size(), r.value("node", ""),
                                         r.value("peer", "")));
    return Status::Ok();
  }));
}

}  // namespace

void AddMirrorCommands(CLI::App& app, Context& ctx) {
  auto* group =
      app.add_subcommand("mirror", "A block device mirrored to a standby host, served over NBD");
  group->require_subcommand(1);
  group->footer(
      "The resource is described in TOML (--config FILE; see docs/mirror.md).\n\n"
      "Examples:\n"
      "  cloudkeep mirror init    web --config mirror.toml --node a --uptodate\n"
      "  cloudkeep mirror run     web --config mirror.toml --node a --export-listen "
      "127.0.0.1:10809\n"
      "  cloudkeep mirror promote web --config mirror.toml --node a\n"
      "  cloudkeep --json mirror status web --config mirror.toml --node b");
  AddInit(group, &app, ctx);
  AddRun(group, &app, ctx);
  AddStatus(group, &app, ctx);
  AddRoleCommands(group, &app, ctx);
  AddVerify(group, &app, ctx);
}

}  // namespace cloudkeep::cli
