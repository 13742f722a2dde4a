// cloudkeep: snapshots with retention, mail-server audits, latency meshes.
#include <cstdio>

#include "cli/app.h"
#include "cli/validate.h"
#include "core/log.h"

namespace cloudkeep::cli {

int Main(int argc, char** argv) {
  Context ctx;
  CLI::App app;
  BuildApp(app, ctx);

  // What CLI11 would misreport or let through: an unknown command word, a
  // config file with a typo or a syntax error.
  if (Status s = CheckCommandWords(app, argc, argv); !s.ok()) {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--json") ctx.global.json = true;
    return Report(ctx, s);
  }
  // After `agent`, --config names the agent's own file (cloudkeep-agent(1)),
  // which `agent` checks itself: only what comes before is the general one.
  int general_argc = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "agent") {
      general_argc = i;
      break;
    }
  if (Status s = ValidateConfigFile(
          app, ConfigPathOf(app, general_argc, argv, "/etc/cloudkeep/cloudkeep.toml"));
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
