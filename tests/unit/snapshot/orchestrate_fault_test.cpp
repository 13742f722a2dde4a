// The create and prune orchestrations (snapshot/orchestrate.cpp) under
// injected faults, through a fake Provider that fails on demand and a
// FixedClock: capture failing after the pre hooks, finalize failing after
// the thaw, a failing pre or post hook, the prune guards, dry runs, a delete
// that fails, and damaged records that no policy may weigh. The hooks are
// the observable consistency steps (a real freeze needs root and a loop
// device; tests/integration/test_consistency_*.sh cover those).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/clock.h"
#include "snapshot/orchestrate.h"

namespace cloudkeep::snapshot {
namespace {

using std::chrono::hours;

class FakeCapture : public CaptureHandle {};

// A provider whose every step can be made to fail; records what was called.
class FaultyProvider : public Provider {
 public:
  std::string name() const override { return "fake"; }
  Result<std::vector<Volume>> ListVolumes(bool) override { return std::vector<Volume>{}; }
  Result<Volume> ResolveVolume(const std::string& spec) override {
    Volume v;
    v.id = v.device = spec;
    return v;
  }
  std::string CanonicalVolumeId(const std::string& spec) override { return spec; }
  Status Prepare(const CreateRequest&) override {
    calls.push_back("prepare");
    return fail_prepare ? Status::Failure("prepare failed") : Status::Ok();
  }
  Result<std::unique_ptr<CaptureHandle>> Capture(const CreateRequest&) override {
    calls.push_back("capture");
    if (fail_capture) return Status::Failure("capture failed");
    return std::unique_ptr<CaptureHandle>(new FakeCapture());
  }
  Result<std::vector<Snapshot>> Finalize(std::unique_ptr<CaptureHandle>,
                                         const SnapshotMetadata& meta) override {
    calls.push_back("finalize");
    finalize_consistency = meta.consistency;
    if (fail_finalize) return Status::Failure("finalize failed");
    Snapshot s;
    s.id = "snap-00000000000000001";
    s.volume_id = "v";
    return std::vector<Snapshot>{s};
  }
  void Abandon(std::unique_ptr<CaptureHandle>) override { calls.push_back("abandon"); }
  Result<std::vector<Snapshot>> ListSnapshots(const SnapshotFilter& filter) override {
    std::vector<Snapshot> out;
    for (const auto& s : snapshots)
      if (!s.damaged.empty() || filter.volume_ids.empty() || filter.volume_ids[0] == s.volume_id)
        out.push_back(s);
    return out;
  }
  Result<Snapshot> GetSnapshot(const std::string& id) override {
    for (const auto& s : snapshots)
      if (s.id == id) return s;
    return Status::Usage("unknown");
  }
  Result<std::vector<DeleteOutcome>> DeleteSnapshots(const std::vector<std::string>& ids,
                                                     const DeleteOptions& options) override {
    deleted_dry_run = options.dry_run;
    std::vector<DeleteOutcome> out;
    for (const auto& id : ids) {
      deleted.push_back(id);
      DeleteResult r = options.dry_run ? DeleteResult::kWouldDelete : DeleteResult::kDeleted;
      if (id == fail_delete_of) r = DeleteResult::kFailed;
      out.push_back({id, r, r == DeleteResult::kFailed ? "in use" : ""});
    }
    return out;
  }

  bool fail_prepare = false, fail_capture = false, fail_finalize = false;
  std::string fail_delete_of;
  std::vector<std::string> calls;
  std::vector<std::string> deleted;
  bool deleted_dry_run = false;
  Consistency finalize_consistency = Consistency::kCrash;
  std::vector<Snapshot> snapshots;
};

class OrchestrateFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orchestrate-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Hooks that append their name to a log: the order of steps is visible.
  std::string Hook(const std::string& name, int exit_code = 0) {
    return "echo " + name + " >> " + (dir_ / "log").string() + "; exit " +
           std::to_string(exit_code);
  }
  std::string Log() {
    std::ifstream in(dir_ / "log");
    std::string all, line;
    while (std::getline(in, line)) all += line + " ";
    return all;
  }
  CreateRequest Request() {
    CreateRequest r;
    Volume v;
    v.id = v.device = "v";
    r.volumes = {v};
    return r;
  }
  std::filesystem::path dir_;
  FaultyProvider provider_;
};

TEST_F(OrchestrateFaultTest, CaptureFailureStillRunsPostHooksAndFinalizesNothing) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre")};
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  provider_.fail_capture = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "capture failed");
  EXPECT_EQ(Log(), "pre post ");
  EXPECT_EQ(provider_.calls, (std::vector<std::string>{"prepare", "capture"}));
}

TEST_F(OrchestrateFaultTest, FinalizeFailureAfterTheThawIsTheError) {
  ConsistencyOptions o;
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  provider_.fail_finalize = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "finalize failed");
  // The post hook ran before the (slow) finalize, not after it.
  EXPECT_EQ(Log(), "post ");
  EXPECT_EQ(provider_.calls, (std::vector<std::string>{"prepare", "capture", "finalize"}));
}

TEST_F(OrchestrateFaultTest, FailingPreHookMeansNoCaptureButPostHooksRun) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre1"), Hook("pre2", 3), Hook("pre3")};
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Log(), "pre1 pre2 post ");
  EXPECT_EQ(provider_.calls, (std::vector<std::string>{"prepare"}));
}

TEST_F(OrchestrateFaultTest, FailingPostHookKeepsTheSnapshotAndSaysSo) {
  ConsistencyOptions o;
  o.post_hooks = {Hook("post-a"), Hook("post-b", 1)};
  ConsistencySession session(o);
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->snapshots.size(), 1u);
  EXPECT_FALSE(r->post_hook_error.empty());
  EXPECT_EQ(Log(), "post-b post-a ");  // post hooks in reverse order, all of them
}

TEST_F(OrchestrateFaultTest, PrepareFailureTouchesNothing) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre")};
  ConsistencySession session(o);
  provider_.fail_prepare = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Log(), "");
  EXPECT_EQ(provider_.calls, (std::vector<std::string>{"prepare"}));
}

Snapshot At(const std::string& id, TimePoint t, const std::string& volume = "v") {
  Snapshot s;
  s.id = id;
  s.volume_id = volume;
  s.created = t;
  return s;
}

TEST_F(OrchestrateFaultTest, PruneGuardsTheNewestAndDryRunDeletesNothing) {
  FixedClock clock(TimePoint{} + hours(24 * 365 * 50));
  TimePoint now = clock.Now();
  provider_.snapshots = {At("snap-a", now - hours(48)), At("snap-b", now - hours(24)),
                         At("snap-c", now - hours(1))};
  PruneOptions opts;
  opts.policy.older_than = std::chrono::minutes(30);  // every snapshot is older: all would go
  auto r = PruneVolumes(provider_, {"v"}, opts, clock);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUsage);
  EXPECT_TRUE(provider_.deleted.empty());

  opts.policy = RetentionPolicy{};
  opts.policy.keep_last = 1;
  opts.dry_run = true;
  auto dry = PruneVolumes(provider_, {"v"}, opts, clock);
  ASSERT_TRUE(dry.ok()) << dry.status().message();
  EXPECT_TRUE(provider_.deleted_dry_run);
  EXPECT_EQ(dry->removed, 2u);
  EXPECT_EQ(dry->kept, 1u);
}

TEST_F(OrchestrateFaultTest, PruneCountsAFailedDeleteAndLeavesDamagedRecords) {
  FixedClock clock(TimePoint{} + hours(24 * 365 * 50));
  TimePoint now = clock.Now();
  Snapshot damaged;
  damaged.id = "snap-d";
  damaged.state = "damaged";
  damaged.damaged = "bad manifest: not JSON";
  provider_.snapshots = {At("snap-a", now - hours(48)), At("snap-b", now - hours(24)),
                         At("snap-c", now - hours(1)), At("snap-x", now - hours(30), "other"),
                         damaged};
  provider_.fail_delete_of = "snap-a";
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v"}, opts, clock);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->removed, 1u);
  EXPECT_EQ(r->kept, 1u);
  EXPECT_EQ(r->damaged, std::vector<std::string>{"snap-d"});
  // Neither the damaged record nor another volume's snapshot was touched.
  for (const auto& id : provider_.deleted) {
    EXPECT_NE(id, "snap-d");
    EXPECT_NE(id, "snap-x");
  }
}

}  // namespace
}  // namespace cloudkeep::snapshot
