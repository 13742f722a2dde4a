// The mesh (`latency mesh`): every agent in a peers file probes every other
// one; this module asks each agent over the control channel, gathers the
// answers, and folds them into the original measurement's two tables —
// within one zone (per zone) and across zones (per unordered zone pair) —
// plus the per-pair matrix and, optionally, a throughput matrix.
//
// Zone tables pool the raw samples of all their pairs (both directions for
// a cross-zone pair), so their percentiles are percentiles of the samples,
// not averages of per-pair percentiles. Loss pools the same way.
//
// An agent that cannot be reached or refuses (wrong token) is reported, its
// row counts as 100% loss, and the others still finish: every wait is
// bounded by the probe schedule plus timeouts. Such gaps are counted
// (FindGaps) and make `latency mesh` exit 1 after printing its results, so
// that a cron job notices a mesh that was measured only in part.
//
// Thread safety: RunMesh asks all agents concurrently, one thread each;
// the other functions are pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "latency/peers.h"
#include "latency/prober.h"
#include "latency/stats.h"
#include "latency/throughput.h"

namespace cloudkeep::latency {

struct MeshOptions {
  ProbeOptions probe;
  std::string token;
  bool throughput = false;
  ThroughputOptions throughput_opts;  // streams and duration per pair
};

struct PairResult {
  size_t from = 0, to = 0;  // indexes into the peers
  std::vector<double> samples_us;
  uint64_t sent = 0;
  Summary rtt;
  std::string error;
};

struct ZoneGroup {
  std::string zone_a, zone_b;  // equal for a single-zone group
  size_t pairs = 0;
  Summary rtt;
};

struct ThroughputPair {
  size_t from = 0, to = 0;
  double bits_per_second = 0;
  std::string error;
};

struct MeshResult {
  std::vector<Peer> peers;
  std::vector<std::string> agent_errors;  // per peer, empty when it answered
  std::vector<PairResult> pairs;
  std::vector<ZoneGroup> single_zone, cross_zone;
  std::vector<ThroughputPair> throughput;
};

// What a run could not measure: agents that did not answer, pairs with no
// sample back (agent down, target unreachable, all probes lost), throughput
// pairs that failed.
struct MeshGaps {
  size_t agents_down = 0, pairs_unmeasured = 0, throughput_failed = 0;
  bool any() const { return agents_down || pairs_unmeasured || throughput_failed; }
};
MeshGaps FindGaps(const MeshResult& m);
// "1 of 4 agents did not answer; 6 of 12 pairs got no sample back" ("" when none).
std::string DescribeGaps(const MeshResult& m);

Result<MeshResult> RunMesh(const PeersFile& peers, const MeshOptions& opts);

// Fills single_zone and cross_zone from peers and pairs (sorted by zone).
void ComputeZoneTables(MeshResult* m);

Json MeshToJson(const MeshResult& m);
// The tables as text: single zone, cross zone, matrix (p50), throughput.
std::string MeshToText(const MeshResult& m);
// The per-pair p50 matrix as an SVG heatmap, peers grouped by zone.
std::string MeshHeatmapSvg(const MeshResult& m);

}  // namespace cloudkeep::latency
