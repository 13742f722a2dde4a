// The create and prune orchestrations (snapshot/orchestrate.cpp), each test
// named by the fault it injects (as LevelDB's fault_injection_test): a fake
// Provider whose every step fails on demand, a fake ConsistencyBracket whose
// freeze, thaw and watchdog fail on demand, and the FixedClock. Both fakes
// write one shared event log, so the order of the steps — above all that the
// thaw happens before anything slow and on every path — is what is asserted.
// A few tests run the real ConsistencySession with shell hooks, the part of it
// that needs no root; the real freeze is covered by
// tests/integration/test_consistency_*.sh.
#include "snapshot/orchestrate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/clock.h"

namespace cloudkeep::snapshot {
namespace {

using std::chrono::hours;
using Events = std::vector<std::string>;

class FakeCapture : public CaptureHandle {};

// A provider whose every step can be made to fail; appends what was called to `events`.
class FaultyProvider : public Provider {
 public:
  explicit FaultyProvider(Events* events) : events_(events) {}
  std::string name() const override { return "fake"; }
  Result<std::vector<Volume>> ListVolumes(bool) override { return std::vector<Volume>{}; }
  Result<Volume> ResolveVolume(const std::string& spec) override {
    Volume v;
    v.id = v.device = spec;
    return v;
  }
  // "/dev/<id>" names the same volume as "<id>", as a device path and an EBS id do.
  std::string CanonicalVolumeId(const std::string& spec) override {
    return spec.rfind("/dev/", 0) == 0 ? spec.substr(5) : spec;
  }
  Status Prepare(const CreateRequest&) override {
    events_->push_back("prepare");
    return fail_prepare ? Status::Failure("prepare failed") : Status::Ok();
  }
  Result<std::unique_ptr<CaptureHandle>> Capture(const CreateRequest& request) override {
    events_->push_back("capture");
    if (fail_capture) return Status::Failure("capture failed");
    auto handle = std::make_unique<FakeCapture>();
    handle->notes = {"captured " + std::to_string(request.volumes.size()) + " volumes"};
    return std::unique_ptr<CaptureHandle>(std::move(handle));
  }
  Result<std::vector<Snapshot>> Finalize(std::unique_ptr<CaptureHandle>,
                                         const SnapshotMetadata& meta) override {
    events_->push_back("finalize");
    finalize_metadata = meta;
    if (fail_finalize) return Status::Failure("finalize failed");
    std::vector<Snapshot> out;
    for (int i = 0; i < volumes_to_record; ++i) {
      Snapshot s;
      s.id = "snap-" + std::to_string(i);
      s.volume_id = "v" + std::to_string(i);
      out.push_back(s);
    }
    recorded.insert(recorded.end(), out.begin(), out.end());
    return out;
  }
  void Abandon(std::unique_ptr<CaptureHandle>) override { events_->push_back("abandon"); }
  Result<std::vector<Snapshot>> ListSnapshots(const SnapshotFilter& filter) override {
    std::string vid = filter.volume_ids.empty() ? "" : filter.volume_ids[0];
    events_->push_back("list " + vid);
    if (vid == fail_listing_of) return Status::Failure("listing " + vid + " failed");
    std::vector<Snapshot> out;
    for (const auto& s : snapshots)
      if (!s.damaged.empty() || vid.empty() || vid == s.volume_id) out.push_back(s);
    return out;
  }
  Result<Snapshot> GetSnapshot(const std::string& id) override {
    for (const auto& s : snapshots)
      if (s.id == id) return s;
    return Status::Usage("unknown");
  }
  Result<std::vector<DeleteOutcome>> DeleteSnapshots(const std::vector<std::string>& ids,
                                                     const DeleteOptions& options) override {
    events_->push_back("delete");
    delete_options = options;
    if (fail_delete_call) return Status::Failure("delete call failed");
    std::vector<DeleteOutcome> out;
    for (const auto& id : ids) {
      deleted.push_back(id);
      DeleteResult r = options.dry_run ? DeleteResult::kWouldDelete : DeleteResult::kDeleted;
      if (id == fail_delete_of) r = DeleteResult::kFailed;
      if (id == skip_delete_of) r = DeleteResult::kSkipped;
      out.push_back({id, r, r == DeleteResult::kFailed ? "in use" : ""});
    }
    return out;
  }

  bool fail_prepare = false, fail_capture = false, fail_finalize = false;
  bool fail_delete_call = false;
  std::string fail_listing_of, fail_delete_of, skip_delete_of;
  int volumes_to_record = 1;
  std::vector<Snapshot> recorded;  // what Finalize wrote
  std::vector<std::string> deleted;
  DeleteOptions delete_options;
  SnapshotMetadata finalize_metadata;
  std::vector<Snapshot> snapshots;

 private:
  Events* events_;
};

// The consistency steps with their faults: a freeze that fails half way
// (Begin), a thaw that fails or a watchdog that had fired (End), a post hook
// that failed. Begin reports the level a real freeze reaches.
class FaultySession : public ConsistencyBracket {
 public:
  explicit FaultySession(Events* events) : events_(events) {}
  Status Validate(const std::vector<Volume>&) const override {
    events_->push_back("validate");
    return fail_validate ? Status::Usage("--freeze-root needs --freeze") : Status::Ok();
  }
  Status Begin(const std::vector<Volume>&, SnapshotMetadata* metadata) override {
    events_->push_back("freeze");
    if (!begin_error.empty()) return Status::Failure(begin_error);
    metadata->consistency = Consistency::kFilesystem;
    metadata->freeze_us = 1234;
    return Status::Ok();
  }
  Status End(SnapshotMetadata* metadata) override {
    events_->push_back("thaw");
    notes_.push_back("froze /srv for 1.2ms");
    if (!post_hook_error_injected.empty()) post_hook_error_ = post_hook_error_injected;
    if (!end_error.empty()) {
      metadata->consistency = Consistency::kCrash;
      return Status::Failure(end_error);
    }
    return Status::Ok();
  }
  const std::vector<std::string>& notes() const override { return notes_; }
  const std::string& post_hook_error() const override { return post_hook_error_; }

  bool fail_validate = false;
  std::string begin_error, end_error, post_hook_error_injected;

 private:
  Events* events_;
  std::vector<std::string> notes_;
  std::string post_hook_error_;
};

const char kWatchdogFired[] =
    "the freeze watchdog thawed /srv after --freeze-timeout 10s before the capture was done; the "
    "snapshot would not be consistent and was abandoned (raise --freeze-timeout)";

class OrchestrateTest : public ::testing::Test {
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
  std::string HookLog() {
    std::ifstream in(dir_ / "log");
    std::string all, line;
    while (std::getline(in, line)) all += line + " ";
    return all;
  }
  CreateRequest Request(int volumes = 1) {
    CreateRequest r;
    for (int i = 0; i < volumes; ++i) {
      Volume v;
      v.id = v.device = "v" + std::to_string(i);
      r.volumes.push_back(v);
    }
    return r;
  }
  std::filesystem::path dir_;
  Events events_;
  FaultyProvider provider_{&events_};
  FaultySession session_{&events_};
};

// --- create, through the fake session ---------------------------------------

TEST_F(OrchestrateTest, NoFaultFinalizesAfterTheThawWithTheLevelReached) {
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(events_, (Events{"validate", "prepare", "freeze", "capture", "thaw", "finalize"}));
  EXPECT_EQ(provider_.finalize_metadata.consistency, Consistency::kFilesystem);
  EXPECT_EQ(provider_.finalize_metadata.freeze_us, 1234);
  // The provider's notes first, then the session's.
  EXPECT_EQ(r->notes, (std::vector<std::string>{"captured 1 volumes", "froze /srv for 1.2ms"}));
  EXPECT_TRUE(r->post_hook_error.empty());
}

TEST_F(OrchestrateTest, InvalidOptionsTouchNothing) {
  session_.fail_validate = true;
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 2);
  EXPECT_EQ(events_, (Events{"validate"}));
}

TEST_F(OrchestrateTest, PrepareFailureFreezesNothing) {
  provider_.fail_prepare = true;
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "prepare failed");
  EXPECT_EQ(events_, (Events{"validate", "prepare"}));
}

TEST_F(OrchestrateTest, FreezeFailingHalfWayIsUndoneAndNothingCaptured) {
  session_.begin_error = "FIFREEZE /srv/b: device or resource busy";
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "FIFREEZE /srv/b: device or resource busy");
  EXPECT_EQ(r.status().exit_code(), 1);
  EXPECT_EQ(events_, (Events{"validate", "prepare", "freeze", "thaw"}));
  EXPECT_TRUE(provider_.recorded.empty());
}

TEST_F(OrchestrateTest, CaptureFailingAfterTheFreezeStillThawsAndRecordsNothing) {
  provider_.fail_capture = true;
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "capture failed");
  EXPECT_EQ(r.status().exit_code(), 1);
  // Nothing to abandon: the capture made no handle.
  EXPECT_EQ(events_, (Events{"validate", "prepare", "freeze", "capture", "thaw"}));
  EXPECT_TRUE(provider_.recorded.empty());
}

TEST_F(OrchestrateTest, CaptureAndThawFailingReturnTheCaptureAndLogTheThaw) {
  provider_.fail_capture = true;
  session_.end_error = "FITHAW /srv: input/output error";
  ::testing::internal::CaptureStderr();
  auto r = CreateSnapshots(provider_, Request(), session_);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "capture failed");
  // A filesystem that may still be frozen is never silent.
  EXPECT_NE(err.find("FITHAW /srv: input/output error"), std::string::npos) << err;
}

TEST_F(OrchestrateTest, WatchdogFiringDuringTheCaptureAbandonsIt) {
  session_.end_error = kWatchdogFired;
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), kWatchdogFired);
  EXPECT_EQ(r.status().exit_code(), 1);
  EXPECT_EQ(events_, (Events{"validate", "prepare", "freeze", "capture", "thaw", "abandon"}));
  EXPECT_TRUE(provider_.recorded.empty());
}

TEST_F(OrchestrateTest, FinalizeFailingAfterTheThawIsTheError) {
  provider_.fail_finalize = true;
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "finalize failed");
  EXPECT_EQ(events_, (Events{"validate", "prepare", "freeze", "capture", "thaw", "finalize"}));
}

TEST_F(OrchestrateTest, FinalizeFailingWithAFailedPostHookLogsTheHook) {
  provider_.fail_finalize = true;
  session_.post_hook_error_injected = "post hook 'systemctl start db' exited with status 1";
  ::testing::internal::CaptureStderr();
  auto r = CreateSnapshots(provider_, Request(), session_);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "finalize failed");
  // The service that may not have come back is reported beside the cause.
  EXPECT_NE(err.find("systemctl start db"), std::string::npos) << err;
}

TEST_F(OrchestrateTest, FailedPostHookKeepsTheSnapshotsAndSaysSo) {
  session_.post_hook_error_injected = "post hook 'x' exited with status 1";
  auto r = CreateSnapshots(provider_, Request(), session_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->snapshots.size(), 1u);
  EXPECT_EQ(r->post_hook_error, "post hook 'x' exited with status 1");
}

TEST_F(OrchestrateTest, MultiVolumeCaptureFailingRecordsNoVolume) {
  // One capture covers every volume (one point in time); when it fails, no
  // volume of the run is recorded, not the ones before the failing one.
  provider_.fail_capture = true;
  provider_.volumes_to_record = 3;
  auto r = CreateSnapshots(provider_, Request(3), session_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(provider_.recorded.empty());
  EXPECT_EQ(events_.back(), "thaw");
}

TEST_F(OrchestrateTest, MultiVolumeRunReturnsEveryVolumesSnapshot) {
  provider_.volumes_to_record = 3;
  auto r = CreateSnapshots(provider_, Request(3), session_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->snapshots.size(), 3u);
  EXPECT_EQ(r->notes.front(), "captured 3 volumes");
}

// --- create, through the real session's hooks -------------------------------

TEST_F(OrchestrateTest, CaptureFailingStillRunsThePostHooks) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre")};
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  provider_.fail_capture = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "capture failed");
  EXPECT_EQ(HookLog(), "pre post ");
  EXPECT_EQ(events_, (Events{"prepare", "capture"}));
}

TEST_F(OrchestrateTest, FinalizeFailingRunsThePostHooksBeforeIt) {
  ConsistencyOptions o;
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  provider_.fail_finalize = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "finalize failed");
  EXPECT_EQ(HookLog(), "post ");
  EXPECT_EQ(events_, (Events{"prepare", "capture", "finalize"}));
  // No freeze was asked for: the level recorded is the one reached.
  EXPECT_EQ(provider_.finalize_metadata.consistency, Consistency::kCrash);
}

TEST_F(OrchestrateTest, PreHookFailingMeansNoCaptureButThePostHooksRun) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre1"), Hook("pre2", 3), Hook("pre3")};
  o.post_hooks = {Hook("post")};
  ConsistencySession session(o);
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 1);
  EXPECT_EQ(HookLog(), "pre1 pre2 post ");
  EXPECT_EQ(events_, (Events{"prepare"}));
}

TEST_F(OrchestrateTest, PostHookFailingKeepsTheSnapshotAndRunsTheOthers) {
  ConsistencyOptions o;
  o.post_hooks = {Hook("post-a"), Hook("post-b", 1)};
  ConsistencySession session(o);
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->snapshots.size(), 1u);
  EXPECT_FALSE(r->post_hook_error.empty());
  EXPECT_EQ(HookLog(), "post-b post-a ");  // post hooks in reverse order, all of them
}

TEST_F(OrchestrateTest, PrepareFailingRunsNoHook) {
  ConsistencyOptions o;
  o.pre_hooks = {Hook("pre")};
  ConsistencySession session(o);
  provider_.fail_prepare = true;
  auto r = CreateSnapshots(provider_, Request(), session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HookLog(), "");
  EXPECT_EQ(events_, (Events{"prepare"}));
}

// --- prune ------------------------------------------------------------------

Snapshot At(const std::string& id, TimePoint t, const std::string& volume = "v") {
  Snapshot s;
  s.id = id;
  s.volume_id = volume;
  s.created = t;
  return s;
}

const TimePoint kNow = TimePoint{} + hours(24 * 365 * 50);

class PruneTest : public OrchestrateTest {
 protected:
  void SetUp() override {
    OrchestrateTest::SetUp();
    provider_.snapshots = {At("snap-a", kNow - hours(48)), At("snap-b", kNow - hours(24)),
                           At("snap-c", kNow - hours(1))};
  }
  FixedClock clock_{kNow};
};

TEST_F(PruneTest, NoPolicyListsNothing) {
  auto r = PruneVolumes(provider_, {"v"}, PruneOptions{}, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 2);
  EXPECT_TRUE(events_.empty());
}

TEST_F(PruneTest, NoVolumeIsUsage) {
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 2);
  EXPECT_TRUE(events_.empty());
}

TEST_F(PruneTest, PolicyRemovingEverySnapshotDeletesNothing) {
  PruneOptions opts;
  opts.policy.older_than = std::chrono::minutes(30);  // every snapshot is older: all would go
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 2);
  EXPECT_NE(r.status().message().find("every snapshot of volume 'v' (3)"), std::string::npos);
  EXPECT_EQ(events_, (Events{"list v"}));
}

TEST_F(PruneTest, SnapshotAfterTheClocksNowIsTheNewestAndKept) {
  // A snapshot stamped after the clock's "now" (taken on a host whose clock
  // was ahead) is the newest: no age makes it old, and the rest may go.
  provider_.snapshots.push_back(At("snap-future", kNow + hours(1)));
  PruneOptions opts;
  opts.policy.older_than = std::chrono::minutes(30);
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // The newest is the one in the future: kept, so the guard lets the rest go.
  EXPECT_EQ(r->kept, 1u);
  EXPECT_EQ(r->removed, 3u);
  EXPECT_EQ(provider_.deleted, (std::vector<std::string>{"snap-c", "snap-b", "snap-a"}));
}

TEST_F(PruneTest, ClockJumpingForwardCannotTakeTheOneJustTaken) {
  // The clock jumps a year ahead: by it every snapshot, the one just taken
  // included, is older than the policy's age, and the guard refuses.
  clock_.Set(kNow + hours(24 * 365));
  PruneOptions opts;
  opts.policy.older_than = std::chrono::hours(2);
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().exit_code(), 2);
  EXPECT_TRUE(provider_.deleted.empty());
  EXPECT_EQ(std::count(events_.begin(), events_.end(), "delete"), 0);
}

TEST_F(PruneTest, ClockJumpingBackKeepsEverythingNewerThanItsCutoff) {
  // The clock jumps 30h back: the one just taken is in its future, and only
  // what is older than the jumped clock's cutoff (now-30h-12h) may go.
  clock_.Set(kNow - hours(30));
  PruneOptions opts;
  opts.policy.older_than = std::chrono::hours(12);
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(provider_.deleted, (std::vector<std::string>{"snap-a"}));
  EXPECT_EQ(r->kept, 2u);
  EXPECT_EQ(r->removed, 1u);
}

TEST_F(PruneTest, AllowEmptyLetsTheGuardedGo) {
  PruneOptions opts;
  opts.policy.older_than = std::chrono::minutes(30);
  opts.allow_empty = true;
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->removed, 3u);
  EXPECT_EQ(r->kept, 0u);
}

TEST_F(PruneTest, DryRunIsPassedDownAndCounted) {
  PruneOptions opts;
  opts.policy.keep_last = 1;
  opts.dry_run = true;
  opts.concurrency = 7;
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(provider_.delete_options.dry_run);
  EXPECT_EQ(provider_.delete_options.concurrency, 7);
  EXPECT_EQ(r->removed, 2u);
  EXPECT_EQ(r->kept, 1u);
}

TEST_F(PruneTest, ListingFailingOnTheSecondVolumeDeletesFromNeither) {
  provider_.snapshots.push_back(At("snap-w1", kNow - hours(5), "w"));
  provider_.snapshots.push_back(At("snap-w2", kNow - hours(3), "w"));
  provider_.fail_listing_of = "w";
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v", "w"}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "listing w failed");
  EXPECT_EQ(events_, (Events{"list v", "list w"}));
  EXPECT_TRUE(provider_.deleted.empty());
}

TEST_F(PruneTest, GuardTrippingOnTheSecondVolumeDeletesFromNeither) {
  provider_.snapshots.push_back(At("snap-w1", kNow - hours(50), "w"));
  PruneOptions opts;
  opts.policy.older_than = std::chrono::hours(36);  // v keeps two, w would lose its only one
  auto r = PruneVolumes(provider_, {"v", "w"}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("volume 'w'"), std::string::npos);
  EXPECT_TRUE(provider_.deleted.empty());
}

TEST_F(PruneTest, DeleteCallFailingIsTheError) {
  provider_.fail_delete_call = true;
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v"}, opts, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "delete call failed");
}

TEST_F(PruneTest, PartialDeleteFailureAcrossVolumesIsCountedPerSnapshot) {
  provider_.snapshots.push_back(At("snap-w1", kNow - hours(5), "w"));
  provider_.snapshots.push_back(At("snap-w2", kNow - hours(4), "w"));
  provider_.snapshots.push_back(At("snap-w3", kNow - hours(3), "w"));
  provider_.fail_delete_of = "snap-a";
  provider_.skip_delete_of = "snap-w1";
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v", "w"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // One delete call for both volumes, after both were weighed.
  EXPECT_EQ(events_, (Events{"list v", "list w", "delete"}));
  EXPECT_EQ(r->kept, 2u);
  EXPECT_EQ(r->removed, 2u);  // snap-b, snap-w2
  EXPECT_EQ(r->failed, 1u);   // snap-a
  EXPECT_EQ(r->skipped, 1u);  // snap-w1
  ASSERT_EQ(r->volumes.size(), 2u);
  const auto& v = r->volumes[0];
  ASSERT_EQ(v.entries.size(), 3u);
  EXPECT_FALSE(v.entries[0].outcome.has_value());  // kept: no outcome
  ASSERT_TRUE(v.entries[2].outcome.has_value());
  EXPECT_EQ(v.entries[2].outcome->result, DeleteResult::kFailed);
  EXPECT_EQ(v.entries[2].outcome->reason, "in use");
}

TEST_F(PruneTest, SameVolumeNamedTwiceIsPrunedOnce) {
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v", "/dev/v"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(provider_.deleted, (std::vector<std::string>{"snap-b", "snap-a"}));
  ASSERT_EQ(r->volumes.size(), 1u);
  EXPECT_EQ(r->removed, 2u);
  EXPECT_EQ(r->kept, 1u);
}

TEST_F(PruneTest, DamagedRecordsAndOtherVolumesAreLeftAlone) {
  Snapshot damaged;
  damaged.id = "snap-d";
  damaged.state = "damaged";
  damaged.damaged = "bad manifest: not JSON";
  provider_.snapshots.push_back(At("snap-x", kNow - hours(30), "other"));
  provider_.snapshots.push_back(damaged);
  PruneOptions opts;
  opts.policy.keep_last = 1;
  auto r = PruneVolumes(provider_, {"v", "w"}, opts, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Listed under both volumes, reported once, weighed by neither.
  EXPECT_EQ(r->damaged, std::vector<std::string>{"snap-d"});
  EXPECT_EQ(provider_.deleted, (std::vector<std::string>{"snap-b", "snap-a"}));
}

}  // namespace
}  // namespace cloudkeep::snapshot
