#include "latency/mesh.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "core/log.h"
#include "latency/control.h"
#include "latency/net.h"

namespace cloudkeep::latency {

namespace {

Micros RunBudget(const ProbeOptions& p) {
  // The agent's schedule: hello, then warmup + count probes, each at most max(interval, timeout).
  auto per = std::max(p.interval, p.timeout);
  return per * (p.warmup + p.count) + p.timeout * 2 + std::chrono::seconds(10);
}

Json ProbeRequest(const MeshOptions& o, const std::vector<std::string>& targets) {
  return {{"op", "run"},
          {"targets", targets},
          {"proto", ProtoName(o.probe.proto)},
          {"count", o.probe.count},
          {"warmup", o.probe.warmup},
          {"size", o.probe.size},
          {"interval_us", o.probe.interval.count()},
          {"timeout_us", o.probe.timeout.count()},
          {"clock", o.probe.kernel_timestamps ? "kernel" : "user"}};
}

}  // namespace

void ComputeZoneTables(MeshResult* m) {
  struct Acc {
    std::vector<double> samples;
    uint64_t sent = 0;
    size_t pairs = 0;
  };
  std::map<std::pair<std::string, std::string>, Acc> single, cross;
  for (const auto& p : m->pairs) {
    std::string a = m->peers[p.from].zone, b = m->peers[p.to].zone;
    Acc& acc = a == b ? single[{a, a}] : cross[{std::min(a, b), std::max(a, b)}];
    acc.samples.insert(acc.samples.end(), p.samples_us.begin(), p.samples_us.end());
    acc.sent += p.sent;
    acc.pairs++;
  }
  m->single_zone.clear();
  m->cross_zone.clear();
  for (auto* src : {&single, &cross})
    for (auto& [k, acc] : *src) {
      ZoneGroup g{k.first, k.second, acc.pairs, Summarize(std::move(acc.samples), acc.sent)};
      (src == &single ? m->single_zone : m->cross_zone).push_back(std::move(g));
    }
}

Result<MeshResult> RunMesh(const PeersFile& file, const MeshOptions& o) {
  CK_RETURN_IF_ERROR(ValidateProbeOptions(o.probe));
  if (o.token.empty())
    return Status::Usage(
        "the mesh needs a token: --token-file FILE, CLOUDKEEP_MESH_TOKEN, or token in the peers "
        "file");
  if (file.peers.size() < 2) return Status::Usage("the mesh needs at least two peers");
  MeshResult m;
  m.peers = file.peers;
  // Zones together, so tables, matrix and heatmap read by zone.
  std::stable_sort(m.peers.begin(), m.peers.end(), [](const Peer& a, const Peer& b) {
    return a.zone != b.zone ? a.zone < b.zone : a.name < b.name;
  });
  size_t n = m.peers.size();
  m.agent_errors.assign(n, "");
  std::vector<Result<Json>> answers(n, Status::Failure("not asked"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      std::vector<std::string> targets;
      for (size_t j = 0; j < n; j++)
        if (j != i) targets.push_back(m.peers[j].address);
      auto addr = Resolve(m.peers[i].hostport);
      if (!addr.ok()) {
        answers[i] = addr.status();
        return;
      }
      answers[i] = ControlCall(*addr, ProbeRequest(o, targets), o.token, RunBudget(o.probe));
    });
  }
  for (auto& t : threads) t.join();
  size_t answered = 0;
  for (size_t i = 0; i < n; i++) {
    std::map<std::string, TargetResult> by_target;
    if (answers[i].ok()) {
      answered++;
      const Json& j = *answers[i];
      if (j.contains("results") && j["results"].is_array())
        for (const auto& r : j["results"]) {
          TargetResult t = TargetResultFromJson(r);
          by_target[t.target] = std::move(t);
        }
    } else {
      m.agent_errors[i] = answers[i].status().message();
      log::Warn("{}: {}", m.peers[i].name, m.agent_errors[i]);
    }
    for (size_t j = 0; j < n; j++) {
      if (j == i) continue;
      PairResult p;
      p.from = i;
      p.to = j;
      p.sent = static_cast<uint64_t>(o.probe.count);
      auto it = by_target.find(m.peers[j].address);
      if (it != by_target.end()) {
        p.samples_us = it->second.samples_us;
        p.sent = std::max<uint64_t>(it->second.rtt.sent, p.samples_us.size());
        p.error = it->second.error;
      } else {
        p.error = answers[i].ok() ? "agent did not report this target"
                                  : "agent " + m.peers[i].name + " unavailable";
      }
      p.rtt = Summarize(p.samples_us, p.sent);
      m.pairs.push_back(std::move(p));
    }
  }
  if (answered == 0)
    return Status::Failure("no agent answered; first error: " + m.peers[0].name + ": " +
                           m.agent_errors[0]);
  ComputeZoneTables(&m);
  if (o.throughput) {
    // One pair at a time: concurrent streams would share links and measure each other.
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++) {
        if (i == j) continue;
        ThroughputPair tp{i, j, 0, ""};
        if (!m.agent_errors[i].empty()) {
          tp.error = "agent unavailable";
        } else {
          Json req = {{"op", "throughput_run"},
                      {"target", m.peers[j].address},
                      {"streams", o.throughput_opts.streams},
                      {"duration_us", o.throughput_opts.duration.count()}};
          auto addr = Resolve(m.peers[i].hostport);
          Result<Json> r = addr.ok()
                               ? ControlCall(*addr, req, o.token,
                                             o.throughput_opts.duration + o.probe.timeout * 2 +
                                                 std::chrono::seconds(10))
                               : Result<Json>(addr.status());
          if (r.ok())
            tp.bits_per_second = r->value("bits_per_second", 0.0);
          else
            tp.error = r.status().message();
        }
        m.throughput.push_back(tp);
      }
  }
  return m;
}

namespace {

Json GroupJson(const ZoneGroup& g, bool single) {
  Json j = single ? Json{{"zone", g.zone_a}} : Json{{"zone_a", g.zone_a}, {"zone_b", g.zone_b}};
  j["pairs"] = g.pairs;
  j.update(SummaryToJson(g.rtt));
  return j;
}

std::string Cell(const Summary& s) {
  if (s.received == 0) return "lost";
  std::string v = FormatMicrosHuman(s.p50_us);
  if (s.lost() > 0) v += fmt::format(" ({:.0f}% loss)", s.loss_ratio() * 100);
  return v;
}

std::string Gbits(double bps) {
  return fmt::format("{:.2f} Gbit/s", bps / 1e9);
}

}  // namespace

MeshGaps FindGaps(const MeshResult& m) {
  MeshGaps g;
  for (const auto& e : m.agent_errors) g.agents_down += !e.empty();
  for (const auto& p : m.pairs) g.pairs_unmeasured += p.rtt.received == 0;
  for (const auto& t : m.throughput) g.throughput_failed += !t.error.empty();
  return g;
}

std::string DescribeGaps(const MeshResult& m) {
  MeshGaps g = FindGaps(m);
  std::vector<std::string> parts;
  if (g.agents_down)
    parts.push_back(fmt::format("{} of {} agents did not answer", g.agents_down, m.peers.size()));
  if (g.pairs_unmeasured)
    parts.push_back(
        fmt::format("{} of {} pairs got no sample back", g.pairs_unmeasured, m.pairs.size()));
  if (g.throughput_failed)
    parts.push_back(
        fmt::format("{} of {} throughput pairs failed", g.throughput_failed, m.throughput.size()));
  return fmt::format("{}", fmt::join(parts, "; "));
}

Json MeshToJson(const MeshResult& m) {
  MeshGaps gaps = FindGaps(m);
  Json j = {{"complete", !gaps.any()},
            {"agents_down", gaps.agents_down},
            {"pairs_unmeasured", gaps.pairs_unmeasured},
            {"peers", Json::array()},
            {"single_zone", Json::array()},
            {"cross_zone", Json::array()},
            {"pairs", Json::array()}};
  for (size_t i = 0; i < m.peers.size(); i++) {
    Json p = {{"name", m.peers[i].name},
              {"address", m.peers[i].address},
              {"zone", m.peers[i].zone},
              {"agent_ok", m.agent_errors.empty() || m.agent_errors[i].empty()}};
    if (!m.agent_errors.empty() && !m.agent_errors[i].empty()) p["error"] = m.agent_errors[i];
    j["peers"].push_back(p);
  }
  for (const auto& g : m.single_zone) j["single_zone"].push_back(GroupJson(g, true));
  for (const auto& g : m.cross_zone) j["cross_zone"].push_back(GroupJson(g, false));
  for (const auto& p : m.pairs) {
    Json e = {{"from", m.peers[p.from].name},
              {"to", m.peers[p.to].name},
              {"from_zone", m.peers[p.from].zone},
              {"to_zone", m.peers[p.to].zone},
              {"same_zone", m.peers[p.from].zone == m.peers[p.to].zone}};
    e.update(SummaryToJson(p.rtt));
    if (!p.error.empty()) e["error"] = p.error;
    j["pairs"].push_back(e);
  }
  if (!m.throughput.empty()) {
    j["throughput"] = Json::array();
    for (const auto& t : m.throughput) {
      Json e = {{"from", m.peers[t.from].name}, {"to", m.peers[t.to].name}};
      if (t.error.empty())
        e["bits_per_second"] = std::round(t.bits_per_second);
      else
        e["error"] = t.error;
      j["throughput"].push_back(e);
    }
    j["throughput_failed"] = gaps.throughput_failed;
  }
  return j;
}

std::string MeshToText(const MeshResult& m) {
  using A = Table::Align;
  std::string out;
  auto stats = [](const Summary& s) -> std::vector<std::string> {
    if (s.received == 0) return {"-", "-", "-", "-"};
    return {FormatMicrosHuman(s.min_us), FormatMicrosHuman(s.avg_us), FormatMicrosHuman(s.max_us),
            FormatMicrosHuman(s.p99_us)};
  };
  auto loss = [](const Summary& s) { return fmt::format("{:.1f}%", s.loss_ratio() * 100); };
  Table single(
      {"ZONE", "PAIRS", "SAMPLES", "MIN", "AVG", "MAX", "P99", "LOSS"},
      {A::kLeft, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight});
  for (const auto& g : m.single_zone) {
    std::vector<std::string> row = {g.zone_a, std::to_string(g.pairs),
                                    std::to_string(g.rtt.received)};
    for (auto& c : stats(g.rtt)) row.push_back(c);
    row.push_back(loss(g.rtt));
    single.AddRow(row);
  }
  Table cross({"ZONE A", "ZONE B", "PAIRS", "SAMPLES", "MIN", "AVG", "MAX", "P99", "LOSS"},
              {A::kLeft, A::kLeft, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight,
               A::kRight});
  for (const auto& g : m.cross_zone) {
    std::vector<std::string> row = {g.zone_a, g.zone_b, std::to_string(g.pairs),
                                    std::to_string(g.rtt.received)};
    for (auto& c : stats(g.rtt)) row.push_back(c);
    row.push_back(loss(g.rtt));
    cross.AddRow(row);
  }
  out += "Within one zone\n" +
         (single.empty() ? std::string("(no zone has two peers)\n") : single.Render());
  out += "\nAcross zones\n" +
         (cross.empty() ? std::string("(all peers are in one zone)\n") : cross.Render());
  size_t n = m.peers.size();
  std::vector<std::string> head = {"FROM \\ TO (p50)"};
  std::vector<A> align = {A::kLeft};
  for (const auto& p : m.peers) {
    head.push_back(p.name);
    align.push_back(A::kRight);
  }
  Table matrix(head, align);
  std::vector<std::vector<std::string>> cells(n, std::vector<std::string>(n, "-"));
  for (const auto& p : m.pairs) cells[p.from][p.to] = Cell(p.rtt);
  for (size_t i = 0; i < n; i++) {
    std::vector<std::string> row = {m.peers[i].name + " (" + m.peers[i].zone + ")"};
    row.insert(row.end(), cells[i].begin(), cells[i].end());
    matrix.AddRow(row);
  }
  out += "\nRound trip by pair\n" + matrix.Render();
  if (!m.throughput.empty()) {
    std::vector<std::vector<std::string>> tc(n, std::vector<std::string>(n, "-"));
    for (const auto& t : m.throughput)
      tc[t.from][t.to] = t.error.empty() ? Gbits(t.bits_per_second) : "failed";
    head[0] = "FROM \\ TO (TCP)";
    Table tt(head, align);
    for (size_t i = 0; i < n; i++) {
      std::vector<std::string> row = {m.peers[i].name};
      row.insert(row.end(), tc[i].begin(), tc[i].end());
      tt.AddRow(row);
    }
    out += "\nThroughput by pair\n" + tt.Render();
  }
  for (size_t i = 0; i < m.agent_errors.size(); i++)
    if (!m.agent_errors[i].empty())
      // The error may quote the agent's reply: one line, escaped (PrintText
      // would keep a newline in it).
      out += "\nagent " + m.peers[i].name + ": " + EscapeControl(m.agent_errors[i]) + "\n";
  return out;
}

}  // namespace cloudkeep::latency
