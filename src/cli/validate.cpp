#include "cli/validate.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <set>

namespace cloudkeep::cli {

namespace {

// The option `token` names in `app` or in the parents whose options fall
// through to it ("--store" after "snapshot list").
const CLI::Option* FindOption(const CLI::App* app, const std::string& token) {
  for (const CLI::App* a = app; a; a = a->get_parent()) {
    if (const CLI::Option* o = a->get_option_no_throw(token)) return o;
  }
  return nullptr;
}

std::string GroupPath(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a && a->get_parent(); a = a->get_parent())
    path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

bool TakesValue(const CLI::Option* o) {
  return o->get_items_expected_max() > 0;
}

}  // namespace

Status CheckCommandWords(CLI::App& app, int argc, char** argv) {
  CLI::App* current = &app;
  for (int i = 1; i < argc; ++i) {
    std::string tok = argv[i];
    if (tok == "--") return Status::Ok();
    if (tok.size() > 1 && tok[0] == '-') {
      std::string name = tok.substr(0, tok.find('='));
      if (name == "-h" || name == "--help" || name == "--help-all" || name == "--version")
        return Status::Ok();  // CLI11 answers these itself
      const CLI::Option* o = FindOption(current, name);
      // "-vv" and unknown options are CLI11's to report; a value after a
      // value-taking option is not a command word.
      if (o && TakesValue(o) && tok.find('=') == std::string::npos) ++i;
      continue;
    }
    if (current->get_subcommands({}).empty()) return Status::Ok();  // positionals from here on
    CLI::App* sub = nullptr;
    try {
      sub = current->get_subcommand(tok);
    } catch (const CLI::OptionNotFound&) {
      sub = nullptr;
    }
    if (!sub) {
      std::string names;
      for (const CLI::App* s : current->get_subcommands({}))
        names += (names.empty() ? "" : ", ") + s->get_name();
      std::string where = GroupPath(current);
      return Status::Usage(fmt::format("unknown {}command '{}' (one of: {})",
                                       where.empty() ? "" : where + " ", tok, names));
    }
    current = sub;
  }
  return Status::Ok();
}

std::string ConfigPathOf(CLI::App& app, int argc, char** argv, const std::string& default_path) {
  (void)app;
  for (int i = 1; i < argc; ++i) {
    std::string tok = argv[i];
    if (tok == "--config" && i + 1 < argc) return argv[i + 1];
    if (tok.rfind("--config=", 0) == 0) return tok.substr(9);
  }
  FILE* f = std::fopen(default_path.c_str(), "r");
  if (!f) return "";
  std::fclose(f);
  return default_path;
}

namespace {

Status CheckTable(const CLI::App* app, const toml::table& table, const std::string& path) {
  for (const auto& [key_node, node] : table) {
    std::string key(key_node.str());
    int line = key_node.source().begin.line;
    auto where = [&] { return fmt::format("{}:{}", path, line); };
    // [resource.NAME] tables describe mirrored resources (docs/mirror.md);
    // `cloudkeep mirror` reads and validates them itself.
    if (!app->get_parent() && key == "resource" && node.is_table()) continue;
    if (node.is_table()) {
      const CLI::App* sub = nullptr;
      try {
        sub = app->get_subcommand(key);
      } catch (const CLI::OptionNotFound&) {
        sub = nullptr;
      }
      if (!sub)
        return Status::Usage(
            fmt::format("{}: [{}] names no command group or command", where(), key));
      CK_RETURN_IF_ERROR(CheckTable(sub, *node.as_table(), path));
      continue;
    }
    const CLI::Option* o = app->get_option_no_throw("--" + key);
    if (!o && key.size() == 1) o = app->get_option_no_throw("-" + key);
    if (!o || key == "config" || key == "help" || key == "version") {
      std::string dashed = key;
      for (char& c : dashed)
        if (c == '_') c = '-';
      if (dashed != key && app->get_option_no_throw("--" + dashed))
        return Status::Usage(
            fmt::format("{}: unknown key '{}' (did you mean '{}'?)", where(), key, dashed));
      std::string scope = GroupPath(app);
      return Status::Usage(fmt::format("{}: unknown key '{}'{}", where(), key,
                                       scope.empty() ? "" : " in [" + scope + "]"));
    }
    if (!TakesValue(o)) {
      if (!node.is_boolean() && !node.is_integer())
        return Status::Usage(fmt::format("{}: '{}' is a flag: give true or false", where(), key));
      continue;
    }
    bool many = o->get_items_expected_max() > 1;
    if (node.is_array()) {
      if (!many)
        return Status::Usage(fmt::format("{}: '{}' takes one value, not a list", where(), key));
      for (const auto& e : *node.as_array())
        if (e.is_table() || e.is_array() || e.is_boolean())
          return Status::Usage(
              fmt::format("{}: '{}' takes a list of strings or numbers", where(), key));
      continue;
    }
    if (node.is_boolean())
      return Status::Usage(fmt::format("{}: '{}' takes a value, not true or false", where(), key));
    if (node.is_string() && node.as_string()->get().empty())
      return Status::Usage(fmt::format("{}: '{}' is empty", where(), key));
  }
  return Status::Ok();
}

}  // namespace

Status ValidateConfigFile(CLI::App& app, const std::string& path) {
  if (path.empty()) return Status::Ok();
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    if (src.begin.line == 0)  // not a syntax error: the file could not be read
      return Status::Usage(fmt::format("config file '{}': {}", path, e.description()));
    return Status::Usage(fmt::format("{}:{}: {}", path, src.begin.line, e.description()));
  }
  return CheckTable(&app, table, path);
}

Status CheckEmptyValues(CLI::App& app) {
  // Free text may be empty; a path, an address or a name may not.
  static const std::set<std::string> kMayBeEmpty = {"--description"};
  for (CLI::App* a = &app; a;) {
    for (const CLI::Option* o : a->get_options()) {
      // An option whose value is optional (--freeze [MOUNTPOINT...]) records
      // "" when given bare: that is the flag form, not an empty value.
      if (o->count() == 0 || o->get_items_expected_min() == 0 || kMayBeEmpty.count(o->get_name()))
        continue;
      for (const auto& r : o->results()) {
        if (!r.empty()) continue;
        std::string name = o->get_name();
        return Status::Usage(fmt::format(
            "{} is empty: give a value (an unset variable in a cron line expands to nothing)",
            name.empty() ? "an argument" : name));
      }
    }
    auto subs = a->get_subcommands();
    a = subs.empty() ? nullptr : subs.front();
  }
  return Status::Ok();
}

}  // namespace cloudkeep::cli
