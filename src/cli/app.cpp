#include "cli/app.h"

#include <cstdio>

#include "core/log.h"
#include "core/output.h"

namespace cloudkeep::cli {

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
