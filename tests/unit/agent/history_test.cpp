// History in SQLite: slots recorded before a run, interrupted runs after a
// crash, counters that never go down when old runs are pruned, volumes.
#include "agent/history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/metrics.h"

namespace cloudkeep::agent {
namespace {

using namespace std::chrono_literals;

TimePoint At(const char* t) {
  return *ParseRfc3339(t);
}

std::string DbPath() {
  std::string p = ::testing::TempDir() + "agent_history_test_" + std::to_string(::getpid()) + ".db";
  for (const char* ext : {"", "-wal", "-shm"}) ::unlink((p + ext).c_str());
  return p;
}

TEST(History, RunsSlotsAndCrashes) {
  std::string path = DbPath();
  {
    auto h = History::Open(path, false);
    ASSERT_TRUE(h.ok()) << h.status().message();
    auto id = (*h)->Begin("a", At("2026-12-02T10:00:00Z"), At("2026-12-02T10:00:01Z"));
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE((*h)->Finish(*id, At("2026-12-02T10:00:03Z"), "success", "ok", "").ok());
    ASSERT_TRUE(
        (*h)->Skip("a", At("2026-12-02T10:01:00Z"), At("2026-12-02T10:01:00Z"), "busy").ok());
    // Started and then the agent dies: the row stays "running".
    ASSERT_TRUE((*h)->Begin("a", At("2026-12-02T10:02:00Z"), At("2026-12-02T10:02:00Z")).ok());
  }
  auto h = History::Open(path, false);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(FormatRfc3339(**(*h)->LastSlot("a")), "2026-12-02T10:02:00Z");
  EXPECT_FALSE((*(*h)->LastSlot("nobody")).has_value());
  EXPECT_EQ(*(*h)->MarkInterrupted(At("2026-12-02T10:05:00Z"), "agent died"), 1);
  EXPECT_EQ(*(*h)->MarkInterrupted(At("2026-12-02T10:05:00Z"), "agent died"), 0);
  auto runs = *(*h)->Runs("a", 10);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].outcome, "interrupted");
  EXPECT_EQ(runs[0].error, "agent died");
  EXPECT_EQ(runs[1].outcome, "skipped");
  EXPECT_EQ(runs[2].outcome, "success");
  EXPECT_EQ(runs[2].summary, "ok");
  EXPECT_EQ(FormatRfc3339(*(*h)->LastSuccess("a").value()), "2026-12-02T10:00:03Z");
  auto counters = *(*h)->Counters();
  EXPECT_EQ(counters["a"]["success"], 1);
  EXPECT_EQ(counters["a"]["skipped"], 1);
  EXPECT_EQ(counters["a"]["interrupted"], 1);
  // Read-only opening sees the same.
  auto ro = History::Open(path, true);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ((*(*ro)->Runs("", 10)).size(), 3u);
}

TEST(History, PruneBoundsRunsButNotCounters) {
  auto h = History::Open(DbPath(), false);
  ASSERT_TRUE(h.ok());
  TimePoint t0 = At("2026-12-01T00:00:00Z");
  for (int i = 0; i < 20; ++i) {
    auto id = (*h)->Begin("a", t0 + i * 1h, t0 + i * 1h);
    ASSERT_TRUE((*h)->Finish(*id, t0 + i * 1h + 1s, i % 2 ? "failure" : "success", "", "").ok());
  }
  ASSERT_TRUE((*h)->Prune(t0 + 20h, 10h, 1000).ok());
  EXPECT_EQ((*(*h)->Runs("a", 100)).size(), 10u);  // 10:00 … 19:00 (started ≥ now - 10h)
  ASSERT_TRUE((*h)->Prune(t0 + 20h, 1000h, 4).ok());
  auto runs = *(*h)->Runs("a", 100);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(FormatRfc3339(runs[0].slot), "2026-12-01T19:00:00Z");
  auto c = *(*h)->Counters();
  EXPECT_EQ(c["a"]["success"], 10);
  EXPECT_EQ(c["a"]["failure"], 10);
  EXPECT_EQ(FormatRfc3339(**(*h)->LastSlot("a")), "2026-12-01T19:00:00Z");
}

TEST(Metrics, ExpositionFollowsTheConventions) {
  auto h = History::Open(DbPath(), false);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->RecordSnapshot("/srv/a\"b.img", At("2026-12-02T10:00:00Z"), 1.5).ok());
  ASSERT_TRUE((*h)->RecordSnapshotCount("/srv/a\"b.img", 7).ok());
  auto id = (*h)->Begin("web", At("2026-12-02T10:00:00Z"), At("2026-12-02T10:00:00Z"));
  ASSERT_TRUE((*h)->Finish(*id, At("2026-12-02T10:00:02Z"), "success", "", "").ok());
  MetricsInput in;
  in.version = "0.1.0";
  in.start_time = At("2026-12-02T09:00:00Z");
  JobMetrics j;
  j.name = "web";
  j.kind = "snapshot";
  j.last_run = *(*h)->LastRun("web");
  j.next_run = At("2026-12-02T11:00:00Z");
  in.jobs.push_back(j);
  in.counters = *(*h)->Counters();
  in.volumes = *(*h)->Volumes();
  std::string m = RenderMetrics(in);
  auto has = [&](const std::string& s) {
    EXPECT_NE(m.find(s), std::string::npos) << s << "\n" << m;
  };
  has("cloudkeep_agent_build_info{version=\"0.1.0\"} 1\n");
  has("# TYPE cloudkeep_agent_job_runs_total counter\n");
  has("cloudkeep_agent_job_runs_total{agent_job=\"web\",kind=\"snapshot\",outcome=\"success\"} "
      "1\n");
  has("cloudkeep_agent_job_runs_total{agent_job=\"web\",kind=\"snapshot\",outcome=\"failure\"} "
      "0\n");
  has("cloudkeep_agent_job_last_run_duration_seconds{agent_job=\"web\"} 2.000000\n");
  has("cloudkeep_agent_job_last_run_timestamp_seconds{agent_job=\"web\"} 1796205600.000\n");
  has("cloudkeep_agent_job_next_run_timestamp_seconds{agent_job=\"web\"} 1796209200.000\n");
  has("cloudkeep_snapshots{volume=\"/srv/a\\\"b.img\"} 7\n");
  has("cloudkeep_snapshot_last_duration_seconds{volume=\"/srv/a\\\"b.img\"} 1.500000\n");
}

}  // namespace
}  // namespace cloudkeep::agent
