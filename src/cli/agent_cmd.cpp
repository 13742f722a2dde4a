// `cloudkeep agent …`: run, status, history, check-config. Flags in, module
// calls, output out; the scheduler, jobs and history live in src/agent.
//
// The one piece of logic here is the StepBuilder: a job's keys are the flags
// of the command it runs, so they are checked by parsing the command line the
// job will run with a second, untouched copy of this program's own command
// line (BuildApp): the same options, ranges and validators as the command,
// never a second list of them.
#include <fmt/format.h>

#include "agent/agent.h"
#include "cli/app.h"
#include "cli/validate.h"
#include "core/log.h"

#ifndef CLOUDKEEP_VERSION
#define CLOUDKEEP_VERSION "0.0.0"
#endif

namespace cloudkeep::cli {

namespace {

using agent::CommandKey;
using agent::JobConfig;
using Errors = std::vector<std::pair<int, std::string>>;

constexpr const char* kDefaultConfig = "/etc/cloudkeep/agent.toml";

std::string Dashed(std::string key) {
  for (char& c : key)
    if (c == '_') c = '-';
  return key;
}

std::string ValueText(const CommandKey& k) {
  if (!k.is_list) return k.is_bool ? k.values[0] : "\"" + k.values[0] + "\"";
  std::string out;
  for (const auto& v : k.values) out += (out.empty() ? "" : ", ") + ("\"" + v + "\"");
  return "[" + out + "]";
}

CLI::App* Sub(CLI::App& root, const std::string& group, const std::string& command) {
  return root.get_subcommand(group)->get_subcommand(command);
}

// The option a key names in `cmd`: "--keep-daily" for keep_daily, or the
// positional whose name it is ("volumes" for VOLUME, "domain" for DOMAIN).
const CLI::Option* OptionFor(const CLI::App* cmd, const std::string& key) {
  if (const CLI::Option* o = cmd->get_option_no_throw("--" + Dashed(key))) return o;
  for (const CLI::Option* o : cmd->get_options()) {
    if (o->nonpositional()) continue;
    std::string name = o->get_name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == name || key == name + "s") return o;
  }
  return nullptr;
}

// Appends the arguments for `k` on option `o`; false with an error when the
// kind of value does not fit the option.
bool AppendArgs(const CLI::Option* o, const CommandKey& k, std::vector<std::string>* args,
                Errors* errors) {
  bool takes_value = o->get_items_expected_max() > 0;
  if (!takes_value) {
    if (!k.is_bool) {
      errors->push_back(
          {k.line, fmt::format("{} = {}: a flag, give true or false", k.key, ValueText(k))});
      return false;
    }
    if (k.values[0] == "true") args->push_back("--" + Dashed(k.key));
    return true;
  }
  // An option whose values are optional ("--freeze [MOUNTPOINT...]") is also a flag.
  if (k.is_bool && o->get_items_expected_min() == 0 && o->nonpositional()) {
    if (k.values[0] == "true") args->push_back("--" + Dashed(k.key));
    return true;
  }
  if (k.is_bool) {
    errors->push_back(
        {k.line, fmt::format("{} = {}: takes a value, not true or false", k.key, ValueText(k))});
    return false;
  }
  if (k.is_list && o->get_items_expected_max() <= 1 && o->get_expected_max() <= 1) {
    errors->push_back(
        {k.line, fmt::format("{} = {}: takes one value, not a list", k.key, ValueText(k))});
    return false;
  }
  for (const auto& v : k.values) {
    if (v.empty()) {
      errors->push_back({k.line, fmt::format("{} = \"\": is empty", k.key)});
      return false;
    }
    // "--keep-daily=-5", not "--keep-daily -5": a value is never read as an option.
    if (o->nonpositional())
      args->push_back("--" + Dashed(k.key) + "=" + v);
    else
      args->push_back(v);
  }
  return true;
}

// Parses `args` with a fresh command line, as the child will; the error
// names the key whose flag CLI11 complains about.
void CheckArgs(const std::vector<std::string>& args, const std::vector<CommandKey>& keys,
               Errors* errors) {
  CLI::App root;
  Context ctx;
  BuildApp(root, ctx);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    root.parse(rev);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    for (const auto& k : keys)
      if (msg.find("--" + Dashed(k.key)) != std::string::npos) {
        errors->push_back({k.line, fmt::format("{} = {}: {}", k.key, ValueText(k), msg)});
        return;
      }
    errors->push_back({0, msg});
    return;
  }
  if (Status s = CheckEmptyValues(root); !s.ok()) errors->push_back({0, s.message()});
}

// Keys whose value the command checks in its body rather than at parse time.
void CheckDurations(const std::vector<CommandKey>& keys, Errors* errors) {
  static const std::pair<const char*, BareNumber> kDurations[] = {
      {"older_than", BareNumber::kDays},
      {"keep_within", BareNumber::kDays},
      {"interval", BareNumber::kSeconds},
      {"throughput_duration", BareNumber::kSeconds}};
  for (const auto& k : keys)
    for (const auto& [name, bare] : kDurations)
      if (k.key == name && !k.is_bool && !k.is_list) {
        auto d = DurationFlag(k.values[0], bare, "--" + Dashed(k.key));
        if (!d.ok())
          errors->push_back(
              {k.line, fmt::format("{} = {}: {}", k.key, ValueText(k), d.status().message())});
      }
}

void BuildSteps(JobConfig& job, Errors* errors) {
  CLI::App root;
  Context ctx;
  BuildApp(root, ctx);
  std::vector<std::string> global{"--json"};
  std::vector<CommandKey> create_keys, prune_keys, keys;
  CLI::App* create = nullptr;
  CLI::App* prune = nullptr;
  CLI::App* cmd = nullptr;
  std::vector<std::string> words;
  if (job.kind == "snapshot") {
    create = Sub(root, "snapshot", "create");
    prune = Sub(root, "snapshot", "prune");
  } else if (job.kind == "mesh") {
    cmd = Sub(root, "latency", "mesh");
    words = {"latency", "mesh"};
  } else {
    cmd = Sub(root, "mail", "check");
    words = {"mail", "check"};
  }
  std::vector<std::string> volumes;
  bool all_attached = false;
  std::vector<std::string> cmd_args;
  for (const auto& k : job.keys) {
    // Options of the root (--store, --provider, --region …) before the group.
    if (k.key != "json" && k.key != "verbose" && k.key != "quiet" && k.key != "config" &&
        k.key != "help" && k.key != "version") {
      if (const CLI::Option* o = root.get_option_no_throw("--" + Dashed(k.key))) {
        AppendArgs(o, k, &global, errors);
        keys.push_back(k);
        continue;
      }
    }
    if (job.kind == "snapshot") {
      if (k.key == "volumes" || k.key == "volume") {
        for (const auto& v : k.values) volumes.push_back(v);
        keys.push_back(k);
        continue;
      }
      if (k.key == "all_attached") all_attached = k.is_bool && k.values[0] == "true";
      const CLI::Option* o = OptionFor(create, k.key);
      if (o && o->nonpositional()) {
        AppendArgs(o, k, &cmd_args, errors);
        create_keys.push_back(k);
        continue;
      }
      o = OptionFor(prune, k.key);
      if (o && o->nonpositional() && k.key != "volume") {
        prune_keys.push_back(k);
        continue;
      }
      errors->push_back({k.line, fmt::format("unknown key '{}' = {} for a snapshot job (the flags "
                                             "of 'snapshot create' and 'snapshot prune', and "
                                             "volumes)",
                                             k.key, ValueText(k))});
      continue;
    }
    const CLI::Option* o = OptionFor(cmd, k.key);
    if (!o || k.key == "help") {
      errors->push_back({k.line, fmt::format("unknown key '{}' = {} for a {} job (the flags of "
                                             "'cloudkeep {} {}')",
                                             k.key, ValueText(k), job.kind, words[0], words[1])});
      continue;
    }
    AppendArgs(o, k, &cmd_args, errors);
    keys.push_back(k);
  }
  CheckDurations(job.keys, errors);
  if (job.kind != "snapshot") {
    std::vector<std::string> step = global;
    step.insert(step.end(), words.begin(), words.end());
    step.insert(step.end(), cmd_args.begin(), cmd_args.end());
    CheckArgs(step, job.keys, errors);
    job.steps.push_back(step);
    return;
  }
  if (volumes.empty() == !all_attached) {
    errors->push_back({0, volumes.empty() ? "no volumes (volumes = [\"/dev/sdb\"], or "
                                            "all_attached = true)"
                                          : "give volumes or all_attached, not both"});
    return;
  }
  std::vector<std::string> c = global;
  c.insert(c.end(), {"snapshot", "create"});
  c.insert(c.end(), cmd_args.begin(), cmd_args.end());
  if (!volumes.empty()) {
    c.push_back("--");
    c.insert(c.end(), volumes.begin(), volumes.end());
  }
  CheckArgs(c, job.keys, errors);
  job.steps.push_back(c);
  job.locks = all_attached ? std::vector<std::string>{"*"} : volumes;
  if (prune_keys.empty()) return;
  if (all_attached) {
    errors->push_back({prune_keys[0].line,
                       fmt::format("{}: a retention policy needs the volumes listed (volumes = "
                                   "[…]), not all_attached",
                                   prune_keys[0].key)});
    return;
  }
  std::vector<std::string> p = global;
  p.insert(p.end(), {"snapshot", "prune"});
  for (const auto& v : volumes) p.insert(p.end(), {"-v", v});
  for (const auto& k : prune_keys) AppendArgs(OptionFor(prune, k.key), k, &p, errors);
  CheckArgs(p, job.keys, errors);
  job.steps.push_back(p);
}

agent::ConfigLoad Load(const std::string& path) {
  return agent::LoadConfig(path, [](JobConfig& job, Errors* errors) { BuildSteps(job, errors); });
}

// Each error on its own line, exit 2.
Status Refuse(const agent::ConfigLoad& l) {
  for (size_t i = 0; i + 1 < l.errors.size(); ++i) log::Error("{}", l.errors[i]);
  return Status::Usage(l.errors.back());
}

Result<agent::AgentConfig> LoadOrRefuse(const std::string& path) {
  agent::ConfigLoad l = Load(path);
  if (!l.config) return Refuse(l);
  return std::move(*l.config);
}

Json RunToJson(const agent::Run& r) {
  Json j = {{"id", r.id},
            {"job", r.job},
            {"slot", FormatRfc3339(r.slot)},
            {"started", FormatRfc3339(r.started, true)},
            {"outcome", r.outcome},
            {"summary", r.summary},
            {"error", r.error}};
  j["ended"] = r.ended ? Json(FormatRfc3339(*r.ended, true)) : Json(nullptr);
  if (r.ended) j["duration_seconds"] = std::chrono::duration<double>(*r.ended - r.started).count();
  return j;
}

}  // namespace

void AddAgentCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "agent", "The long-running agent: scheduled jobs, their history, Prometheus /metrics");
  group->require_subcommand(0, 1);
  group->fallthrough();
  group->footer(
      "Commands: run, status, history, check-config. The jobs, schedules and the listen address "
      "are in\n"
      "the agent's own TOML file (default /etc/cloudkeep/agent.toml; see cloudkeep-agent(1)).\n\n"
      "Examples:\n"
      "  cloudkeep agent check-config /etc/cloudkeep/agent.toml\n"
      "  cloudkeep agent run --config /etc/cloudkeep/agent.toml\n"
      "  cloudkeep agent status\n"
      "  cloudkeep --json agent history --job web-hourly");
  // Here --config names the agent's own file (its own shape: [agent] and
  // [[job]]), not the general cloudkeep.toml; main.cpp leaves it to us.
  auto path = std::make_shared<std::string>(kDefaultConfig);

  auto* run = group->add_subcommand("run", "Run the agent in the foreground until SIGTERM");
  run->add_option("--config", *path, "The agent's TOML file (default /etc/cloudkeep/agent.toml)");
  run->footer(
      "Logs one line per event on stderr. SIGHUP reloads the file (a bad one is refused and the "
      "running\n"
      "config kept); SIGTERM waits for running jobs up to shutdown_timeout.\n\n"
      "Example:\n  cloudkeep agent run --config /etc/cloudkeep/agent.toml");
  run->callback(Action(ctx, [path]() -> Status {
    CK_ASSIGN_OR_RETURN(agent::AgentConfig config, LoadOrRefuse(*path));
    CK_RETURN_IF_ERROR(agent::ApplyTimezone(config.timezone));
    agent::AgentOptions opts;
    opts.version = CLOUDKEEP_VERSION;
    std::string p = *path;
    opts.reload = [p] { return Load(p); };
    return agent::RunAgent(std::move(config), opts, SystemClock::Default());
  }));

  auto* check = group->add_subcommand(
      "check-config", "Check an agent config file: every problem on its own line, exit 2");
  auto file = std::make_shared<std::string>();
  check->add_option("FILE", *file, "The agent's TOML file")->required();
  check->footer("Example:\n  cloudkeep agent check-config /etc/cloudkeep/agent.toml");
  check->callback(Action(ctx, [&ctx, file]() -> Status {
    agent::ConfigLoad l = Load(*file);
    if (!l.config) return Refuse(l);
    if (ctx.global.json) {
      Json doc = {{"ok", true}, {"jobs", Json::array()}};
      for (const auto& j : l.config->jobs)
        doc["jobs"].push_back({{"name", j.name},
                               {"kind", j.kind},
                               {"schedule", j.schedule->Describe()},
                               {"steps", j.steps}});
      PrintJson(doc);
    } else {
      std::string out = fmt::format("{}: OK, {} job(s)\n", *file, l.config->jobs.size());
      for (const auto& j : l.config->jobs)
        out += fmt::format("  {} ({}): {}\n", j.name, j.kind, j.schedule->Describe());
      PrintText(out);
    }
    return Status::Ok();
  }));

  auto* status = group->add_subcommand("status", "Jobs with their last and next run and outcome");
  status->add_option("--config", *path,
                     "The agent's TOML file (default /etc/cloudkeep/agent.toml)");
  status->footer("Example:\n  cloudkeep agent status --config /etc/cloudkeep/agent.toml");
  status->callback(Action(ctx, [&ctx, path]() -> Status {
    CK_ASSIGN_OR_RETURN(agent::AgentConfig config, LoadOrRefuse(*path));
    CK_RETURN_IF_ERROR(agent::ApplyTimezone(config.timezone));
    CK_ASSIGN_OR_RETURN(auto history, agent::OpenHistory(config, false));
    TimePoint now = SystemClock::Default().Now();
    Json doc = {{"jobs", Json::array()}};
    Table t({"JOB", "KIND", "SCHEDULE", "LAST RUN", "OUTCOME", "NEXT RUN", "ERROR"});
    for (const auto& j : config.jobs) {
      CK_ASSIGN_OR_RETURN(auto last, history->LastRun(j.name));
      CK_ASSIGN_OR_RETURN(auto last_slot, history->LastSlot(j.name));
      TimePoint next_slot = last_slot ? j.schedule->Next(*last_slot) : j.schedule->Next(now);
      // A slot already passed runs at once when the agent next looks.
      TimePoint next = std::max(j.schedule->DueAt(j.name, next_slot), now);
      Json jj = {{"name", j.name},
                 {"kind", j.kind},
                 {"schedule", j.schedule->Describe()},
                 {"next_run", FormatRfc3339(next)}};
      jj["last_run"] = last ? RunToJson(*last) : Json(nullptr);
      doc["jobs"].push_back(jj);
      t.AddRow({j.name, j.kind, j.schedule->Describe(), last ? FormatLocal(last->started) : "-",
                last ? last->outcome : "-", FormatLocal(next),
                last && !last->error.empty() ? last->error : "-"});
    }
    if (ctx.global.json)
      PrintJson(doc);
    else
      PrintText(t.Render());
    return Status::Ok();
  }));

  struct HistoryFlags {
    std::string job;
    int limit = 50;
  };
  auto hf = std::make_shared<HistoryFlags>();
  auto* hist = group->add_subcommand("history", "Past runs, newest first");
  hist->add_option("--config", *path, "The agent's TOML file (default /etc/cloudkeep/agent.toml)");
  hist->add_option("--job", hf->job, "Only this job's runs");
  hist->add_option("--limit", hf->limit, "At most N runs (default 50)")
      ->check(CLI::Range(1, 1000000));
  hist->footer(
      "Examples:\n  cloudkeep agent history --job web-hourly\n  cloudkeep --json agent history "
      "--limit 500");
  hist->callback(Action(ctx, [&ctx, path, hf]() -> Status {
    CK_ASSIGN_OR_RETURN(agent::AgentConfig config, LoadOrRefuse(*path));
    if (!hf->job.empty() && !config.Find(hf->job)) {
      std::string names;
      for (const auto& j : config.jobs) names += (names.empty() ? "" : ", ") + j.name;
      return Status::Usage(fmt::format("--job '{}': no such job in {} (jobs: {})", hf->job,
                                       config.path, names.empty() ? "none" : names));
    }
    CK_ASSIGN_OR_RETURN(auto history, agent::OpenHistory(config, false));
    CK_ASSIGN_OR_RETURN(auto runs, history->Runs(hf->job, hf->limit));
    if (ctx.global.json) {
      Json doc = {{"runs", Json::array()}};
      for (const auto& r : runs) doc["runs"].push_back(RunToJson(r));
      PrintJson(doc);
      return Status::Ok();
    }
    Table t({"JOB", "SLOT", "STARTED", "DURATION", "OUTCOME", "SUMMARY", "ERROR"});
    for (const auto& r : runs)
      t.AddRow(
          {r.job, FormatLocal(r.slot), FormatLocal(r.started),
           r.ended ? FormatDuration(std::chrono::duration_cast<Micros>(*r.ended - r.started)) : "-",
           r.outcome, r.summary.empty() ? "-" : r.summary, r.error.empty() ? "-" : r.error});
    PrintText(t.Render());
    return Status::Ok();
  }));
  for (auto* sub : group->get_subcommands()) sub->fallthrough();
}

}  // namespace cloudkeep::cli
