#include "agent/metrics.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

namespace cloudkeep::agent {

namespace {

std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

double Seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

void Family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// The series of the last mesh and mail-check reports, read from the JSON
// those commands print (latency mesh --json, mail check --json).
void RenderReports(std::string& o, const MetricsInput& in) {
  using Json = nlohmann::json;
  std::map<std::string, std::string> kinds;
  for (const auto& j : in.jobs) kinds[j.name] = j.kind;
  std::string rtt, loss, mesh_at, findings, mail_at;
  for (const auto& r : in.reports) {
    Json d = Json::parse(r.doc, nullptr, false);
    if (!d.is_object()) continue;
    std::string job = Label(r.job);
    if (kinds[r.job] == "mesh" && d.contains("pairs") && d["pairs"].is_array()) {
      mesh_at += fmt::format("cloudkeep_mesh_report_timestamp_seconds{{agent_job=\"{}\"}} {:.3f}\n",
                             job, Seconds(r.at));
      for (const auto& p : d["pairs"]) {
        if (!p.is_object() || !p.contains("from") || !p.contains("to")) continue;
        std::string labels = fmt::format("agent_job=\"{}\",from=\"{}\",to=\"{}\"", job,
                                         Label(p.value("from", "")), Label(p.value("to", "")));
        for (auto [key, q] : {std::pair{"p50_us", "0.5"}, {"p90_us", "0.9"}, {"p99_us", "0.99"}})
          if (p.contains(key) && p[key].is_number())
            rtt += fmt::format("cloudkeep_mesh_rtt_seconds{{{},quantile=\"{}\"}} {:.9f}\n", labels,
                               q, p[key].get<double>() / 1e6);
        // A summary: the quantiles, and the sum and count of the probes that came back.
        int64_t received = p.value("received", int64_t{0});
        rtt += fmt::format("cloudkeep_mesh_rtt_seconds_sum{{{}}} {:.9f}\n", labels,
                           p.value("avg_us", 0.0) * static_cast<double>(received) / 1e6);
        rtt += fmt::format("cloudkeep_mesh_rtt_seconds_count{{{}}} {}\n", labels, received);
        if (p.contains("loss_ratio") && p["loss_ratio"].is_number())
          loss += fmt::format("cloudkeep_mesh_loss_ratio{{{}}} {:.6f}\n", labels,
                              p["loss_ratio"].get<double>());
      }
    } else if (kinds[r.job] == "mail-check" && d.contains("findings") && d["findings"].is_array()) {
      std::string domain = Label(d.value("domain", ""));
      mail_at += fmt::format(
          "cloudkeep_mail_report_timestamp_seconds{{agent_job=\"{}\",domain=\"{}\"}} {:.3f}\n", job,
          domain, Seconds(r.at));
      std::map<std::pair<std::string, std::string>, int> counts;
      for (const auto& f : d["findings"])
        if (f.is_object()) counts[{f.value("group", ""), f.value("level", "")}]++;
      for (const auto& [k, n] : counts)
        findings += fmt::format(
            "cloudkeep_mail_findings{{agent_job=\"{}\",domain=\"{}\",group=\"{}\",level=\"{}\"}} "
            "{}\n",
            job, domain, Label(k.first), Label(k.second), n);
    }
  }
  Family(o, "cloudkeep_mesh_report_timestamp_seconds", "gauge",
         "When the mesh job's last report was made, in Unix seconds.");
  o += mesh_at;
  Family(o, "cloudkeep_mesh_rtt_seconds", "summary",
         "Round-trip times of each measured pair in the last mesh report.");
  o += rtt;
  Family(o, "cloudkeep_mesh_loss_ratio", "gauge",
         "Share of probes lost for each pair in the last mesh report (0 to 1).");
  o += loss;
  Family(o, "cloudkeep_mail_report_timestamp_seconds", "gauge",
         "When the mail-check job's last report was made, in Unix seconds.");
  o += mail_at;
  Family(o, "cloudkeep_mail_findings", "gauge",
         "Findings of the last mail check by group (rule) and level (PASS, WARN, FAIL, UNKNOWN, "
         "SKIP).");
  o += findings;
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  std::string o;
  Family(o, "cloudkeep_agent_build_info", "gauge", "The agent's version; always 1.");
  o += fmt::format("cloudkeep_agent_build_info{{version=\"{}\"}} 1\n", Label(in.version));
  Family(o, "cloudkeep_agent_start_time_seconds", "gauge",
         "When the agent started, in Unix seconds.");
  o += fmt::format("cloudkeep_agent_start_time_seconds {:.3f}\n", Seconds(in.start_time));

  // Every job has every outcome's series from the start, at 0, so that
  // increase() and alerts on failures see the first one.
  static const char* kOutcomes[] = {"success", "failure", "timeout", "skipped", "interrupted"};
  // The job's label is agent_job, not job: Prometheus gives every series
  // the scrape job's name as `job`, and renames an exporter's own `job` to
  // `exported_job` (found by tests/integration/wip/test_agent.sh, which
  // reads the values back through Prometheus).
  Family(o, "cloudkeep_agent_job_runs_total", "counter",
         "Finished runs of a job by outcome (success, failure, timeout, skipped, interrupted).");
  for (const auto& j : in.jobs) {
    auto it = in.counters.find(j.name);
    for (const char* outcome : kOutcomes) {
      int64_t n = 0;
      if (it != in.counters.end())
        if (auto c = it->second.find(outcome); c != it->second.end()) n = c->second;
      o += fmt::format(
          "cloudkeep_agent_job_runs_total{{agent_job=\"{}\",kind=\"{}\",outcome=\"{}\"}} {}\n",
          Label(j.name), Label(j.kind), outcome, n);
    }
  }
  Family(o, "cloudkeep_agent_job_running", "gauge", "1 while a run of the job is in progress.");
  for (const auto& j : in.jobs)
    o += fmt::format("cloudkeep_agent_job_running{{agent_job=\"{}\"}} {}\n", Label(j.name),
                     j.running ? 1 : 0);
  Family(o, "cloudkeep_agent_job_last_run_timestamp_seconds", "gauge",
         "Start of the job's last run, in Unix seconds.");
  for (const auto& j : in.jobs)
    if (j.last_run)
      o +=
          fmt::format("cloudkeep_agent_job_last_run_timestamp_seconds{{agent_job=\"{}\"}} {:.3f}\n",
                      Label(j.name), Seconds(j.last_run->started));
  Family(o, "cloudkeep_agent_job_last_run_duration_seconds", "gauge",
         "Duration of the job's last finished run.");
  for (const auto& j : in.jobs)
    if (j.last_run && j.last_run->ended)
      o += fmt::format(
          "cloudkeep_agent_job_last_run_duration_seconds{{agent_job=\"{}\"}} {:.6f}\n",
          Label(j.name),
          std::chrono::duration<double>(*j.last_run->ended - j.last_run->started).count());
  Family(o, "cloudkeep_agent_job_last_run_success", "gauge",
         "1 when the job's last finished run succeeded, 0 otherwise.");
  for (const auto& j : in.jobs)
    if (j.last_run && j.last_run->outcome != "running")
      o += fmt::format("cloudkeep_agent_job_last_run_success{{agent_job=\"{}\"}} {}\n",
                       Label(j.name), j.last_run->outcome == "success" ? 1 : 0);
  Family(o, "cloudkeep_agent_job_last_success_timestamp_seconds", "gauge",
         "End of the job's last successful run, in Unix seconds.");
  for (const auto& j : in.jobs)
    if (j.last_success)
      o += fmt::format(
          "cloudkeep_agent_job_last_success_timestamp_seconds{{agent_job=\"{}\"}} {:.3f}\n",
          Label(j.name), Seconds(*j.last_success));
  Family(o, "cloudkeep_agent_job_next_run_timestamp_seconds", "gauge",
         "When the job runs next, in Unix seconds.");
  for (const auto& j : in.jobs)
    if (j.next_run && *j.next_run != TimePoint::max())
      o +=
          fmt::format("cloudkeep_agent_job_next_run_timestamp_seconds{{agent_job=\"{}\"}} {:.3f}\n",
                      Label(j.name), Seconds(*j.next_run));

  Family(o, "cloudkeep_snapshot_last_success_timestamp_seconds", "gauge",
         "When the volume's last successful snapshot by the agent finished, in Unix seconds.");
  for (const auto& v : in.volumes)
    if (v.last_success)
      o +=
          fmt::format("cloudkeep_snapshot_last_success_timestamp_seconds{{volume=\"{}\"}} {:.3f}\n",
                      Label(v.volume), Seconds(*v.last_success));
  Family(o, "cloudkeep_snapshot_last_duration_seconds", "gauge",
         "How long the volume's last successful snapshot took.");
  for (const auto& v : in.volumes)
    if (v.last_success)
      o += fmt::format("cloudkeep_snapshot_last_duration_seconds{{volume=\"{}\"}} {:.6f}\n",
                       Label(v.volume), v.last_duration_seconds);
  Family(o, "cloudkeep_snapshots", "gauge",
         "Snapshots of the volume kept after the agent's last prune.");
  for (const auto& v : in.volumes)
    if (v.snapshot_count)
      o += fmt::format("cloudkeep_snapshots{{volume=\"{}\"}} {}\n", Label(v.volume),
                       *v.snapshot_count);
  RenderReports(o, in);
  return o;
}

}  // namespace cloudkeep::agent
