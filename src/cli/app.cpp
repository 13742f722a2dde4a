#include "cli/app.h"

#include <cstdio>

#include "core/log.h"
#include "core/output.h"

#ifndef CLOUDKEEP_VERSION
#define CLOUDKEEP_VERSION "0.0.0"
#endif

namespace cloudkeep::cli {

void BuildApp(CLI::App& app, Context& ctx) {
  app.description(
      "cloudkeep — keeps production cloud servers safe: application-consistent volume snapshots "
      "with\n"
      "retention, mail-server deliverability audits, and latency/throughput measurement between "
      "servers.");
  app.name("cloudkeep");
  app.set_version_flag("--version", "cloudkeep " CLOUDKEEP_VERSION);
  app.set_config("--config", "/etc/cloudkeep/cloudkeep.toml",
                 "TOML configuration file; flags override it (default "
                 "/etc/cloudkeep/cloudkeep.toml when present)");
  app.add_flag("--json", ctx.global.json,
               "Print exactly one JSON document on stdout instead of a table");
  app.add_flag("-v,--verbose", ctx.global.verbose,
               "More detail on stderr (repeat for more); before the group");
  app.add_flag("-q,--quiet", ctx.global.quiet, "Only warnings and errors on stderr");
  app.add_option("--provider", ctx.global.provider,
                 "Snapshot provider: local (embedded store) or aws")
      ->check(CLI::IsMember({"local", "aws"}))
      ->envname("CLOUDKEEP_PROVIDER");
  app.add_option("--store", ctx.global.store,
                 "Store: a directory or s3://BUCKET/PREFIX (else $CLOUDKEEP_STORE, else "
                 "/var/lib/cloudkeep as root, $XDG_DATA_HOME/cloudkeep otherwise)");
  app.add_option("--region", ctx.global.region,
                 "AWS region (else AWS_REGION, the AWS config file, or IMDS)");
  app.add_option("--profile", ctx.global.profile,
                 "AWS profile from the shared credentials/config files");
  app.add_option("--endpoint-url", ctx.global.endpoint_url,
                 "Use this EC2 endpoint (--provider aws) or S3 endpoint (an s3:// store) instead "
                 "of the region's");
  app.require_subcommand(1);
  std::string groups =
      "Groups:\n"
      "  volumes     volumes attached to this machine\n"
      "  snapshot    create, list, show, restore, verify, delete and prune snapshots\n"
      "  latency     latency and throughput between servers, inside and across zones\n"
      "  mail        is this mail server trusted? open relay, SPF/DKIM/DMARC, PTR, blocklists\n";
#ifdef CLOUDKEEP_HAVE_MIRROR
  groups += "  mirror      a block device mirrored to a standby host, with fenced failover\n";
#endif
#ifdef CLOUDKEEP_HAVE_AGENT
  groups += "  agent       one daemon that runs the jobs on a schedule, with history and metrics\n";
#endif
  app.footer(
      groups +
      "\n"
      "Examples:\n"
      "  cloudkeep volumes\n"
      "  cloudkeep snapshot create /dev/nvme1n1 --tag app=db\n"
      "  cloudkeep snapshot prune -v /srv/disk.img --keep-daily 7 --keep-weekly 4\n"
      "  cloudkeep --json snapshot list\n"
      "\n"
      "Exit codes: 0 success, 1 the operation failed or an audit found a failure, 2 bad usage or "
      "input.\n"
      "Run 'cloudkeep GROUP --help' or 'cloudkeep GROUP COMMAND --help' for more.");
  // Options of the root stay valid after a group name ("cloudkeep snapshot list --json").
  app.fallthrough();

  AddVolumesCommand(app, ctx);
  AddSnapshotCommands(app, ctx);
  AddLatencyCommands(app, ctx);
  AddMailCommands(app, ctx);
#ifdef CLOUDKEEP_HAVE_MIRROR
  AddMirrorCommands(app, ctx);
#endif
#ifdef CLOUDKEEP_HAVE_AGENT
  AddAgentCommands(app, ctx);
#endif
}

int Report(const Context& ctx, const Status& status) {
  if (status.ok()) return 0;
  // The message may quote a peer (an SMTP reply, a DNS answer, a name): escaped.
  std::fprintf(stderr, "cloudkeep: error: %s\n", EscapeControl(status.message()).c_str());
  if (ctx.global.json && !JsonPrinted()) {
    Json doc;
    doc["error"] = {{"message", status.message()}, {"exit_code", status.exit_code()}};
    PrintJson(doc);
  }
  return status.exit_code();
}

std::function<void()> Action(Context& ctx, std::function<Status()> body) {
  return [&ctx, body = std::move(body)]() {
    ctx.action = [&ctx, body]() -> int {
      log::SetLevel(ctx.global.quiet
                        ? log::Level::kWarn
                        : (ctx.global.verbose > 0 ? log::Level::kDebug : log::Level::kInfo));
      try {
        return Report(ctx, body());
      } catch (const std::exception& e) {
        return Report(ctx, Status::Failure(std::string("internal error: ") + e.what()));
      }
    };
  };
}

Result<Micros> DurationFlag(const std::string& text, BareNumber bare, const std::string& flag) {
  return ParseDuration(text, bare, flag);
}

}  // namespace cloudkeep::cli
