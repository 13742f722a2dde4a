// `cloudkeep latency …`: serve, probe, mesh, throughput.
// Flags in, module calls, output out; the logic lives in src/latency.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "cli/app.h"
#include "core/env.h"
#include "core/fs.h"
#include "core/log.h"
#include "latency/imds.h"
#include "latency/mesh.h"
#include "latency/peers.h"
#include "latency/prober.h"
#include "latency/responder.h"
#include "latency/throughput.h"
#include "latency/wire.h"

namespace cloudkeep::cli {

namespace {

using namespace cloudkeep::latency;

// Like Action, but after printing its results the body may still choose
// exit code 1 (a target answered nothing) without a second JSON document.
std::function<void()> ActionRc(Context& ctx, std::function<Result<int>()> body) {
  return [&ctx, body = std::move(body)]() {
    auto rc = std::make_shared<int>(0);
    Action(ctx, [body, rc]() -> Status {
      CK_ASSIGN_OR_RETURN(*rc, body());
      return Status::Ok();
    })();
    auto report = ctx.action;
    ctx.action = [report, rc]() {
      int code = report();
      return code != 0 ? code : *rc;
    };
  };
}

struct ProbeFlags {
  std::string proto = "udp", interval = "200ms", timeout = "1s", clock = "kernel";
  int count = 10, warmup = 1;
  size_t size = 64;
  bool samples = false;
};

void AddProbeFlags(CLI::App* cmd, ProbeFlags* f) {
  cmd->add_option("--proto", f->proto,
                  "udp (kernel timestamps), tcp (ping-pong on one connection) or icmp")
      ->capture_default_str();
  cmd->add_option("--count", f->count, "Probes per target, after the warmup")
      ->capture_default_str();
  cmd->add_option("--interval", f->interval, "Time between probes (0 = back to back)")
      ->capture_default_str();
  cmd->add_option("--warmup", f->warmup, "Probes sent first and not counted")
      ->capture_default_str();
  cmd->add_option("--size", f->size, "Bytes per probe message")->capture_default_str();
  cmd->add_option("--timeout", f->timeout, "A probe unanswered this long is lost")
      ->capture_default_str();
  cmd->add_option("--clock", f->clock,
                  "udp/icmp RTT from kernel timestamps (scheduling not counted; user-space RTT "
                  "shown too) or from "
                  "user space only")
      ->capture_default_str();
}

Result<ProbeOptions> ToProbeOptions(const ProbeFlags& f) {
  ProbeOptions o;
  CK_ASSIGN_OR_RETURN(o.proto, ParseProto(f.proto));
  if (f.clock != "kernel" && f.clock != "user")
    return Status::Usage("--clock '" + f.clock + "' is not one of kernel, user");
  o.kernel_timestamps = f.clock == "kernel";
  o.count = f.count;
  o.warmup = f.warmup;
  o.size = f.size;
  CK_ASSIGN_OR_RETURN(o.interval, DurationFlag(f.interval, BareNumber::kSeconds, "--interval"));
  CK_ASSIGN_OR_RETURN(o.timeout, DurationFlag(f.timeout, BareNumber::kSeconds, "--timeout"));
  CK_RETURN_IF_ERROR(ValidateProbeOptions(o));
  return o;
}

std::string Us(double v) {
  return FormatMicrosHuman(v);
}

// --- serve -----------------------------------------------------------------

Responder* g_responder = nullptr;
extern "C" void OnStopSignal(int) {
  if (g_responder) g_responder->Stop();
}

void AddServe(CLI::App* group, Context& ctx) {
  struct Flags {
    std::vector<std::string> listen;
    std::string name, zone, token_file;
    double rate = 10000, burst = 1000, rate_per_source = 2000, burst_per_source = 200;
    int max_connections = 64;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd =
      group->add_subcommand("serve", "Answer latency probes and run mesh requests (the agent)");
  cmd->add_option("--listen", f->listen,
                  "ADDR:PORT to listen on, UDP and TCP (repeatable; default [::]:7470, IPv4 too)");
  cmd->add_option("--name", f->name, "Name announced to probers (default: the host name)");
  cmd->add_option("--zone", f->zone,
                  "Availability zone announced (default: zone id from EC2 IMDSv2, else 'unknown')");
  cmd->add_option("--token-file", f->token_file,
                  "Mesh token file (default: $CLOUDKEEP_MESH_TOKEN)");
  cmd->add_option("--rate", f->rate,
                  "Most replies a second; more probes are dropped (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--burst", f->burst, "Replies allowed above the rate in a burst")
      ->capture_default_str();
  cmd->add_option("--rate-per-source", f->rate_per_source,
                  "Most replies a second to one address (an IPv6 /64 counts as one; 0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--burst-per-source", f->burst_per_source,
                  "Replies allowed above the per-source rate in a burst")
      ->capture_default_str();
  cmd->add_option("--max-connections", f->max_connections, "Concurrent TCP connections")
      ->capture_default_str();
  cmd->footer(
      "Answers only well-formed probes, never with more bytes than it received. Over the rate, "
      "UDP\n"
      "probes go unanswered (the prober counts them lost) and TCP probes wait. A prober sending "
      "back\n"
      "to back (--interval 0) needs --rate-per-source 0 here. Without a mesh token\n"
      "it answers probes and throughput tests but refuses to run probes for a mesh.\n\n"
      "Examples:\n"
      "  cloudkeep latency serve --zone use1-az1\n"
      "  CLOUDKEEP_MESH_TOKEN=$(cat /etc/cloudkeep/mesh.token) cloudkeep latency serve\n"
      "  cloudkeep latency serve --listen 10.0.1.5:7470 --listen [fd00::5]:7470 --name web-1");
  cmd->callback(Action(ctx, [f]() -> Status {
    ResponderOptions o;
    o.listen = f->listen;
    for (auto [flag, value] : {std::pair{"--rate", f->rate},
                               {"--burst", f->burst},
                               {"--rate-per-source", f->rate_per_source},
                               {"--burst-per-source", f->burst_per_source}})
      if (!(value >= 0))
        return Status::Usage(fmt::format("{} '{}' must be 0 or more", flag, value));
    o.rate = f->rate;
    o.burst = f->burst;
    o.rate_per_source = f->rate_per_source;
    o.burst_per_source = f->burst_per_source;
    if (f->max_connections < 1)
      return Status::Usage("--max-connections '" + std::to_string(f->max_connections) +
                           "' must be at least 1");
    o.max_connections = f->max_connections;
    CK_ASSIGN_OR_RETURN(Environment env, ReadEnvironment());
    CK_ASSIGN_OR_RETURN(o.token, LoadToken(f->token_file, env.mesh_token, ""));
    o.name = f->name;
    if (o.name.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      o.name = host;
    }
    o.zone = f->zone;
    if (o.zone.empty()) {
      auto z = ImdsAvailabilityZoneId();
      if (z.ok()) {
        o.zone = *z;
      } else {
        log::Warn("zone unknown ({}); pass --zone", z.status().message());
        o.zone = "unknown";
      }
    }
    // What does not fit the hello reply is refused here, not truncated on the wire.
    CK_RETURN_IF_ERROR(wire::ValidateIdentity(o.name, o.zone));
    if (o.token.empty()) log::Warn("no mesh token: this agent will refuse mesh runs");
    CK_ASSIGN_OR_RETURN(auto responder, Responder::Start(o));
    for (const auto& b : responder->bound())
      log::Info("serving {} (zone {}) on {} udp+tcp", o.name, o.zone, b);
    g_responder = responder.get();
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    Status st = responder->Run();
    g_responder = nullptr;
    const auto& c = responder->counters();
    log::Info("stopped: {} answered, {} malformed, {} over the rate, {} control requests refused",
              c.answered.load(), c.malformed.load(), c.rate_limited.load(),
              c.control_refused.load());
    return st;
  }));
}

// --- probe -----------------------------------------------------------------

void AddProbe(CLI::App* group, Context& ctx) {
  struct Flags {
    std::vector<std::string> targets;
    ProbeFlags p;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "probe", "Round-trip time to targets running `latency serve` (or any host, icmp)");
  cmd->add_option("TARGET", f->targets, "HOST[:PORT] or [V6ADDR]:PORT (default port 7470)")
      ->required();
  AddProbeFlags(cmd, &f->p);
  cmd->add_flag("--samples", f->p.samples, "With --json: every sample in samples_us");
  cmd->footer(
      "Exit status 1 when a target answered no probe at all.\n\n"
      "Examples:\n"
      "  cloudkeep latency probe 10.0.1.5 10.0.2.7 --count 100 --interval 10ms\n"
      "  cloudkeep latency probe db-1:7470 --proto tcp\n"
      "  cloudkeep --json latency probe [fd00::5]:7470 --count 1000 --interval 1ms\n"
      "  cloudkeep latency probe 10.0.1.5 --proto icmp");
  cmd->callback(ActionRc(ctx, [&ctx, f]() -> Result<int> {
    CK_ASSIGN_OR_RETURN(ProbeOptions o, ToProbeOptions(f->p));
    o.keep_samples = f->p.samples;
    for (const auto& t : f->targets) CK_RETURN_IF_ERROR(ParseHostPort(t, "target").status());
    auto results = ProbeTargets(f->targets, o);
    std::string dead;
    for (const auto& r : results) {
      if (!r.error.empty()) log::Warn("{}: {}", r.target, r.error);
      if (r.rtt.received == 0 && dead.empty()) dead = r.target;
    }
    // Faster than 2,000 a second, a default responder's per-source limit
    // drops UDP probes: say so rather than let it pass for network loss.
    bool lossy = std::any_of(results.begin(), results.end(), [](const TargetResult& r) {
      return r.rtt.received > 0 && r.rtt.lost() > 0;
    });
    if (lossy && o.proto == Proto::kUdp && o.interval < Micros(500))
      log::Warn(
          "probes were lost at --interval {}: a responder answers one prober at most "
          "--rate-per-source a second (default 2000); start it with --rate-per-source 0 to "
          "measure back to back",
          FormatDuration(o.interval));
    if (ctx.global.json) {
      Json doc = {{"proto", ProtoName(o.proto)}, {"count", o.count},
                  {"warmup", o.warmup},          {"interval_us", o.interval.count()},
                  {"size_bytes", o.size},        {"targets", Json::array()}};
      for (const auto& r : results) doc["targets"].push_back(TargetResultToJson(r));
      PrintJson(doc);
    } else {
      using A = Table::Align;
      Table t({"TARGET", "NAME", "ZONE", "SENT", "LOST", "MIN", "AVG", "MAX", "STDDEV", "P50",
               "P90", "P99", "P99.9"},
              {A::kLeft, A::kLeft, A::kLeft, A::kRight, A::kRight, A::kRight, A::kRight, A::kRight,
               A::kRight, A::kRight, A::kRight, A::kRight, A::kRight});
      for (const auto& r : results) {
        const Summary& s = r.rtt;
        std::vector<std::string> row = {r.target, r.name.empty() ? "-" : r.name,
                                        r.zone.empty() ? "-" : r.zone, std::to_string(s.sent),
                                        std::to_string(s.lost())};
        if (s.received) {
          for (double v :
               {s.min_us, s.avg_us, s.max_us, s.stddev_us, s.p50_us, s.p90_us, s.p99_us, s.p999_us})
            row.push_back(Us(v));
        } else {
          row.insert(row.end(), 8, "-");
        }
        t.AddRow(row);
      }
      std::string text = t.Render();
      for (const auto& r : results) {
        if (r.connect_us) text += fmt::format("{}: tcp connect {}\n", r.target, Us(*r.connect_us));
        if (r.user_rtt && r.user_rtt->received)
          text += fmt::format("{}: kernel timestamps; user-space p50 {} p99 {}\n", r.target,
                              Us(r.user_rtt->p50_us), Us(r.user_rtt->p99_us));
      }
      PrintText(text);
    }
    if (dead.empty()) return 0;
    log::Error("no answer from {}", dead);
    return 1;
  }));
}

// --- mesh ------------------------------------------------------------------

void AddMesh(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string peers, token_file, heatmap, tput_duration = "2s";
    ProbeFlags p;
    bool throughput = false;
    int streams = 1;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand(
      "mesh", "Every agent in a peers file probes every other; zone tables and matrix");
  cmd->add_option("--peers", f->peers, "Peers file: CSV name,address,zone or TOML [[peer]] tables")
      ->required();
  cmd->add_option("--token-file", f->token_file,
                  "Mesh token file (default: $CLOUDKEEP_MESH_TOKEN, then the peers file's token)");
  AddProbeFlags(cmd, &f->p);
  cmd->add_option("--heatmap", f->heatmap, "Also write the matrix as an SVG heatmap to this file");
  cmd->add_flag("--throughput", f->throughput,
                "Also measure TCP throughput between every pair, one pair at a time");
  cmd->add_option("--throughput-duration", f->tput_duration, "Duration per pair with --throughput")
      ->capture_default_str();
  cmd->add_option("--streams", f->streams, "Parallel streams per pair with --throughput")
      ->capture_default_str();
  cmd->footer(
      "Each agent (`cloudkeep latency serve` with the same token) probes all the others at once;\n"
      "an agent that cannot be reached shows 100% loss. Tables pool the samples of their pairs.\n"
      "Exit status 1 when the mesh was measured only in part (an agent did not answer, a pair\n"
      "got no sample back, a throughput pair failed): the tables are still printed, and\n"
      "--json says \"complete\": false. No agent answering at all is exit 1 without tables.\n\n"
      "Examples:\n"
      "  cloudkeep latency mesh --peers peers.csv --token-file mesh.token\n"
      "  CLOUDKEEP_MESH_TOKEN=s3cret cloudkeep latency mesh --peers peers.toml --count 100 "
      "--interval 10ms\n"
      "  cloudkeep --json latency mesh --peers peers.csv --heatmap mesh.svg --throughput");
  cmd->callback(ActionRc(ctx, [&ctx, f]() -> Result<int> {
    CK_ASSIGN_OR_RETURN(PeersFile peers, LoadPeers(f->peers));
    MeshOptions o;
    CK_ASSIGN_OR_RETURN(o.probe, ToProbeOptions(f->p));
    CK_ASSIGN_OR_RETURN(Environment env, ReadEnvironment());
    CK_ASSIGN_OR_RETURN(o.token, LoadToken(f->token_file, env.mesh_token, peers.token));
    o.throughput = f->throughput;
    o.throughput_opts.streams = f->streams;
    CK_ASSIGN_OR_RETURN(
        o.throughput_opts.duration,
        DurationFlag(f->tput_duration, BareNumber::kSeconds, "--throughput-duration"));
    if (o.throughput) CK_RETURN_IF_ERROR(ValidateThroughputOptions(o.throughput_opts));
    CK_ASSIGN_OR_RETURN(MeshResult m, RunMesh(peers, o));
    if (!f->heatmap.empty()) CK_RETURN_IF_ERROR(WriteFileAtomic(f->heatmap, MeshHeatmapSvg(m)));
    if (ctx.global.json)
      PrintJson(MeshToJson(m));
    else
      PrintText(MeshToText(m));
    // A cron job must notice a mesh measured only in part.
    if (std::string gaps = DescribeGaps(m); !gaps.empty()) {
      log::Error("mesh incomplete: {}", gaps);
      return 1;
    }
    return 0;
  }));
}

// --- throughput ------------------------------------------------------------

void AddThroughput(CLI::App* group, Context& ctx) {
  struct Flags {
    std::string target, duration = "10s", timeout = "5s", token_file;
    int streams = 1;
    bool reverse = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = group->add_subcommand("throughput", "TCP throughput to a `latency serve` responder");
  cmd->add_option("TARGET", f->target, "HOST[:PORT] or [V6ADDR]:PORT (default port 7470)")
      ->required();
  cmd->add_option("--streams", f->streams, "Parallel TCP streams")->capture_default_str();
  cmd->add_option("--duration", f->duration, "How long to send")->capture_default_str();
  cmd->add_flag("--reverse", f->reverse, "The responder sends, this host receives");
  cmd->add_option("--timeout", f->timeout, "Connect and handshake timeout")->capture_default_str();
  cmd->add_option("--token-file", f->token_file,
                  "Mesh token, if the responder has one (default: $CLOUDKEEP_MESH_TOKEN)");
  cmd->footer(
      "Measured by the receiver from its first byte to the end of the stream.\n\n"
      "Examples:\n"
      "  cloudkeep latency throughput 10.0.1.5\n"
      "  cloudkeep latency throughput 10.0.1.5 --streams 4 --duration 30s --reverse\n"
      "  cloudkeep --json latency throughput [fd00::5]:7470");
  cmd->callback(Action(ctx, [&ctx, f]() -> Status {
    ThroughputOptions o;
    o.streams = f->streams;
    o.reverse = f->reverse;
    CK_ASSIGN_OR_RETURN(o.duration, DurationFlag(f->duration, BareNumber::kSeconds, "--duration"));
    CK_ASSIGN_OR_RETURN(o.timeout, DurationFlag(f->timeout, BareNumber::kSeconds, "--timeout"));
    CK_RETURN_IF_ERROR(ValidateThroughputOptions(o));
    CK_RETURN_IF_ERROR(ParseHostPort(f->target, "target").status());
    CK_ASSIGN_OR_RETURN(Environment env, ReadEnvironment());
    CK_ASSIGN_OR_RETURN(o.token, LoadToken(f->token_file, env.mesh_token, ""));
    CK_ASSIGN_OR_RETURN(ThroughputResult r, RunThroughput(f->target, o));
    if (ctx.global.json) {
      PrintJson(ThroughputToJson(r));
      return Status::Ok();
    }
    using A = Table::Align;
    Table t({"STREAM", "BYTES", "SECONDS", "GBIT/S"}, {A::kLeft, A::kRight, A::kRight, A::kRight});
    for (size_t i = 0; i < r.streams.size(); i++)
      t.AddRow({std::to_string(i + 1), FormatBytes(r.streams[i].bytes),
                fmt::format("{:.2f}", r.streams[i].seconds),
                fmt::format("{:.2f}", r.streams[i].bits_per_second() / 1e9)});
    t.AddRow({"total", FormatBytes(r.bytes), fmt::format("{:.2f}", r.seconds),
              fmt::format("{:.2f}", r.bits_per_second / 1e9)});
    PrintText(fmt::format("{} {} ({})\n", r.reverse ? "download from" : "upload to", r.target,
                          r.address) +
              t.Render());
    return Status::Ok();
  }));
}

}  // namespace

void AddLatencyCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "latency", "Latency and throughput between servers, within and across zones");
  group->require_subcommand(1);
  group->footer(
      "Examples:\n"
      "  cloudkeep latency serve --zone use1-az1             # on every server\n"
      "  cloudkeep latency probe 10.0.1.5 --count 100\n"
      "  cloudkeep latency mesh --peers peers.csv --heatmap mesh.svg\n"
      "  cloudkeep latency throughput 10.0.1.5 --streams 4");
  AddServe(group, ctx);
  AddProbe(group, ctx);
  AddMesh(group, ctx);
  AddThroughput(group, ctx);
}

}  // namespace cloudkeep::cli
