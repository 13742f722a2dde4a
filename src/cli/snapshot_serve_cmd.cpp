// `cloudkeep snapshot serve|mount|umount`: a snapshot as an NBD export or a
// mounted file system, without restoring it. Flags in, module calls, output out:
// the backends are in src/providers/local (SnapshotBackend) and src/nbd
// (overlay, hydrate, server, FUSE and loop mounts).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "aws/s3.h"
#include "cli/app.h"
#include "core/log.h"
#include "core/net.h"
#include "core/size.h"
#include "nbd/block_mount.h"
#include "nbd/hydrate_backend.h"
#include "nbd/overlay_backend.h"
#include "nbd/server.h"
#include "providers/local/snapshot_backend.h"

namespace cloudkeep::cli {

namespace {

Result<std::string> StoreRoot(const Context& ctx, const std::string& command) {
  if (ctx.global.provider != "local")
    return Status::Usage(fmt::format(
        "snapshot {} serves snapshots of the embedded store (--provider local), not '{}'", command,
        ctx.global.provider));
  std::string root = ctx.global.store.empty() ? local::LocalStore::DefaultRoot() : ctx.global.store;
  if (aws::IsS3Url(root))
    return Status::Usage(fmt::format(
        "store '{}' is in S3: snapshot {} needs a directory store (restore the snapshot first)",
        root, command));
  // Absolute: the mount daemon runs in "/".
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(root, ec);
  return ec ? root : abs.lexically_normal().string();
}

Result<uint64_t> CacheSize(const std::string& text) {
  CK_ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize(text, "--cache-size"));
  if (bytes < local::kMinSnapshotCacheBytes)
    return Status::Usage(fmt::format("invalid --cache-size '{}': at least {}", text,
                                     FormatBytes(local::kMinSnapshotCacheBytes)));
  return bytes;
}

Result<std::shared_ptr<local::SnapshotBackend>> OpenSnapshot(const Context& ctx,
                                                             const std::string& command,
                                                             const std::string& id,
                                                             const std::string& cache_size) {
  CK_ASSIGN_OR_RETURN(std::string root, StoreRoot(ctx, command));
  local::SnapshotBackendOptions o;
  CK_ASSIGN_OR_RETURN(o.cache_bytes, CacheSize(cache_size));
  CK_ASSIGN_OR_RETURN(auto b, local::SnapshotBackend::Open(root, id, o));
  return std::shared_ptr<local::SnapshotBackend>(std::move(b));
}

// "nbd://127.0.0.1:10809/snap-…", "nbd+unix:///snap-…?socket=/run/x.sock"
std::string NbdUri(const std::string& address, const std::string& export_name) {
  if (address.rfind("unix:", 0) == 0)
    return fmt::format("nbd+unix:///{}?socket={}", export_name, address.substr(5));
  return fmt::format("nbd://{}/{}", address, export_name);
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string Rate(double bytes_per_second) {
  return FormatBytes(static_cast<uint64_t>(bytes_per_second)) + "/s";
}

Json HydrateJson(const nbd::HydrateBackend& h, const std::string& path) {
  nbd::HydrateProgress p = h.Progress();
  Json j = {{"path", path},
            {"map", h.map_path()},
            {"resumed", p.resumed_from_bytes > 0},
            {"resumed_from_bytes", p.resumed_from_bytes},
            {"done_bytes", p.done_bytes},
            {"total_bytes", p.total_bytes},
            {"complete", p.complete}};
  return j;
}

void LogHydrate(const nbd::HydrateBackend& h) {
  nbd::HydrateProgress p = h.Progress();
  double pct = p.total_bytes
                   ? 100.0 * static_cast<double>(p.done_bytes) / static_cast<double>(p.total_bytes)
                   : 100.0;
  log::Info("hydrate: {} of {} ({:.1f}%), copying at {}", FormatBytes(p.done_bytes),
            FormatBytes(p.total_bytes), pct, Rate(p.bytes_per_second));
}

struct ServeFlags {
  std::string id;
  std::vector<std::string> listen;
  std::string socket;
  bool writable = false;
  std::string overlay;
  std::string cache_size = "256M";
  std::string hydrate_to, hydrate_map;
  std::string progress_interval = "10s";
};

Status Serve(const Context& ctx, const ServeFlags& f) {
  // Everything the flags say is checked before the store is touched.
  if (!f.overlay.empty() && !f.writable)
    return Status::Usage(fmt::format("--overlay '{}' needs --writable", f.overlay));
  if (!f.hydrate_to.empty() && !f.overlay.empty())
    return Status::Usage(fmt::format(
        "--hydrate-to '{}' and --overlay '{}': writes go to the hydrate target, not an overlay",
        f.hydrate_to, f.overlay));
  if (!f.hydrate_map.empty() && f.hydrate_to.empty())
    return Status::Usage(fmt::format("--hydrate-map '{}' needs --hydrate-to", f.hydrate_map));
  CK_ASSIGN_OR_RETURN(Micros interval, DurationFlag(f.progress_interval, BareNumber::kSeconds,
                                                    "--progress-interval"));
  nbd::ServerOptions so;
  for (const auto& l : f.listen) {
    CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(l, "--listen", nbd::kDefaultPort, true));
    if (!IsLoopback(hp.host))
      log::Warn(
          "--listen {}: NBD has no authentication or encryption here; anyone who can reach "
          "it can read{} the snapshot",
          l, f.writable || !f.hydrate_to.empty() ? " and write" : "");
    so.listen.push_back(l);
  }
  so.unix_socket = f.socket;

  CK_ASSIGN_OR_RETURN(auto snap, OpenSnapshot(ctx, "serve", f.id, f.cache_size));
  std::shared_ptr<nbd::Backend> exported = snap;
  std::shared_ptr<nbd::OverlayBackend> overlay;
  std::shared_ptr<nbd::HydrateBackend> hydrate;
  if (!f.hydrate_to.empty()) {
    nbd::HydrateOptions ho;
    ho.map_path = f.hydrate_map.empty() ? nbd::HydrateMapPath(f.hydrate_to) : f.hydrate_map;
    ho.identity = snap->Identity();
    ho.region_size = snap->chunk_size();
    CK_ASSIGN_OR_RETURN(auto target, nbd::PrepareHydrateTarget(f.hydrate_to, snap->Size(), ho));
    CK_ASSIGN_OR_RETURN(auto h, nbd::HydrateBackend::Open(snap, target.target, ho));
    hydrate = std::move(h);
    exported = hydrate;
    nbd::HydrateProgress p = hydrate->Progress();
    if (p.complete)
      log::Info("hydrate: {} already holds all of {}", f.hydrate_to, f.id);
    else if (target.resumed)
      log::Info("hydrate: resuming {} at {} of {}", f.hydrate_to, FormatBytes(p.done_bytes),
                FormatBytes(p.total_bytes));
    else
      log::Info("hydrate: copying {} into {} in the background ({} marks it incomplete)", f.id,
                f.hydrate_to, ho.map_path);
  } else if (f.writable) {
    nbd::OverlayOptions oo;
    oo.path = f.overlay;
    oo.identity = snap->Identity();
    CK_ASSIGN_OR_RETURN(auto o, nbd::OverlayBackend::Open(snap, oo));
    overlay = std::move(o);
    exported = overlay;
    if (overlay->resumed())
      log::Info("overlay {}: {} blocks written before are kept", f.overlay,
                overlay->blocks_written());
  }
  so.read_only = !exported->Caps().writable;

  // SIGINT/SIGTERM are taken by sigtimedwait below; the server's threads inherit the mask.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  std::string description = exported->Description();
  auto started = nbd::Server::Start(
      so, {nbd::Export{"", description, exported}, nbd::Export{f.id, description, exported}});
  if (!started.ok()) {
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    return started.status();
  }
  std::unique_ptr<nbd::Server> server = std::move(started).value();
  if (hydrate) hydrate->Start();

  std::vector<std::string> addresses = server->Addresses();
  std::vector<std::string> uris;
  for (const auto& a : addresses) uris.push_back(NbdUri(a, f.id));
  const auto& s = snap->snapshot();
  if (ctx.global.json) {
    Json doc = {{"snapshot", s.id},
                {"volume_id", s.volume_id},
                {"size_bytes", snap->Size()},
                {"addresses", addresses},
                {"uris", uris},
                {"exports", {"", s.id}},
                {"writable", !so.read_only},
                {"cache_size_bytes", snap->Stats().capacity_bytes},
                {"overlay", nullptr},
                {"hydrate", nullptr},
                {"pid", ::getpid()}};
    if (overlay)
      doc["overlay"] = {
          {"path", overlay->path().empty() ? Json(nullptr) : Json(overlay->path())},
          {"map", overlay->path().empty() ? Json(nullptr) : Json(overlay->map_path())},
          {"temporary", overlay->path().empty()},
          {"resumed", overlay->resumed()}};
    if (hydrate) doc["hydrate"] = HydrateJson(*hydrate, f.hydrate_to);
    PrintJson(doc);
  } else {
    std::string mode =
        hydrate   ? "writable, hydrating " + f.hydrate_to
        : overlay ? "writable, overlay " + (overlay->path().empty() ? "temporary" : overlay->path())
                  : "read-only";
    std::string out =
        fmt::format("serving {} ({}, {}); Ctrl-C stops\n", s.id, FormatBytes(snap->Size()), mode);
    for (const auto& u : uris) out += "  " + u + "\n";
    PrintText(out);
  }
  std::fflush(stdout);

  bool logged_complete = false;
  uint64_t last_progress = MonoNs();
  for (;;) {
    Micros wait = std::min<Micros>(interval, std::chrono::seconds(1));
    timespec tick{static_cast<time_t>(wait.count() / 1000000),
                  static_cast<long>(wait.count() % 1000000) * 1000};
    int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log::Info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (hydrate && !logged_complete) {
      nbd::HydrateProgress p = hydrate->Progress();
      if (p.complete) {
        logged_complete = true;
        LogHydrate(*hydrate);
      } else if (MonoNs() - last_progress >= static_cast<uint64_t>(interval.count()) * 1000) {
        last_progress = MonoNs();
        LogHydrate(*hydrate);
      }
    }
  }
  server->Stop();
  server->Wait();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (hydrate) {
    hydrate->Stop();
    nbd::HydrateProgress p = hydrate->Progress();
    if (!p.complete)
      log::Info("hydrate: stopped at {} of {}; run the same command again to resume",
                FormatBytes(p.done_bytes), FormatBytes(p.total_bytes));
  }
  if (overlay) {
    Status fs = overlay->Flush();
    if (!fs.ok()) return fs;
  }
  nbd::ServerStats st = server->Stats();
  local::SnapshotCacheStats cs = snap->Stats();
  log::Info(
      "served {} connections, {} requests ({} failed), {} read, {} written; chunk cache {} "
      "hits, {} misses",
      st.connections_total, st.requests_total, st.errors_total, FormatBytes(st.bytes_read),
      FormatBytes(st.bytes_written), cs.hits, cs.misses);
  return Status::Ok();
}

void AddServe(CLI::App* group, Context& ctx) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd = group->add_subcommand(
      "serve", "Export a snapshot over NBD at once, without restoring it (local store)");
  cmd->add_option("SNAPSHOT", f->id, "Snapshot id (snap-…)")->required();
  cmd->add_option("--listen", f->listen,
                  fmt::format("ADDR:PORT to listen on (repeatable; port 0 picks a free one; "
                              "default 127.0.0.1:{} unless --socket)",
                              nbd::kDefaultPort));
  cmd->add_option("--socket", f->socket, "Unix socket to listen on (removed at exit)");
  cmd->add_flag("--writable", f->writable,
                "Accept writes, into a copy-on-write overlay; the store is never written");
  cmd->add_option("--overlay", f->overlay,
                  "With --writable: keep the overlay in FILE (and FILE.cloudkeep-overlay), to "
                  "serve it again later (default: a temporary file, gone at exit)");
  cmd->add_option("--cache-size", f->cache_size, "Decompressed chunks kept in memory (at least 8M)")
      ->capture_default_str();
  cmd->add_option("--hydrate-to", f->hydrate_to,
                  "Copy the snapshot into PATH (file or block device) in the background while "
                  "serving; writes go to PATH");
  cmd->add_option("--hydrate-map", f->hydrate_map,
                  "Where the hydrate's progress map lives (default PATH.cloudkeep-hydrate; "
                  "needed for a block device)");
  cmd->add_option("--progress-interval", f->progress_interval,
                  "How often hydrate progress is logged on stderr")
      ->capture_default_str();
  cmd->footer(
      "Chunks are read, checked against their SHA-256 and decompressed when a client reads "
      "them;\n"
      "holes and zero chunks answer BLOCK_STATUS as such. A damaged chunk is an I/O error for "
      "the\n"
      "reads that touch it, and a log line naming it. The export is named by the snapshot id and "
      "is\n"
      "also the default export (\"\"). The store stays locked (shared) while serving: deletes "
      "and\n"
      "new snapshots wait for the server to stop. Runs until SIGINT or SIGTERM.\n\n"
      "--hydrate-to copies the snapshot into PATH while clients use the export; regions already\n"
      "copied are served from PATH, and once it is complete from PATH alone. Killed at any "
      "point,\n"
      "the same command resumes; PATH is incomplete for as long as PATH.cloudkeep-hydrate "
      "exists.\n\n"
      "With --json, one document is printed once it is listening: the addresses, nbd:// URIs,\n"
      "export names, size and the overlay or hydrate state (docs/nbd-snapshots.md).\n\n"
      "Examples:\n"
      "  cloudkeep snapshot serve snap-0a1b2c3d4e5f67890\n"
      "  nbdinfo --map nbd://127.0.0.1/snap-0a1b2c3d4e5f67890\n"
      "  cloudkeep snapshot serve snap-0a1b2c3d4e5f67890 --socket /run/ck.sock --writable\n"
      "  cloudkeep --json snapshot serve snap-0a1b2c3d4e5f67890 --listen 127.0.0.1:0\n"
      "  cloudkeep snapshot serve snap-0a1b2c3d4e5f67890 --hydrate-to /srv/restore/disk.img");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status { return Serve(ctx, *f); }));
}

void AddMount(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string id, mountpoint, cache_size = "256M";
    int partition = 0;
    bool foreground = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "mount", "Mount the file system inside a snapshot read-only, without restoring it");
  cmd->add_option("SNAPSHOT", f->id, "Snapshot id (snap-…)")->required();
  cmd->add_option("MOUNTPOINT", f->mountpoint, "An existing empty directory")->required();
  cmd->add_option("--partition", f->partition,
                  "Mount partition N of a partitioned volume (MBR or GPT numbering)")
      ->check(CLI::Range(1, 128));
  cmd->add_option("--cache-size", f->cache_size, "Decompressed chunks kept in memory")
      ->capture_default_str();
  cmd->add_flag("--foreground", f->foreground,
                "Serve in this process (logs on stderr) until SIGINT/SIGTERM, then unmount");
  cmd->footer(
      "For copying a few files out of a snapshot. Needs root. The snapshot becomes a file in a "
      "FUSE\n"
      "directory, a read-only loop device over it, and the file system on that is mounted\n"
      "ro,nosuid,nodev (ext4 also noload; XFS norecovery,nouuid, so a copy of a mounted XFS "
      "mounts\n"
      "too; btrfs rescue=nologreplay). A background process serves it until 'snapshot umount';\n"
      "if that process dies, a watchdog unmounts everything. Log: "
      "/run/cloudkeep/mounts/PID.log.\n\n"
      "Examples:\n"
      "  cloudkeep snapshot mount snap-0a1b2c3d4e5f67890 /mnt/snap\n"
      "  cp /mnt/snap/etc/nginx/nginx.conf /tmp/ && cloudkeep snapshot umount /mnt/snap\n"
      "  cloudkeep snapshot mount snap-0a1b2c3d4e5f67890 /mnt/snap --partition 2");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    CK_ASSIGN_OR_RETURN(auto snap, OpenSnapshot(ctx, "mount", f->id, f->cache_size));
    nbd::MountRequest req;
    req.mountpoint = f->mountpoint;
    req.partition = f->partition;
    req.file_name = f->id + ".img";
    req.what = "snapshot " + f->id;
    req.foreground = f->foreground;
    auto print = [&ctx, f](const nbd::MountInfo& info) {
      if (ctx.global.json) {
        Json doc = info.ToJson();
        doc["snapshot"] = f->id;
        PrintJson(doc);
      } else {
        PrintText(fmt::format(
            "mounted {}{} ({}, read-only) on {} from {}\n'cloudkeep snapshot umount {}' "
            "unmounts it\n",
            f->id, info.partition ? fmt::format(" partition {}", info.partition) : "", info.fstype,
            info.mountpoint, info.device, info.mountpoint));
      }
      std::fflush(stdout);
    };
    CK_ASSIGN_OR_RETURN(nbd::MountInfo info, nbd::MountReadOnly(snap, req, print));
    snap.reset();
    if (!f->foreground) print(info);
    return Status::Ok();
  }));
}

void AddUmount(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string mountpoint;
    bool lazy = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand("umount", "Unmount what 'snapshot mount' mounted");
  cmd->add_option("MOUNTPOINT", f->mountpoint, "Where the snapshot is mounted")->required();
  cmd->add_flag("--lazy", f->lazy,
                "If it is busy, detach it now; it is released when the last file is closed");
  cmd->footer(
      "Unmounts the file system, releases the loop device, unmounts the FUSE file and stops the\n"
      "serving process. Exit 1 without changing anything when the file system is busy.\n\n"
      "Example:\n  cloudkeep snapshot umount /mnt/snap");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    CK_ASSIGN_OR_RETURN(nbd::MountInfo info, nbd::UnmountReadOnly(f->mountpoint, f->lazy));
    if (ctx.global.json)
      PrintJson({{"mountpoint", info.mountpoint},
                 {"device", info.device},
                 {"what", info.what},
                 {"unmounted", true}});
    else
      PrintText(fmt::format("unmounted {} ({})\n", info.mountpoint, info.what));
    return Status::Ok();
  }));
}

}  // namespace

void AddSnapshotServeCommands(CLI::App* group, Context& ctx) {
  AddServe(group, ctx);
  AddMount(group, ctx);
  AddUmount(group, ctx);
}

}  // namespace cloudkeep::cli
