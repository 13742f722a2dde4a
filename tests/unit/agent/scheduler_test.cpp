// The scheduler's decisions with a FixedClock: missed slots run once and are
// reported, a clock going back repeats nothing, overlaps skip, two jobs on
// one volume never run together, and a restart resumes after the last slot.
#include "agent/scheduler.h"

#include <gtest/gtest.h>

namespace cloudkeep::agent {
namespace {

using namespace std::chrono_literals;
using Kind = Decision::Kind;

TimePoint At(const char* t) {
  return *ParseRfc3339(t);
}

JobConfig Job(const std::string& name, Schedule s, std::vector<std::string> locks = {}) {
  JobConfig j;
  j.name = name;
  j.kind = "exec";
  j.schedule = s;
  j.locks = std::move(locks);
  return j;
}

std::string Show(const std::vector<Decision>& ds) {
  std::string out;
  for (const auto& d : ds) {
    static const char* kNames[] = {"start", "skip", "wait", "clockback"};
    out += (out.empty() ? "" : " ") + std::string(kNames[static_cast<int>(d.kind)]) + ":" + d.job;
    if (d.kind != Kind::kClockBack) out += "@" + FormatRfc3339(d.slot).substr(11, 8);
    if (d.missed) out += "+" + std::to_string(d.missed);
  }
  return out;
}

TEST(Scheduler, RunsEachSlotOnce) {
  FixedClock clock(At("2026-12-02T10:00:30Z"));
  AgentConfig c;
  c.jobs.push_back(Job("a", Schedule::Every(1min)));
  Scheduler s;
  s.Configure(c, {}, clock.Now());
  EXPECT_EQ(Show(s.Tick(clock.Now())), "");
  clock.Set(At("2026-12-02T10:01:00Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "start:a@10:01:00");
  EXPECT_EQ(Show(s.Tick(clock.Now())), "");  // same instant: nothing more
  s.Finished("a");
  clock.Set(At("2026-12-02T10:01:59Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "");
  clock.Set(At("2026-12-02T10:02:00Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "start:a@10:02:00");
}

TEST(Scheduler, ForwardJumpRunsTheMissedSlotOnceAndSaysSo) {
  FixedClock clock(At("2026-12-02T10:00:30Z"));
  AgentConfig c;
  c.jobs.push_back(Job("a", Schedule::Cron(*CronExpr::Parse("*/5 * * * *"))));
  Scheduler s;
  s.Configure(c, {}, clock.Now());
  // The clock jumps 23 minutes: 10:05 … 10:20 passed (four slots). One run, for 10:20,
  // with the three before it reported as missed.
  clock.Set(At("2026-12-02T10:23:00Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "start:a@10:20:00+3");
  s.Finished("a");
  EXPECT_EQ(Show(s.Tick(clock.Now())), "");
  EXPECT_EQ(FormatRfc3339(*s.NextSlot("a")), "2026-12-02T10:25:00Z");
}

TEST(Scheduler, BackwardJumpRepeatsNothing) {
  FixedClock clock(At("2026-12-02T10:05:00Z"));
  AgentConfig c;
  c.jobs.push_back(Job("a", Schedule::Cron(*CronExpr::Parse("*/5 * * * *"))));
  Scheduler s;
  s.Configure(c, {{"a", At("2026-12-02T10:00:00Z")}}, clock.Now());
  EXPECT_EQ(Show(s.Tick(clock.Now())), "start:a@10:05:00");
  s.Finished("a");
  // Back 30 minutes: 09:40 … 10:05 are not run again.
  clock.Set(At("2026-12-02T09:36:00Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "clockback:");
  for (const char* t : {"2026-12-02T09:40:00Z", "2026-12-02T09:55:00Z", "2026-12-02T10:05:00Z",
                        "2026-12-02T10:09:59Z"}) {
    clock.Set(At(t));
    EXPECT_EQ(Show(s.Tick(clock.Now())), "") << t;
  }
  clock.Set(At("2026-12-02T10:10:00Z"));
  EXPECT_EQ(Show(s.Tick(clock.Now())), "start:a@10:10:00");
}

TEST(Scheduler, RestartResumesAfterTheLastSlotTaken) {
  AgentConfig c;
  c.jobs.push_back(Job("a", Schedule::Every(1min)));
  // The agent died after starting the 10:01 slot (recorded), restarted at 10:01:40.
  Scheduler s;
  s.Configure(c, {{"a", At("2026-12-02T10:01:00Z")}}, At("2026-12-02T10:01:40Z"));
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T10:01:40Z"))), "");  // 10:01 is not run twice
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T10:02:00Z"))), "start:a@10:02:00");
  // Down for a while: one catch-up run, the gap reported.
  Scheduler later;
  later.Configure(c, {{"a", At("2026-12-02T10:02:00Z")}}, At("2026-12-02T11:00:30Z"));
  EXPECT_EQ(Show(later.Tick(At("2026-12-02T11:00:30Z"))), "start:a@11:00:00+57");
}

TEST(Scheduler, OverlapSkipsWithADecision) {
  AgentConfig c;
  c.jobs.push_back(Job("a", Schedule::Every(1min)));
  Scheduler s;
  s.Configure(c, {}, At("2026-12-02T10:00:30Z"));
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T10:01:00Z"))), "start:a@10:01:00");
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T10:02:00Z"))), "skip:a@10:02:00");
  EXPECT_TRUE(s.Running("a"));
  s.Finished("a");
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T10:03:00Z"))), "start:a@10:03:00");
}

TEST(Scheduler, OneVolumeOneSnapshotAtATime) {
  AgentConfig c;
  c.jobs.push_back(Job("hourly", Schedule::Every(1h), {"/srv/a.img"}));
  c.jobs.push_back(Job("daily", Schedule::Every(24h), {"/srv/b.img", "/srv/a.img"}));
  c.jobs.push_back(Job("other", Schedule::Every(1h), {"/srv/c.img"}));
  c.jobs.push_back(Job("all", Schedule::Every(24h), {"*"}));
  Scheduler s;
  s.Configure(c, {}, At("2026-12-01T23:59:00Z"));
  // Midnight: every job is due; hourly and other run, daily and all wait.
  auto d = s.Tick(At("2026-12-02T00:00:00Z"));
  EXPECT_EQ(Show(d),
            "start:hourly@00:00:00 wait:daily@00:00:00 start:other@00:00:00 "
            "wait:all@00:00:00");
  EXPECT_EQ(d[1].other, "hourly");
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T00:00:10Z"))), "");
  s.Finished("hourly");
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T00:00:20Z"))), "start:daily@00:00:00");
  s.Finished("daily");
  s.Finished("other");
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T00:00:30Z"))), "start:all@00:00:00");
  // While "all" runs, the hourly slot waits for it.
  EXPECT_EQ(Show(s.Tick(At("2026-12-02T01:00:00Z"))), "wait:hourly@01:00:00 wait:other@01:00:00");
}

TEST(Scheduler, JitterDelaysTheStartNotTheSlot) {
  AgentConfig c;
  Schedule sch = Schedule::Every(1h);
  sch.WithJitter(10min);
  c.jobs.push_back(Job("a", sch));
  Scheduler s;
  s.Configure(c, {}, At("2026-12-02T09:30:00Z"));
  TimePoint due = *s.NextDue("a");
  EXPECT_EQ(FormatRfc3339(*s.NextSlot("a")), "2026-12-02T10:00:00Z");
  EXPECT_GE(due, At("2026-12-02T10:00:00Z"));
  EXPECT_LT(due, At("2026-12-02T10:10:00Z"));
  EXPECT_EQ(Show(s.Tick(due - 1s)), "");
  EXPECT_EQ(Show(s.Tick(due)), "start:a@10:00:00");
}

}  // namespace
}  // namespace cloudkeep::agent
