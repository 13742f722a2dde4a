#include "agent/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <set>

#include "core/net.h"

namespace cloudkeep::agent {

namespace {

std::string NodeText(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  if (n.is_array()) return "[…]";
  if (n.is_table()) return "{…}";
  return "?";
}

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  void Error(int line, const std::string& what) {
    errors.push_back(fmt::format("{}:{}: {}", path_, line, what));
  }

  std::optional<std::string> String(const toml::node& n, const std::string& ctx,
                                    const std::string& key, int line) {
    if (!n.is_string() || n.as_string()->get().empty()) {
      Error(line, fmt::format("{}{} = {}: needs a non-empty string", ctx, key, NodeText(n)));
      return std::nullopt;
    }
    return n.as_string()->get();
  }

  std::optional<Micros> Duration(const toml::node& n, const std::string& ctx,
                                 const std::string& key, int line, bool allow_zero) {
    auto s = String(n, ctx, key, line);
    if (!s) return std::nullopt;
    auto d = ParseDuration(*s, BareNumber::kReject, key);
    if (!d.ok()) {
      Error(line, fmt::format("{}{} = \"{}\": {}", ctx, key, *s, d.status().message()));
      return std::nullopt;
    }
    if (d->count() < 0 || (!allow_zero && d->count() == 0)) {
      Error(line, fmt::format("{}{} = \"{}\": must be {}", ctx, key, *s,
                              allow_zero ? "zero or more" : "more than zero"));
      return std::nullopt;
    }
    return *d;
  }

  void Agent(const toml::table& t, AgentConfig& c) {
    for (const auto& [k, n] : t) {
      std::string key(k.str());
      int line = static_cast<int>(k.source().begin.line);
      if (key == "listen") {
        listen_line = line;
        if (auto s = String(n, "[agent] ", key, line)) c.listen = *s;
      } else if (key == "state_dir") {
        if (auto s = String(n, "[agent] ", key, line)) c.state_dir = *s;
      } else if (key == "bearer_token_file") {
        if (auto s = String(n, "[agent] ", key, line)) c.bearer_token_file = *s;
      } else if (key == "timezone") {
        if (auto s = String(n, "[agent] ", key, line)) {
          if (*s != "UTC" && (s->find("..") != std::string::npos || (*s)[0] == '/' ||
                              ::access(("/usr/share/zoneinfo/" + *s).c_str(), R_OK) != 0))
            Error(line, fmt::format("[agent] timezone = \"{}\": no such zone in "
                                    "/usr/share/zoneinfo (an IANA name like Europe/Berlin)",
                                    *s));
          else
            c.timezone = *s;
        }
      } else if (key == "history_max_age") {
        if (auto d = Duration(n, "[agent] ", key, line, false)) c.history_max_age = *d;
      } else if (key == "shutdown_timeout") {
        if (auto d = Duration(n, "[agent] ", key, line, true)) c.shutdown_timeout = *d;
      } else if (key == "history_max_runs") {
        if (!n.is_integer() || n.as_integer()->get() < 1 || n.as_integer()->get() > 10000000)
          Error(line, fmt::format("[agent] history_max_runs = {}: needs a number from 1 to "
                                  "10000000",
                                  NodeText(n)));
        else
          c.history_max_runs = static_cast<int>(n.as_integer()->get());
      } else {
        Error(line, fmt::format("[agent] unknown key '{}' (one of listen, state_dir, "
                                "bearer_token_file, timezone, history_max_age, "
                                "history_max_runs, shutdown_timeout)",
                                key));
      }
    }
  }

  // [[alert]]: exactly one of webhook = "URL" or email = ["addr", …].
  void Alert(const toml::table& t, int line, AgentConfig& c) {
    AlertTarget a;
    a.line = line;
    bool webhook = false, email = false;
    std::string ctx = fmt::format("[[alert]] at line {}: ", line);
    for (const auto& [k, n] : t) {
      std::string key(k.str());
      int kl = static_cast<int>(k.source().begin.line);
      if (key == "webhook") {
        webhook = true;
        if (auto s = String(n, ctx, key, kl)) {
          if (s->rfind("http://", 0) != 0 && s->rfind("https://", 0) != 0)
            Error(kl, fmt::format("{}webhook = \"{}\": needs an http:// or https:// URL", ctx, *s));
          a.url = *s;
        }
      } else if (key == "email") {
        email = true;
        a.kind = AlertTarget::Kind::kEmail;
        std::vector<std::string> to;
        if (!n.is_string() && !n.is_array())
          Error(kl,
                fmt::format("{}email = {}: needs an address or a list of them", ctx, NodeText(n)));
        if (n.is_string()) {
          to.push_back(n.as_string()->get());
        } else if (n.is_array()) {
          for (const auto& e : *n.as_array())
            to.push_back(e.is_string() ? e.as_string()->get() : std::string());
        }
        for (const auto& addr : to) {
          // One address per element: no display names, no commas, nothing that
          // sendmail would read as an option.
          if (addr.empty() || addr[0] == '-' || addr.find('@') == std::string::npos ||
              addr.find_first_of(" ,<>\"\r\n") != std::string::npos) {
            Error(kl, fmt::format("{}email = {}: each element needs one address like "
                                  "\"ops@example.com\"",
                                  ctx, addr.empty() ? NodeText(n) : "\"" + addr + "\""));
            to.clear();
            break;
          }
        }
        if (to.empty() && (n.is_array() && n.as_array()->empty()))
          Error(kl, fmt::format("{}email = []: needs at least one address", ctx));
        a.to = to;
      } else if (key == "from") {
        if (auto s = String(n, ctx, key, kl)) {
          if ((*s)[0] == '-' || s->find('@') == std::string::npos ||
              s->find_first_of(" ,<>\"\r\n") != std::string::npos)
            Error(kl, fmt::format("{}from = \"{}\": needs one address like "
                                  "\"cloudkeep@host.example.com\"",
                                  ctx, *s));
          a.from = *s;
        }
      } else if (key == "sendmail") {
        if (auto s = String(n, ctx, key, kl)) {
          if (::access(s->c_str(), X_OK) != 0)
            Error(kl, fmt::format("{}sendmail = \"{}\": not an executable file", ctx, *s));
          a.sendmail = *s;
        }
      } else if (key == "bearer_token_file") {
        if (auto s = String(n, ctx, key, kl)) {
          if (::access(s->c_str(), R_OK) != 0)
            Error(kl, fmt::format("{}bearer_token_file = \"{}\": cannot be read", ctx, *s));
          a.bearer_token_file = *s;
        }
      } else if (key == "on") {
        a.on.clear();
        bool bad = !n.is_array() || n.as_array()->empty();
        if (!bad)
          for (const auto& e : *n.as_array()) {
            std::string ev = e.is_string() ? e.as_string()->get() : "";
            if (ev != "failure" && ev != "recovery") bad = true;
            a.on.insert(ev);
          }
        if (bad)
          Error(kl, fmt::format("{}on = {}: needs a list of \"failure\" and \"recovery\"", ctx,
                                NodeText(n)));
      } else {
        Error(kl, fmt::format("{}unknown key '{}' (one of webhook, email, from, sendmail, "
                              "bearer_token_file, on)",
                              ctx, key));
      }
    }
    if (webhook == email) {
      Error(line, ctx + "needs exactly one of webhook = \"URL\" or email = [\"address\", …]");
      return;
    }
    if (webhook && !a.bearer_token_file.empty() && a.url.rfind("http://", 0) == 0)
      Error(line,
            ctx + "a bearer token over plain http:// would travel in the clear; use https://");
    c.alerts.push_back(std::move(a));
  }

  void Listen(AgentConfig& c, int line) {
    auto hp = ParseHostPort(c.listen, "listen", 7480, true);
    if (!hp.ok()) {
      Error(line, fmt::format("[agent] listen = \"{}\": {}", c.listen, hp.status().message()));
      return;
    }
    in6_addr a6{};
    in_addr a4{};
    bool loopback;
    if (::inet_pton(AF_INET, hp->host.c_str(), &a4) == 1) {
      loopback = (ntohl(a4.s_addr) >> 24) == 127;
    } else if (::inet_pton(AF_INET6, hp->host.c_str(), &a6) == 1) {
      loopback = IN6_IS_ADDR_LOOPBACK(&a6);
    } else {
      // A name would need the resolver at every start; an address says what is exposed.
      Error(line, fmt::format("[agent] listen = \"{}\": give a numeric address (127.0.0.1:7480, "
                              "[::1]:7480, 0.0.0.0:7480)",
                              c.listen));
      return;
    }
    if (!loopback && c.bearer_token_file.empty())
      Error(line, fmt::format("[agent] listen = \"{}\": an address other than loopback needs "
                              "bearer_token_file",
                              c.listen));
    if (!c.bearer_token_file.empty() && ::access(c.bearer_token_file.c_str(), R_OK) != 0)
      Error(line,
            fmt::format("[agent] bearer_token_file = \"{}\": cannot be read", c.bearer_token_file));
  }

  void Job(const toml::table& t, int line, const StepBuilder& build, AgentConfig& c) {
    JobConfig j;
    j.line = line;
    if (auto n = t.get("name"); n && n->is_string()) j.name = n->as_string()->get();
    std::string ctx = fmt::format("job '{}': ", j.name.empty() ? "?" : j.name);
    if (j.name.empty()) {
      Error(line, "job without a name (name = \"…\")");
    } else if (j.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-") != std::string::npos) {
      Error(line,
            fmt::format("{}name = \"{}\": use letters, digits, '.', '_' and '-'", ctx, j.name));
    } else if (!names_.insert(j.name).second) {
      Error(line, fmt::format("{}name = \"{}\": a second job of that name", ctx, j.name));
    }
    std::optional<Micros> every, jitter;
    std::optional<CronExpr> cron;
    for (const auto& [k, n] : t) {
      std::string key(k.str());
      int kl = static_cast<int>(k.source().begin.line);
      if (key == "name") {
        if (!n.is_string()) Error(kl, fmt::format("{}name = {}: needs a string", ctx, NodeText(n)));
      } else if (key == "kind") {
        if (auto s = String(n, ctx, key, kl)) {
          if (*s != "snapshot" && *s != "mesh" && *s != "mail-check" && *s != "exec")
            Error(kl,
                  fmt::format("{}kind = \"{}\": one of snapshot, mesh, mail-check, exec", ctx, *s));
          else
            j.kind = *s;
        }
      } else if (key == "schedule") {
        if (auto s = String(n, ctx, key, kl)) {
          auto e = CronExpr::Parse(*s);
          if (!e.ok())
            Error(kl, fmt::format("{}schedule = \"{}\": {}", ctx, *s, e.status().message()));
          else
            cron = *e;
        }
      } else if (key == "every") {
        every = Duration(n, ctx, key, kl, false);
        if (!every) every = Micros(-1);  // reported; do not also say "no schedule"
      } else if (key == "jitter") {
        jitter = Duration(n, ctx, key, kl, true);
      } else if (key == "timeout") {
        if (auto d = Duration(n, ctx, key, kl, false)) j.timeout = *d;
      } else if (key == "command") {
        if (!n.is_array() || n.as_array()->empty()) {
          Error(kl, fmt::format("{}command = {}: needs a list of strings, the program first "
                                "([\"/usr/bin/backup\", \"--all\"])",
                                ctx, NodeText(n)));
        } else {
          for (const auto& e : *n.as_array()) {
            if (!e.is_string()) {
              Error(kl, fmt::format("{}command: {} is not a string", ctx, NodeText(e)));
              break;
            }
            j.command.push_back(e.as_string()->get());
          }
        }
      } else if (key == "env") {
        if (!n.is_table()) {
          Error(kl, fmt::format("{}env = {}: needs a table ({{ NAME = \"value\" }})", ctx,
                                NodeText(n)));
        } else {
          for (const auto& [ek, ev] : *n.as_table()) {
            std::string name(ek.str());
            if (!ev.is_string() || name.empty() || name.find('=') != std::string::npos)
              Error(kl,
                    fmt::format("{}env.{} = {}: needs a string value", ctx, name, NodeText(ev)));
            else
              j.env.push_back(name + "=" + ev.as_string()->get());
          }
        }
      } else {
        CommandKey ck;
        ck.key = key;
        ck.line = kl;
        if (n.is_array()) {
          ck.is_list = true;
          for (const auto& e : *n.as_array()) {
            if (!e.is_string() && !e.is_integer()) {
              Error(kl, fmt::format("{}{}: {} in the list is not a string or number", ctx, key,
                                    NodeText(e)));
              continue;
            }
            ck.values.push_back(NodeText(e));
          }
        } else if (n.is_table()) {
          Error(kl,
                fmt::format("{}{} is a table: a command key takes a value or a list", ctx, key));
          continue;
        } else {
          ck.is_bool = n.is_boolean();
          ck.values.push_back(NodeText(n));
        }
        j.keys.push_back(std::move(ck));
      }
    }
    if (j.kind.empty() && !t.get("kind"))
      Error(line, fmt::format("{}no kind (kind = \"snapshot\", \"mesh\", \"mail-check\" or "
                              "\"exec\")",
                              ctx));
    if (cron && every)
      Error(line, fmt::format("{}give schedule or every, not both", ctx));
    else if (!cron && !every && !t.get("schedule"))
      Error(line, fmt::format("{}no schedule (schedule = \"5 * * * *\" or every = \"15m\")", ctx));
    if (cron) j.schedule = Schedule::Cron(*cron);
    if (every && every->count() > 0) j.schedule = Schedule::Every(*every);
    if (j.schedule && jitter) j.schedule->WithJitter(*jitter);
    if (j.kind == "exec") {
      if (j.command.empty() && !t.get("command"))
        Error(line, fmt::format("{}an exec job needs command = [\"program\", \"arg\", …]", ctx));
      for (const auto& ck : j.keys)
        Error(ck.line, fmt::format("{}unknown key '{}' for an exec job (name, kind, schedule, "
                                   "every, jitter, timeout, command, env)",
                                   ctx, ck.key));
    } else if (!j.kind.empty()) {
      if (!j.command.empty() || !j.env.empty())
        Error(line, fmt::format("{}command and env belong to exec jobs, not {}", ctx, j.kind));
      std::vector<std::pair<int, std::string>> errs;
      build(j, &errs);
      for (const auto& [l, e] : errs) Error(l ? l : line, ctx + e);
    }
    c.jobs.push_back(std::move(j));
  }

  std::vector<std::string> errors;
  int listen_line = 1;

 private:
  std::string path_;
  std::set<std::string> names_;
};

}  // namespace

const JobConfig* AgentConfig::Find(const std::string& name) const {
  for (const auto& j : jobs)
    if (j.name == name) return &j;
  return nullptr;
}

ConfigLoad LoadConfig(const std::string& path, const StepBuilder& build) {
  ConfigLoad out;
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0)
      out.errors.push_back(fmt::format("{}: cannot read: {}", path, e.description()));
    else
      out.errors.push_back(fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
    return out;
  }
  Loader l(path);
  AgentConfig c;
  c.path = path;
  int agent_line = 1;
  for (const auto& [k, n] : root) {
    std::string key(k.str());
    int line = static_cast<int>(k.source().begin.line);
    if (key == "agent") {
      agent_line = line;
      if (!n.is_table())
        l.Error(line, "[agent] must be a table");
      else
        l.Agent(*n.as_table(), c);
    } else if (key == "job") {
      if (!n.is_array_of_tables()) {
        l.Error(line, "job must be [[job]] tables");
        continue;
      }
      for (const auto& e : *n.as_array())
        l.Job(*e.as_table(), static_cast<int>(e.source().begin.line), build, c);
    } else if (key == "alert") {
      if (!n.is_array_of_tables()) {
        l.Error(line, "alert must be [[alert]] tables");
        continue;
      }
      for (const auto& e : *n.as_array())
        l.Alert(*e.as_table(), static_cast<int>(e.source().begin.line), c);
    } else {
      l.Error(line,
              fmt::format("unknown key '{}' (the file has [agent], [[job]] and [[alert]] tables)",
                          key));
    }
  }
  l.Listen(c, l.listen_line > 1 ? l.listen_line : agent_line);
  out.errors = std::move(l.errors);
  if (out.errors.empty()) out.config = std::move(c);
  return out;
}

}  // namespace cloudkeep::agent
