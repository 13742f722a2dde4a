// cloudkeep: snapshots with retention, mail-server audits, latency meshes.
#include <cstdio>

#include "cli/app.h"
#include "cli/validate.h"
#include "core/log.h"

#ifndef CLOUDKEEP_VERSION
#define CLOUDKEEP_VERSION "0.0.0"
#endif

namespace cloudkeep::cli {

int Main(int argc, char** argv) {
  Context ctx;
  CLI::App app{
      "cloudkeep — keeps production cloud servers safe: application-consistent volume snapshots "
      "with\n"
      "retention, mail-server deliverability audits, and latency/throughput measurement between "
      "servers."};
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
                 "Local store directory (else $CLOUDKEEP_STORE, else /var/lib/cloudkeep as root, "
                 "$XDG_DATA_HOME/cloudkeep otherwise)");
  app.add_option("--region", ctx.global.region,
                 "AWS region (else AWS_REGION, the AWS config file, or IMDS)");
  app.add_option("--profile", ctx.global.profile,
                 "AWS profile from the shared credentials/config files");
  app.add_option("--endpoint-url", ctx.global.endpoint_url,
                 "Use this EC2 endpoint instead of the region's");
  app.require_subcommand(1);
  app.footer(
      "Groups:\n"
      "  volumes     volumes attached to this machine\n"
      "  snapshot    create, list, show, restore, verify, delete and prune snapshots\n"
      "  latency     latency and throughput between servers, inside and across zones\n"
      "  mail        is this mail server trusted? open relay, SPF/DKIM/DMARC, PTR, blocklists\n"
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

  // What CLI11 would misreport or let through: an unknown command word, a
  // config file with a typo or a syntax error.
  if (Status s = CheckCommandWords(app, argc, argv); !s.ok()) {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--json") ctx.global.json = true;
    return Report(ctx, s);
  }
  if (Status s =
          ValidateConfigFile(app, ConfigPathOf(app, argc, argv, "/etc/cloudkeep/cloudkeep.toml"));
      !s.ok()) {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--json") ctx.global.json = true;
    return Report(ctx, s);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (argc == 1) {
      std::fputs(app.help().c_str(), stderr);
      return 2;
    }
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    return Report(ctx, Status::Usage(msg + " (see --help)"));
  }
  if (Status s = CheckEmptyValues(app); !s.ok()) return Report(ctx, s);
  if (!ctx.action) {
    // A group was named without a command.
    std::fputs(app.get_subcommands().back()->help().c_str(), stderr);
    return 2;
  }
  return ctx.action();
}

}  // namespace cloudkeep::cli

int main(int argc, char** argv) {
  return cloudkeep::cli::Main(argc, argv);
}
