#include "snapshot/hooks.h"

#include <fmt/format.h>

#include "core/log.h"
#include "core/subprocess.h"

namespace cloudkeep::snapshot {

namespace {

std::string Tail(const std::string& out) {
  constexpr size_t kMax = 2000;
  std::string t = out.size() > kMax ? "…" + out.substr(out.size() - kMax) : out;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

HookReport RunHook(const std::string& phase, const std::string& command, Micros timeout,
                   std::vector<std::string> env) {
  HookReport r;
  r.command = command;
  SubprocessOptions opts;
  opts.timeout = timeout;
  opts.capture = true;
  env.push_back("CLOUDKEEP_HOOK=" + phase);
  opts.extra_env = std::move(env);
  auto res = RunShell(command, opts);
  if (!res.ok()) {
    r.outcome = res.status().message();
    return r;
  }
  r.ok = res->success();
  r.outcome = res->Describe();
  r.output = Tail(res->output);
  r.elapsed = res->elapsed;
  if (!r.output.empty()) log::Debug("{} hook '{}' printed: {}", phase, command, r.output);
  return r;
}

Status HookFailure(const std::string& phase, const HookReport& r) {
  std::string out = r.output.empty() ? "" : ": " + r.output;
  for (auto& c : out)
    if (c == '\n') c = ' ';
  return Status::Failure(fmt::format("{} hook '{}' {}{}", phase, r.command, r.outcome, out));
}

}  // namespace

Status RunPreHooks(const std::vector<std::string>& hooks, Micros timeout,
                   std::vector<HookReport>* reports) {
  for (const auto& h : hooks) {
    reports->push_back(RunHook("pre", h, timeout, {}));
    if (!reports->back().ok) return HookFailure("pre", reports->back());
  }
  return Status::Ok();
}

Status RunPostHooks(const std::vector<std::string>& hooks, Micros timeout,
                    std::vector<HookReport>* reports) {
  Status first;
  for (size_t i = hooks.size(); i-- > 0;) {
    reports->push_back(RunHook("post", hooks[i], timeout, {}));
    if (!reports->back().ok && first.ok()) first = HookFailure("post", reports->back());
  }
  return first;
}

}  // namespace cloudkeep::snapshot
