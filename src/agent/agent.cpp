#include "agent/agent.h"

#include <fcntl.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/dashboard.h"
#include "agent/metrics.h"
#include "agent/scheduler.h"
#include "core/log.h"
#include "core/net.h"
#include "core/subprocess.h"

namespace cloudkeep::agent {

namespace {

using Json = nlohmann::json;

std::string When(TimePoint t) {
  return FormatRfc3339(t);
}

struct Outcome {
  std::string outcome = "success";
  std::string summary;
  std::string error;
};

// The last non-empty line of a child's stderr: the one-line error cloudkeep prints.
std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n \t");
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  std::string line = text.substr(start == std::string::npos ? 0 : start + 1,
                                 end + 1 - (start == std::string::npos ? 0 : start + 1));
  if (line.size() > 500) line = line.substr(0, 500) + "…";
  return line;
}

std::string Failed(const SubprocessResult& r) {
  std::string why = r.Describe();
  std::string last = LastLine(r.errors.empty() ? r.output : r.errors);
  return last.empty() ? why : why + ": " + last;
}

bool IsStep(const std::vector<std::string>& step, const char* group, const char* command) {
  for (size_t i = 0; i + 1 < step.size(); ++i)
    if (step[i] == group && step[i + 1] == command) return true;
  return false;
}

// What a snapshot job's steps printed (--json), into the volume records.
void RecordSnapshotResults(const std::vector<std::string>& step, const SubprocessResult& r,
                           History& history, TimePoint now, std::string* summary) {
  Json doc = Json::parse(r.output, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return;
  double seconds = std::chrono::duration<double>(r.elapsed).count();
  if (IsStep(step, "snapshot", "create") && doc.contains("snapshots")) {
    for (const auto& s : doc["snapshots"]) {
      if (!s.is_object() || !s.contains("volume_id") || !s["volume_id"].is_string()) continue;
      std::string vol = s["volume_id"].get<std::string>();
      (void)history.RecordSnapshot(vol, now, seconds);
      std::string id = s.value("id", std::string("?"));
      *summary += (summary->empty() ? "" : "; ") + id + " of " + vol;
    }
  } else if (IsStep(step, "snapshot", "prune") && doc.contains("volumes")) {
    for (const auto& v : doc["volumes"]) {
      if (!v.is_object() || !v.contains("volume_id") || !v.contains("snapshots")) continue;
      int64_t kept = 0;
      for (const auto& s : v["snapshots"])
        if (s.is_object() && s.value("action", std::string()) == "keep") ++kept;
      (void)history.RecordSnapshotCount(v["volume_id"].get<std::string>(), kept);
    }
    *summary += fmt::format("{}prune: {} kept, {} removed", summary->empty() ? "" : "; ",
                            doc.value("kept", 0), doc.value("removed", 0));
  }
}

Outcome RunJob(const JobConfig& job, TimePoint slot, const std::string& self_exe,
               const std::atomic<bool>* cancel, History& history, const Clock& clock) {
  Outcome out;
  using steady = std::chrono::steady_clock;
  auto deadline = steady::now() + job.timeout;
  std::vector<std::vector<std::string>> argvs;
  if (job.kind == "exec") {
    argvs.push_back(job.command);
  } else {
    for (const auto& s : job.steps) {
      std::vector<std::string> argv{self_exe};
      argv.insert(argv.end(), s.begin(), s.end());
      argvs.push_back(std::move(argv));
    }
  }
  for (size_t i = 0; i < argvs.size(); ++i) {
    SubprocessOptions opts;
    opts.split_stderr = true;
    opts.extra_env = job.env;
    // What a script needs to be idempotent per slot, or to say which run it was.
    opts.extra_env.push_back("CLOUDKEEP_AGENT_JOB=" + job.name);
    opts.extra_env.push_back("CLOUDKEEP_AGENT_SLOT=" + FormatRfc3339(slot));
    opts.cancel = cancel;
    opts.timeout =
        std::max(std::chrono::microseconds(1),
                 std::chrono::duration_cast<std::chrono::microseconds>(deadline - steady::now()));
    auto r = RunProcess(argvs[i], opts);
    if (!r.ok()) {
      out.outcome = "failure";
      out.error = r.status().message();
      return out;
    }
    if (job.kind == "snapshot")
      RecordSnapshotResults(job.steps[i], *r, history, clock.Now(), &out.summary);
    // A mesh or a mail check prints its report (--json) whatever its exit
    // status says: the dashboard shows the last one, findings and all.
    if ((job.kind == "mesh" || job.kind == "mail-check") && !r->timed_out && !r->cancelled) {
      Json doc = Json::parse(r->output, nullptr, false);
      if (doc.is_object())
        if (Status s = history.SaveReport(job.name, clock.Now(), doc.dump()); !s.ok())
          log::Error("job {}: cannot keep its report: {}", job.name, s.message());
    }
    if (r->cancelled) {
      out.outcome = "interrupted";
      out.error = "killed: the agent was stopping and its shutdown_timeout ran out";
      return out;
    }
    if (r->timed_out) {
      out.outcome = "timeout";
      out.error = fmt::format("killed at its timeout of {}", FormatDuration(job.timeout));
      return out;
    }
    if (!r->success()) {
      out.outcome = "failure";
      out.error = argvs.size() > 1
                      ? fmt::format("step {} of {}: {}", i + 1, argvs.size(), Failed(*r))
                      : Failed(*r);
      return out;
    }
    if (job.kind != "snapshot") out.summary = r->Describe();
  }
  return out;
}

std::map<std::string, std::optional<TimePoint>> LastSlots(History& h, const AgentConfig& c) {
  std::map<std::string, std::optional<TimePoint>> out;
  for (const auto& j : c.jobs) {
    auto r = h.LastSlot(j.name);
    if (r.ok())
      out[j.name] = *r;
    else
      log::Error("job {}: cannot read its last slot: {}", j.name, r.status().message());
  }
  return out;
}

}  // namespace

Status ApplyTimezone(const std::string& zone) {
  if (zone.empty()) return Status::Ok();
  if (zone != "UTC" && ::access(("/usr/share/zoneinfo/" + zone).c_str(), R_OK) != 0)
    return Status::Usage(fmt::format("timezone '{}': no such zone in /usr/share/zoneinfo", zone));
  ::setenv("TZ", zone.c_str(), 1);
  ::tzset();
  return Status::Ok();
}

Result<std::unique_ptr<History>> OpenHistory(const AgentConfig& config, bool create) {
  std::string path = config.state_dir + "/history.db";
  if (create) {
    if (::mkdir(config.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::FromErrno("cannot create the state directory " + config.state_dir, errno);
  } else if (::access(path.c_str(), R_OK) != 0) {
    return Status::Failure(fmt::format(
        "no history at {} (has 'cloudkeep agent run' started with this config?)", path));
  }
  return History::Open(path, !create);
}

Status RunAgent(AgentConfig config, const AgentOptions& options, const Clock& clock) {
  // The signals are taken by sigtimedwait in this thread only: blocked
  // before any thread starts, so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // A scraper that disconnects mid-response must not kill the agent.
  ::signal(SIGPIPE, SIG_IGN);

  CK_ASSIGN_OR_RETURN(auto history, OpenHistory(config, true));
  CK_ASSIGN_OR_RETURN(int interrupted,
                      history->MarkInterrupted(clock.Now(), "the agent stopped while this ran"));
  if (interrupted)
    log::Warn(
        "{} run(s) were cut short when the agent last stopped; recorded as interrupted, "
        "their slots are not run again",
        interrupted);
  if (Status s = history->Prune(clock.Now(), config.history_max_age, config.history_max_runs);
      !s.ok())
    log::Warn("{}", s.message());

  Scheduler sched;
  sched.Configure(config, LastSlots(*history, config), clock.Now());

  // Each job's last outcome that counts for alerts (not skipped, not cut
  // short by a stop), so that an alert marks a change of state across restarts.
  std::mutex outcome_mu;
  std::map<std::string, std::optional<std::string>> last_outcome;
  auto load_outcomes = [&] {
    std::lock_guard<std::mutex> l(outcome_mu);
    for (const auto& j : config.jobs) {
      if (last_outcome.count(j.name)) continue;
      auto& slot = last_outcome[j.name];
      auto runs = history->Runs(j.name, 50);
      if (!runs.ok()) continue;
      for (const auto& r : *runs)
        if (r.outcome != "running" && r.outcome != "skipped" && r.outcome != "interrupted") {
          slot = r.outcome;
          break;
        }
    }
  };
  load_outcomes();
  char hostname[256] = "localhost";
  (void)gethostname(hostname, sizeof hostname - 1);
  Alerter alerter(config.alerts, options.send_alert ? options.send_alert : AlertSender(SendAlert));

  // What /metrics shows of the scheduler, copied out under view_mu each tick.
  std::mutex view_mu;
  std::vector<JobMetrics> view;
  std::map<std::string, std::vector<std::string>> view_volumes;  // job → its volumes
  auto refresh_view = [&] {
    std::lock_guard<std::mutex> l(view_mu);
    view.clear();
    view_volumes.clear();
    for (const auto& j : config.jobs) view_volumes[j.name] = j.locks;
    for (const auto& j : config.jobs) {
      JobMetrics m;
      m.name = j.name;
      m.kind = j.kind;
      m.running = sched.Running(j.name);
      m.next_run = sched.NextDue(j.name);
      view.push_back(std::move(m));
    }
  };
  refresh_view();

  TimePoint started = clock.Now();
  std::string token =
      config.bearer_token_file.empty() ? "" : ReadTokenFile(config.bearer_token_file);
  if (!config.bearer_token_file.empty() && token.empty())
    return Status::Usage(fmt::format("bearer_token_file {} is empty", config.bearer_token_file));
  httplib::Server srv;
  // Every page needs the token when one is configured (a non-loopback listen).
  auto authorized = [&](const httplib::Request& req, httplib::Response& res) {
    if (token.empty()) return true;
    std::string want = "Bearer " + token;
    std::string got = req.get_header_value("Authorization");
    if (got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0)
      return true;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content("unauthorized\n", "text/plain");
    return false;
  };
  auto metrics_input = [&] {
    MetricsInput in;
    in.version = options.version;
    in.start_time = started;
    {
      std::lock_guard<std::mutex> l(view_mu);
      in.jobs = view;
    }
    for (auto& j : in.jobs) {
      if (auto r = history->LastRun(j.name); r.ok()) j.last_run = *r;
      if (auto r = history->LastSuccess(j.name); r.ok()) j.last_success = *r;
    }
    if (auto c = history->Counters(); c.ok()) in.counters = *c;
    if (auto v = history->Volumes(); v.ok()) in.volumes = *v;
    if (auto r = history->Reports(); r.ok()) in.reports = *r;
    return in;
  };
  srv.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(RenderMetrics(metrics_input()), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/", [&](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    // The page loads nothing from elsewhere, and says so to the browser.
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; img-src data:");
    res.set_content(DashboardHtml(), "text/html; charset=utf-8");
  });
  srv.Get("/api/state", [&](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    DashboardInput d;
    d.metrics = metrics_input();
    d.host = hostname;
    d.now = clock.Now();
    {
      std::lock_guard<std::mutex> l(view_mu);
      for (const auto& j : d.metrics.jobs) d.job_volumes.push_back(view_volumes[j.name]);
    }
    if (auto r = history->Runs("", 300); r.ok()) d.runs = *r;
    d.reports = d.metrics.reports;
    res.set_header("Cache-Control", "no-store");
    res.set_content(DashboardStateJson(d), "application/json");
  });
  CK_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(config.listen, "listen", 7480, true));
  int port = hp.port;
  if (port == 0) {
    port = srv.bind_to_any_port(hp.host);
    if (port < 0) return Status::Failure(fmt::format("cannot listen on {}", config.listen));
  } else if (!srv.bind_to_port(hp.host, port)) {
    return Status::Failure(
        fmt::format("cannot listen on {}: {}", config.listen, std::strerror(errno)));
  }
  std::string shown = hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host;
  log::Info("agent: listening on http://{}:{}/metrics; {} job(s) from {}", shown, port,
            config.jobs.size(), config.path);
  std::thread http([&] { srv.listen_after_bind(); });

  // systemd (Type=notify): READY once the port is bound, and with
  // WatchdogSec= a WATCHDOG=1 from this loop at half the interval, so a loop
  // that stops turning gets the agent restarted. Without NOTIFY_SOCKET these
  // calls do nothing.
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) <= 0) watchdog_usec = 0;
  auto watchdog_every = std::chrono::microseconds(watchdog_usec / 2);
  auto last_ping = std::chrono::steady_clock::now();
  sd_notifyf(0, "READY=1\nSTATUS=%zu job(s), listening on %s:%d", config.jobs.size(), shown.c_str(),
             port);
  if (watchdog_usec)
    log::Info("agent: systemd watchdog every {}", FormatDuration(Micros(watchdog_usec)));

  std::atomic<bool> cancel{false};
  std::mutex done_mu;
  std::vector<std::string> done;
  std::map<std::string, std::thread> workers;

  auto start_job = [&](const JobConfig& job, TimePoint slot, TimePoint now) {
    auto id = history->Begin(job.name, slot, now);
    if (!id.ok()) {
      log::Error("job {}: not started for slot {}: {}", job.name, When(slot),
                 id.status().message());
      sched.Finished(job.name);
      return;
    }
    log::Info("job {}: started ({}, slot {})", job.name, job.kind, When(slot));
    int64_t run_id = *id;
    workers[job.name] = std::thread([&, job, run_id, now, slot] {
      Outcome o = RunJob(job, slot, options.self_exe, &cancel, *history, clock);
      TimePoint end = clock.Now();
      if (Status s = history->Finish(run_id, end, o.outcome, o.summary, o.error); !s.ok())
        log::Error("job {}: {}", job.name, s.message());
      std::string took = FormatDuration(std::chrono::duration_cast<Micros>(end - now));
      if (o.outcome == "success")
        log::Info("job {}: success in {}{}", job.name, took,
                  o.summary.empty() ? "" : ": " + o.summary);
      else
        log::Warn("job {}: {} after {}: {}", job.name, o.outcome, took, o.error);
      if (o.outcome != "interrupted") {
        std::optional<std::string> event;
        {
          std::lock_guard<std::mutex> l(outcome_mu);
          event = AlertEventFor(last_outcome[job.name], o.outcome);
          last_outcome[job.name] = o.outcome;
        }
        if (event) {
          Alert a;
          a.event = *event;
          a.job = job.name;
          a.kind = job.kind;
          a.outcome = o.outcome;
          a.error = o.error;
          a.summary = o.summary;
          a.at = end;
          a.host = hostname;
          alerter.Post(a);
        }
      }
      std::lock_guard<std::mutex> l(done_mu);
      done.push_back(job.name);
    });
  };

  bool stopping = false;
  std::chrono::steady_clock::time_point stop_deadline;
  for (;;) {
    {
      std::vector<std::string> finished;
      {
        std::lock_guard<std::mutex> l(done_mu);
        finished.swap(done);
      }
      for (const auto& name : finished) {
        auto it = workers.find(name);
        if (it != workers.end()) {
          it->second.join();
          workers.erase(it);
        }
        sched.Finished(name);
      }
    }
    TimePoint now = clock.Now();
    if (!stopping) {
      for (const auto& d : sched.Tick(now)) {
        const JobConfig* job = config.Find(d.job);
        if (d.missed > 0)
          log::Warn(
              "job {}: {}{} slot(s) before {} were missed (the clock jumped or the agent was "
              "down); running once for the latest",
              d.job, d.missed, d.missed >= 100000 ? "+" : "", When(d.slot));
        switch (d.kind) {
          case Decision::Kind::kStart:
            if (job) start_job(*job, d.slot, now);
            break;
          case Decision::Kind::kSkip: {
            std::string why = "the previous run was still going";
            log::Warn("job {}: skipped slot {}: {}", d.job, When(d.slot), why);
            if (Status s = history->Skip(d.job, d.slot, now, why); !s.ok())
              log::Error("job {}: {}", d.job, s.message());
            break;
          }
          case Decision::Kind::kWait:
            log::Info("job {}: slot {} waits: job {} is snapshotting the same volume", d.job,
                      When(d.slot), d.other);
            break;
          case Decision::Kind::kClockBack:
            log::Warn(
                "agent: the clock went back by {}; no slot runs twice, the next ones wait "
                "for their time",
                FormatDuration(d.back));
            break;
        }
      }
    } else {
      if (workers.empty()) break;
      if (!cancel && std::chrono::steady_clock::now() >= stop_deadline) {
        log::Warn("agent: shutdown_timeout passed; killing {} running job(s)", workers.size());
        cancel = true;
      }
    }
    refresh_view();
    if (watchdog_usec && std::chrono::steady_clock::now() - last_ping >= watchdog_every) {
      sd_notify(0, "WATCHDOG=1");
      last_ping = std::chrono::steady_clock::now();
    }

    auto wait = std::chrono::milliseconds(stopping ? 100 : 500);
    if (!stopping) {
      auto until = sched.EarliestDue() - clock.Now();
      if (until < wait)
        wait = std::max(std::chrono::milliseconds(5),
                        std::chrono::duration_cast<std::chrono::milliseconds>(until));
    }
    if (watchdog_usec) {
      auto to_ping = std::chrono::duration_cast<std::chrono::milliseconds>(
          watchdog_every - (std::chrono::steady_clock::now() - last_ping));
      wait = std::max(std::chrono::milliseconds(1), std::min(wait, to_ping));
    }
    struct timespec ts {};
    ts.tv_sec = wait.count() / 1000;
    ts.tv_nsec = (wait.count() % 1000) * 1000000;
    int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping) {
        stopping = true;
        stop_deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            config.shutdown_timeout);
        sd_notify(0, "STOPPING=1");
        log::Info("agent: stopping ({}); {} running job(s), waiting up to {}",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT", workers.size(),
                  FormatDuration(config.shutdown_timeout));
      } else if (!cancel) {
        log::Warn("agent: second stop signal: killing {} running job(s)", workers.size());
        cancel = true;
      }
    } else if (sig == SIGHUP && !stopping && options.reload) {
      sd_notify(0, "RELOADING=1");
      ConfigLoad l = options.reload();
      // Whatever the outcome, the agent is running (the old config or the new).
      struct Ready {
        ~Ready() { sd_notify(0, "READY=1"); }
      } ready;
      if (!l.config) {
        for (const auto& e : l.errors) log::Error("reload refused: {}", e);
        log::Error("agent: the new config was refused; the running one is kept");
        continue;
      }
      AgentConfig& n = *l.config;
      if (n.listen != config.listen || n.state_dir != config.state_dir ||
          n.timezone != config.timezone || n.bearer_token_file != config.bearer_token_file) {
        log::Error(
            "agent: reload refused: listen, state_dir, timezone and bearer_token_file "
            "change only with a restart; the running config is kept");
        continue;
      }
      config = std::move(n);
      sched.Configure(config, LastSlots(*history, config), clock.Now());
      alerter.SetTargets(config.alerts);
      load_outcomes();
      refresh_view();
      log::Info("agent: config reloaded from {}: {} job(s)", config.path, config.jobs.size());
    }
  }
  srv.stop();
  http.join();
  // Alerts still queued get a short while: a retry due later is dropped, logged.
  alerter.Drain(std::min<Micros>(config.shutdown_timeout, std::chrono::seconds(10)));
  log::Info("agent: stopped");
  return Status::Ok();
}

}  // namespace cloudkeep::agent
